/**
 * The leader-following pooler: `startProxy(config)` for the CLI and `pgkeel up`; the config schema and loader.
 * Files: proxy.ts (wiring, listeners, shutdown), client.ts (client session; its login in client-login.ts, request
 * forwarding in client-request.ts, admin console frames in client-admin.ts), server-conn.ts (server connection; its
 * login in server-login.ts), pool.ts (one pool, pure), pools.ts (pools + topology fencing), router.ts (routing,
 * pure), topology.ts (DCS watch), prepared.ts (named statements in transaction mode), params.ts (session
 * parameters), client-auth.ts / auth-file.ts, admin.ts / admin-data.ts / admin-actions.ts (console), metrics.ts
 * (/metrics), errors.ts (catalogue), stats.ts, out-buffer.ts, login-reply.ts (cancel secrets, shared
 * ParameterStatus blocks).
 */
export { startProxy, type ProxyOptions, type RunningProxy } from './proxy.js';
export { loadProxyConfig, proxyConfigFromObject, proxySchema, type ProxyConfig } from './config.js';
export { ProxyError, ProxyErrorCode, proxyErrorCatalogue } from './errors.js';
