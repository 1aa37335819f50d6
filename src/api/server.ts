/**
 * The agent's REST API on Patroni's paths and codes (see docs/rest-api.md). Health checks answer from the last HA
 * cycle's snapshot without touching the DCS or PostgreSQL, so a load balancer polling every second costs nothing.
 * HEAD and OPTIONS return the status code only, as HAProxy's httpchk expects.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Agent } from '../ha/agent.js';
import { parseHostPort } from '../lib/net.js';
import { parseCluster, type Cluster } from '../dcs/layout.js';
import type { Logger } from '../lib/log.js';
import { clusterAsPatroniJson, clusterView } from './cluster-json.js';
import { healthCode, patroniStatus } from './health.js';
import { renderMetrics } from './metrics.js';

export interface ApiHandlers {
  /** Unsafe routes (POST/PUT/PATCH/DELETE), keyed "METHOD /path"; they get the parsed JSON body. */
  readonly [route: string]: (body: Record<string, unknown>, agent: Agent) => Promise<{ code: number; body: unknown }>;
}

const MAX_BODY = 64 * 1024;

/** `head`: HEAD (headers of the GET answer, no body) or OPTIONS (status line only, empty body). */
function send(res: ServerResponse, code: number, body: unknown, head: boolean | 'options'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const length = head === 'options' ? 0 : Buffer.byteLength(text);
  res.writeHead(code, { 'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'Content-Length': length });
  res.end(head ? undefined : text);
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) return resolve({});
      try {
        const v: unknown = JSON.parse(text);
        if (v && typeof v === 'object' && !Array.isArray(v)) resolve(v as Record<string, unknown>);
        else reject(new Error('expected a JSON object'));
      } catch {
        reject(new Error('the body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function authorized(req: IncomingMessage, auth: { username?: string; password?: string } | undefined): boolean {
  if (!auth?.username) return true;
  const h = req.headers.authorization ?? '';
  const expected = Buffer.from('Basic ' + Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64'));
  const got = Buffer.from(h);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export class ApiServer {
  private server: Server | null = null;

  constructor(
    private readonly agent: Agent,
    private readonly log: Logger,
    private readonly handlers: ApiHandlers = {},
    private readonly now: () => number = Date.now,
  ) {}

  async listen(): Promise<void> {
    const { host, port } = parseHostPort(this.agent.ctx.cfg.restapi.listen);
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.log.warn('REST request failed', { err, url: req.url });
        if (!res.headersSent) send(res, 500, { error: err.message }, false);
      });
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /**
   * A primary in failsafe mode asks every member to confirm it while the DCS is down (Patroni: POST /failsafe).
   * Peers call it without credentials; it changes nothing but the time this replica last heard from its primary.
   */
  private postFailsafe(snap: ReturnType<Agent['snapshot']>, res: ServerResponse): void {
    if (!snap.gathered?.dynamic.failsafe_mode) return send(res, 502, 'failsafe_mode is not enabled\n', false);
    if (snap.gathered.pgStatus?.inRecovery === false) return send(res, 500, 'I am a primary\n', false);
    this.agent.ctx.mem.failsafeSeenAt = this.now();
    const lsn = snap.gathered.pgStatus?.replayedLsn;
    if (lsn !== null && lsn !== undefined) res.setHeader('lsn', String(lsn));
    return send(res, 200, 'Accepted', false);
  }

  /** /cluster, /history and /config read the DCS (as Patroni does), so a PATCH is visible at once; the last
   *  cycle's view is the fallback when the DCS does not answer. */
  private async liveCluster(): Promise<Cluster | undefined> {
    const { store, keys } = this.agent.ctx;
    try {
      return parseCluster(keys, await store.getPrefix(keys.prefix));
    } catch {
      return this.agent.cluster();
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const snap = this.agent.snapshot();
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') {
      const head = method === 'OPTIONS' ? 'options' : method === 'HEAD';
      const code = healthCode(path, snap, url.searchParams, this.now());
      if (code !== undefined) return send(res, code, patroniStatus(snap), head);
      switch (path) {
        case '/patroni':
          return send(res, 200, patroniStatus(snap), head);
        case '/cluster': {
          const c = await this.liveCluster();
          if (!c) return send(res, 503, { error: 'the DCS is not accessible' }, head);
          return send(res, 200, clusterAsPatroniJson(clusterView(snap.scope, c)), head);
        }
        case '/history':
          return send(res, 200, (await this.liveCluster())?.history ?? [], head);
        case '/config': {
          const c = (await this.liveCluster())?.config;
          if (!c) return send(res, 502, { error: 'no configuration in the DCS' }, head);
          return send(res, 200, c.value, head);
        }
        case '/failsafe': {
          if (!snap.gathered?.dynamic.failsafe_mode) return send(res, 502, 'failsafe_mode is not enabled\n', head);
          return send(res, 200, this.agent.ctx.mem.lastCluster?.failsafe ?? {}, head);
        }
        case '/metrics':
          res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(head ? undefined : renderMetrics(snap));
          return;
        default:
          return send(res, 404, { error: `no such path: ${path}` }, head);
      }
    }
    if (path === '/failsafe' && method === 'POST') return this.postFailsafe(snap, res);
    const handler = this.handlers[`${method} ${path}`];
    if (!handler) return send(res, 404, { error: `no such endpoint: ${method} ${path}` }, false);
    if (!authorized(req, this.agent.ctx.cfg.restapi.authentication)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="pgkeel"');
      return send(res, 401, 'no valid credentials\n', false);
    }
    let body: Record<string, unknown>;
    try {
      body = await readBody(req);
    } catch (err) {
      return send(res, 400, `${(err as Error).message}\n`, false);
    }
    const out = await handler(body, this.agent);
    send(res, out.code, out.body, false);
  }
}
