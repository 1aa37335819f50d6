/**
 * The proxy's time, injected (STYLE.md: no Date.now() below the loop). startProxy takes one (ProxyOptions.clock,
 * the system clock by default) and hands it to the sessions (host.ts), the server connections and the pools;
 * pool.ts and router.ts take `now` as a value.
 */
export interface ProxyClock {
  /** Monotonic milliseconds (performance.now()): durations, timeouts, deadlines. */
  now(): number;
  /** Milliseconds since the epoch (Date.now()): times shown by SHOW CLIENTS/SERVERS, login and idle timeouts. */
  wallNow(): number;
}

export const systemClock: ProxyClock = { now: () => performance.now(), wallNow: () => Date.now() };
