/**
 * PostgreSQL that keeps stopping soon after it was started (a full disk, a bad setting, a corrupt file) must not be
 * restarted once a second forever with nothing said: each stop within CRASH_WINDOW_MS of a start counts, and from
 * the second one on the next start waits 2, 4, 8 … up to 60 s, with the reason from PostgreSQL's log in the agent's
 * error (cycle summary, `/patroni`, log) and in /metrics. The first stop restarts at once: a crashed primary comes
 * back in place in seconds, and that is usually the quickest recovery. Pure.
 */
import type { LogProblem } from '../postgres/log-problems.js';

export const CRASH_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

export interface CrashState {
  /** Consecutive stops, each within CRASH_WINDOW_MS of the start before it; 0 once PostgreSQL ran longer. */
  readonly crashes: number;
  /** When the agent last started PostgreSQL successfully; null if it has not. */
  readonly startedAt: number | null;
}

/**
 * Wait before retrying a background operation that failed `failures` times in a row (bootstrap, clone, start):
 * 5, 10, 20, 40, 60 s. A bootstrap that cannot work (no permission, no space) must not run every few seconds.
 */
export function operationBackoffMs(failures: number): number {
  return Math.min(MAX_BACKOFF_MS, 5000 * 2 ** Math.max(0, failures - 1));
}

export function backoffMs(crashes: number): number {
  return crashes < 2 ? 0 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (crashes - 1));
}

/** PostgreSQL was just seen down although it should run: count it, and say how long to wait and why. */
export function onUnexpectedStop(
  s: CrashState,
  now: number,
  problem: LogProblem | null,
): { crashes: number; retryAfter: number; error: string | null } {
  const soon = s.startedAt !== null && now - s.startedAt < CRASH_WINDOW_MS;
  const crashes = soon ? s.crashes + 1 : 1;
  const wait = backoffMs(crashes);
  if (wait === 0) return { crashes, retryAfter: 0, error: null };
  const why = problem ? `; last error in its log: ${problem.message}` : '';
  return {
    crashes,
    retryAfter: now + wait,
    error: `PostgreSQL stopped ${crashes} times within ${CRASH_WINDOW_MS / 1000} s of being started${why}; next start in ${wait / 1000} s`,
  };
}

/** Running long enough since the last start: the count starts over. */
export function settled(s: CrashState, now: number, running: boolean): boolean {
  return running && s.startedAt !== null && now - s.startedAt >= CRASH_WINDOW_MS && s.crashes > 0;
}
