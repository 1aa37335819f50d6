/**
 * A client session's phases, in order: start-up (SSLRequest, StartupMessage), authentication, waiting for the pool's
 * server parameters, ready (the request pump), closed. Its own module so that client.ts and the modules it delegates
 * to (client-login.ts, client-admin.ts) share it without importing each other in a cycle.
 */
export const ClientPhase = {
  Startup: 'startup',
  Auth: 'auth',
  Params: 'params',
  Ready: 'ready',
  Closed: 'closed',
} as const;
export type ClientPhase = (typeof ClientPhase)[keyof typeof ClientPhase];
