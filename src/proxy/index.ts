/**
 * The leader-following pooler: `startProxy(config)` for the CLI and `pgkeel up`; the config schema and loader.
 *
 * Top level — the wiring: proxy.ts (listeners, janitor, RELOAD, shutdown), config.ts (schema), errors.ts
 * (catalogue), host.ts (what a session needs from its proxy), clock.ts (injected time), metrics.ts (/metrics),
 * out-buffer.ts, tls.ts (client and server TLS), security-log.ts.
 * - session/: one client connection — client.ts (state, request pump, link to a server), client-login.ts,
 *   client-request.ts (forwarding one frame), client-admin.ts (console frames), prepared.ts (named statements in
 *   transaction mode), params.ts / set-tracking.ts (session parameters), login-reply.ts (cancel secrets, shared
 *   ParameterStatus blocks).
 * - server/: one server connection — server-conn.ts (state, response pump, transaction bookkeeping),
 *   server-login.ts, server-statements.ts.
 * - pool/: pool.ts (one pool, pure), pools.ts (pools + topology fencing), router.ts (routing, pure), topology.ts
 *   (DCS watch or static list), stats.ts.
 * - auth/: auth-file.ts, client-auth.ts (the client's authentication exchange), auth-query.ts (+ its reply parser).
 * - admin/: admin.ts (rendering, pure), admin-data.ts (snapshot), admin-actions.ts (commands), admin-merge.ts.
 * - workers/: `workers: N` — workers.ts (supervisor), worker-main.ts, worker-link.ts (IPC), workers-config.ts.
 */
export { startProxy, type ProxyOptions, type RunningProxy } from './proxy.js';
export { loadProxyConfig, proxyConfigFromObject, proxySchema, type ProxyConfig } from './config.js';
export { ProxyError, ProxyErrorCode, proxyErrorCatalogue } from './errors.js';
