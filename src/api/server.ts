/**
 * The agent's REST API on Patroni's paths and codes (see docs/rest-api.md). Health checks answer from the last HA
 * cycle's snapshot without touching the DCS or PostgreSQL, so a load balancer polling every second costs nothing.
 * HEAD and OPTIONS return the status code only, as HAProxy's httpchk expects. Unsafe endpoints pass auth.ts
 * (credentials, client certificates) before their body is read within body.ts's bounds; slow clients are cut off
 * by Node's request/headers timeouts. https when `restapi.certfile` is set.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import type { NodeConfig } from '../config/node.js';
import { AuthFailureLog, checkAccess } from './auth.js';
import { BodyError, readBody } from './body.js';
import { readPem } from '../cluster/rest-client.js';
import type { AgentSnapshot } from '../ha/agent.js';
import { parseHostPort } from '../lib/net.js';
import type { Cluster } from '../dcs/layout.js';
import type { Logger } from '../lib/log.js';
import type { ApiDeps } from './ports.js';
import { clusterAsPatroniJson, clusterView } from '../cluster/view.js';
import { healthCode, patroniStatus } from './health.js';
import { renderMetrics } from './metrics.js';
import { DashboardService, isDashboardPath } from '../observe/dashboard/service.js';
import { parseSince } from '../observe/events/since.js';

export interface ApiHandlers {
  /** Unsafe routes (POST/PUT/PATCH/DELETE), keyed "METHOD /path"; they get the parsed JSON body. */
  readonly [route: string]: (body: Record<string, unknown>, deps: ApiDeps) => Promise<{ code: number; body: unknown }>;
}

const NO_STATEMENTS = { enabled: false, error: 'this API has no PostgreSQL metrics', statements: [] };

/** Whole request (headers and body) within this time, else 408 and the connection is closed. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
/** Node checks those two timeouts on this interval (default 30 s: far too lax for a trickling client). */
const TIMEOUT_CHECK_MS = 1_000;
/** Health checks from a few load balancers and the members need far fewer; past this, connections are refused. */
const MAX_CONNECTIONS = 256;

/** `head`: HEAD (headers of the GET answer, no body) or OPTIONS (status line only, empty body). */
function send(res: ServerResponse, code: number, body: unknown, head: boolean | 'options'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const length = head === 'options' ? 0 : Buffer.byteLength(text);
  res.writeHead(code, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': length,
  });
  res.end(head ? undefined : text);
}

/**
 * A body refused part-way (413): answer, then keep reading and discarding for a moment before closing, so the
 * client gets the answer instead of a connection reset caused by unread data.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse, code: number, message: string): void {
  res.setHeader('Connection', 'close');
  send(res, code, `${message}\n`, false);
  req.resume();
  const cut = setTimeout(() => req.socket.destroy(), 2000);
  cut.unref();
  req.once('end', () => clearTimeout(cut));
}

function tlsOptions(r: NodeConfig['restapi']): ServerOptions {
  const cert = readPem('restapi.certfile', r.certfile);
  if (!cert) return {};
  return {
    cert,
    key: readPem('restapi.keyfile', r.keyfile) ?? cert,
    ...(r.keyfile_password !== undefined ? { passphrase: r.keyfile_password } : {}),
    ...(r.cafile ? { ca: readPem('restapi.cafile', r.cafile) } : {}),
    requestCert: r.verify_client !== 'none',
    rejectUnauthorized: r.verify_client === 'required',
  };
}

export class ApiServer {
  private server: Server | null = null;
  private readonly refusals: AuthFailureLog;
  private readonly dashboard: DashboardService;

  constructor(
    private readonly deps: ApiDeps,
    private readonly log: Logger,
    private readonly handlers: ApiHandlers = {},
  ) {
    this.refusals = new AuthFailureLog(log, deps.now);
    this.dashboard = new DashboardService(deps, log);
  }

  /** http, or https when `restapi.certfile` is set. */
  async listen(): Promise<void> {
    const r = this.deps.cfg.restapi;
    const { host, port } = parseHostPort(r.listen);
    const opts = {
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      keepAliveTimeout: 5000,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: Error) => {
        this.log.warn('REST request failed', { err, url: req.url });
        if (!res.headersSent) send(res, 500, { error: err.message }, false);
      });
    };
    const server: Server = r.certfile
      ? createHttpsServer({ ...opts, ...tlsOptions(r) }, onRequest)
      : createServer(opts, onRequest);
    server.maxConnections = MAX_CONNECTIONS;
    server.maxRequestsPerSocket = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.dashboard.start();
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.dashboard.stop();
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /**
   * A primary in failsafe mode asks every member to confirm it while the DCS is down (Patroni: POST /failsafe).
   * Peers call it with the cluster's REST credentials (as Patroni's agents do); it changes nothing but the time
   * this replica last heard from its primary — yet an outsider repeating it could keep a replica from promoting.
   */
  private postFailsafe(snap: AgentSnapshot, res: ServerResponse): void {
    if (!snap.gathered?.dynamic.failsafe_mode) return send(res, 502, 'failsafe_mode is not enabled\n', false);
    if (snap.gathered.pgStatus?.inRecovery === false) return send(res, 500, 'I am a primary\n', false);
    this.deps.agent.noteFailsafePing(this.deps.now());
    const lsn = snap.gathered.pgStatus?.replayedLsn;
    if (lsn !== null && lsn !== undefined) res.setHeader('lsn', String(lsn));
    return send(res, 200, 'Accepted', false);
  }

  /** /cluster, /history and /config read the DCS (as Patroni does), so a PATCH is visible at once; the last
   *  cycle's view is the fallback when the DCS does not answer. */
  private async liveCluster(): Promise<Cluster | undefined> {
    try {
      return await this.deps.agent.readCluster();
    } catch {
      return this.deps.agent.snapshot().gathered?.cluster;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const snap = this.deps.agent.snapshot();
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') {
      const head = method === 'OPTIONS' ? 'options' : method === 'HEAD';
      const code = healthCode(path, snap, url.searchParams, this.deps.now());
      if (code !== undefined) return send(res, code, patroniStatus(snap), head);
      if (isDashboardPath(path)) return this.dashboard.serve(path, req, res, head);
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
          return send(res, 200, snap.memory.lastCluster?.failsafe ?? {}, head);
        }
        case '/metrics': {
          const pgText = head ? '' : ((await this.deps.pgMetrics?.exposition().catch(() => '')) ?? '');
          res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(head ? undefined : renderMetrics(snap, this.deps.agent.backupStatus?.(), this.deps.now()) + pgText);
          return;
        }
        case '/events': {
          const q = url.searchParams.get('since');
          const since = q === null || q === '' ? undefined : parseSince(q, this.deps.now());
          if (since === null)
            return send(
              res,
              400,
              {
                error: `since: expected epoch ms, ISO-8601 or a duration like 15m, got "${q}"`,
                code: 'EVENTS_BAD_SINCE',
              },
              head,
            );
          return send(res, 200, this.deps.agent.recentEvents?.(since) ?? [], head);
        }
        case '/statements':
          return send(res, 200, (await this.deps.pgMetrics?.statements()) ?? NO_STATEMENTS, head);
        default:
          return send(res, 404, { error: `no such path: ${path}` }, head);
      }
    }
    const failsafe = path === '/failsafe' && method === 'POST';
    const handler = Object.hasOwn(this.handlers, `${method} ${path}`) ? this.handlers[`${method} ${path}`] : undefined;
    if (!handler && !failsafe) return send(res, 404, { error: `no such endpoint: ${method} ${path}` }, false);
    const { restapi } = this.deps.cfg;
    const verdict = checkAccess(req, restapi.authentication, restapi.verify_client);
    if (!verdict.ok) {
      this.refusals.refused(req, verdict.reason);
      if (verdict.code === 401) res.setHeader('WWW-Authenticate', 'Basic realm="pgkeel"');
      return send(res, verdict.code, verdict.code === 401 ? 'no valid credentials\n' : `${verdict.reason}\n`, false);
    }
    let body: Record<string, unknown>;
    try {
      body = await readBody(req);
    } catch (err) {
      if (err instanceof BodyError && err.status === 413) return refuseBody(req, res, 413, err.message);
      return send(res, 400, `${(err as Error).message}\n`, false);
    }
    if (!handler) return this.postFailsafe(snap, res);
    const out = await handler(body, this.deps);
    send(res, out.code, out.body, false);
  }
}
