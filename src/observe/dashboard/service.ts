/**
 * The dashboard on the agent's REST API: `GET /dashboard` (the page and its two assets), `GET /dashboard/state`
 * (the whole cluster as JSON, state.ts) and `GET /dashboard/events` (server-sent events: the state whenever it
 * changes, checked every second, and a ping every few seconds; the page falls back to polling /dashboard/state).
 *
 * Cost: a gather (gather.ts) is shared by every request and stream for `CACHE_MS`, so many open pages cost one
 * round of reads per second; with no page open nothing is read but the lag sample, taken from the HA cycle's
 * snapshot every `LAG_STEP_MS` (no I/O). Streams are capped; past the cap a page polls.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeConfig } from '../../config/node.js';
import { restClientFor } from '../../cluster/rest-client.js';
import { clusterView } from '../../cluster/view.js';
import type { ClusterKeys } from '../../dcs/layout.js';
import type { Store } from '../../dcs/store.js';
import type { Logger } from '../../lib/log.js';
import type { AgentPort } from '../../api/ports.js';
import { asset, SECURITY_HEADERS } from './assets.js';
import { apiBase, gatherSources } from './gather.js';
import { LagHistory } from './lag-history.js';
import { buildState, type DashboardState, type Fetched } from './state.js';

export interface DashboardDeps {
  readonly agent: AgentPort;
  readonly store: Store;
  readonly keys: ClusterKeys;
  readonly cfg: Pick<NodeConfig, 'restapi' | 'ctl'>;
  readonly now: () => number;
}

/** One gather serves every request within this time. */
export const CACHE_MS = 1000;
/** The leader's top statements are read at most this often (each read queries pg_stat_statements). */
export const STATEMENTS_CACHE_MS = 10_000;
/** Open streams are checked for a changed state this often (the page's "live" promise: ≤ 2 s). */
const TICK_MS = 1000;
const PING_MS = 5000;
const MAX_STREAMS = 32;

export const DASHBOARD_PREFIX = '/dashboard';

/** The dashboard's URL on the member whose `api_url` (…/patroni) is given. */
export const dashboardUrl = (apiUrl: string) => `${apiBase(apiUrl)}${DASHBOARD_PREFIX}`;

/** Whether a request path belongs to the dashboard (server.ts routes it here). */
export const isDashboardPath = (path: string) => path === DASHBOARD_PREFIX || path.startsWith(`${DASHBOARD_PREFIX}/`);

export class DashboardService {
  readonly history = new LagHistory();
  #cache: { at: number; state: DashboardState } | null = null;
  #inflight: Promise<DashboardState> | null = null;
  #sampler: NodeJS.Timeout | null = null;
  #ticker: NodeJS.Timeout | null = null;
  readonly #streams = new Set<ServerResponse>();
  #statements: { url: string; at: number; value: Fetched } | null = null;
  #lastKey = '';
  #lastPing = 0;

  constructor(
    private readonly deps: DashboardDeps,
    private readonly log: Logger,
  ) {}

  /** Starts the lag sampler (runs whether or not a page is open). */
  start(): void {
    if (this.#sampler) return;
    this.sample();
    this.#sampler = setInterval(() => this.sample(), this.history.stepMs);
    this.#sampler.unref();
  }

  stop(): void {
    if (this.#sampler) clearInterval(this.#sampler);
    if (this.#ticker) clearInterval(this.#ticker);
    this.#sampler = this.#ticker = null;
    for (const s of this.#streams) s.end();
    this.#streams.clear();
  }

  /** One lag sample per member from the last HA cycle's view of the DCS. */
  sample(): void {
    const snap = this.deps.agent.snapshot();
    const c = snap.gathered?.cluster;
    if (!c) return;
    const lags = new Map(clusterView(snap.scope, c).members.map((m) => [m.name, m.lag_bytes] as const));
    this.history.record(this.deps.now(), lags);
  }

  /** The current state, gathered at most once per CACHE_MS however many ask. */
  async state(): Promise<DashboardState> {
    const now = this.deps.now();
    if (this.#cache && now - this.#cache.at < CACHE_MS) return this.#cache.state;
    this.#inflight ??= this.#gather().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #gather(): Promise<DashboardState> {
    const { agent, store, keys, cfg } = this.deps;
    const snap = agent.snapshot();
    const proxiesPrefix = `${keys.prefix}proxies/`;
    const sources = await gatherSources(
      {
        readCluster: () => agent.readCluster(),
        readProxies: async () => (await store.getPrefix(proxiesPrefix)).kvs.map((kv) => kv.value),
        client: restClientFor(cfg),
        statements: (url, read) => this.#cachedStatements(url, read),
      },
      snap.gathered?.cluster,
    );
    const now = this.deps.now();
    const state = buildState({
      ...sources,
      now,
      scope: snap.scope,
      servedBy: snap.name,
      backup: agent.backupStatus?.(),
      lagHistory: this.history.series(now),
      lagWindowMs: this.history.windowMs,
      authConfigured: !!cfg.restapi.authentication?.username,
    });
    this.#cache = { at: now, state };
    return state;
  }

  /** The last answer while it is younger than STATEMENTS_CACHE_MS and from the same leader. */
  async #cachedStatements(url: string, read: () => Promise<Fetched>): Promise<Fetched> {
    const c = this.#statements;
    if (c && c.url === url && this.deps.now() - c.at < STATEMENTS_CACHE_MS) return c.value;
    const value = await read();
    this.#statements = { url, at: this.deps.now(), value };
    return value;
  }

  /** Answers a dashboard path (isDashboardPath); `head`: HEAD (no body) or OPTIONS (status only). */
  async serve(path: string, req: IncomingMessage, res: ServerResponse, head: boolean | 'options'): Promise<void> {
    const file = asset(path);
    if (file) return this.#send(res, 200, file.type, file.body, head, 'no-cache');
    if (path === `${DASHBOARD_PREFIX}/state`) {
      const body = Buffer.from(JSON.stringify(await this.state()));
      return this.#send(res, 200, 'application/json', body, head, 'no-store');
    }
    if (path === `${DASHBOARD_PREFIX}/events`) {
      if (!head) return this.#stream(req, res);
      return this.#send(res, 200, 'text/event-stream; charset=utf-8', Buffer.alloc(0), head, 'no-store');
    }
    const text = Buffer.from(`no such dashboard path: ${path}\n`);
    return this.#send(res, 404, 'text/plain; charset=utf-8', text, head, 'no-store');
  }

  #send(res: ServerResponse, code: number, type: string, body: Buffer, head: boolean | 'options', cache: string) {
    res.writeHead(code, {
      ...SECURITY_HEADERS,
      'Content-Type': type,
      'Content-Length': head === 'options' ? 0 : body.length,
      'Cache-Control': cache,
    });
    res.end(head ? undefined : body);
  }

  #stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.#streams.size >= MAX_STREAMS) {
      const text = Buffer.from('too many dashboard streams open; poll /dashboard/state\n');
      return this.#send(res, 503, 'text/plain; charset=utf-8', text, false, 'no-store');
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    this.#streams.add(res);
    req.socket.setKeepAlive(true);
    const gone = () => {
      this.#streams.delete(res);
      if (!this.#streams.size && this.#ticker) {
        clearInterval(this.#ticker);
        this.#ticker = null;
      }
    };
    res.on('close', gone);
    // A new stream gets the state at once, whether or not it changed.
    this.#lastKey = '';
    this.#tick();
    if (!this.#ticker) {
      this.#ticker = setInterval(() => this.#tick(), TICK_MS);
      this.#ticker.unref();
    }
  }

  #tick(): void {
    this.state().then(
      (state) => {
        const now = this.deps.now();
        // generated_at changes every gather; only a change of anything else is news.
        const key = JSON.stringify({ ...state, generated_at: '' });
        if (key !== this.#lastKey) {
          this.#lastKey = key;
          this.#lastPing = now;
          this.#broadcast(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
        } else if (now - this.#lastPing >= PING_MS) {
          this.#lastPing = now;
          this.#broadcast(`event: ping\ndata: ${JSON.stringify({ at: state.generated_at })}\n\n`);
        }
      },
      (err: Error) => this.log.warn('dashboard: gathering the cluster state failed', { err }),
    );
  }

  #broadcast(text: string): void {
    for (const s of this.#streams) s.write(text);
  }
}
