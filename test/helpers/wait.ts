/**
 * Test helpers shared by unit and integration tests: waiting for a condition, and recorders for watch events and
 * log lines. One `sleep` for the whole repository lives in src/lib/proc.ts and is re-exported here.
 */
import assert from 'node:assert/strict';
import type { WatchEvent } from '../../src/dcs/store.js';
import type { Logger } from '../../src/lib/log.js';
import { sleep } from '../../src/lib/proc.js';

export { sleep };

/** Polls `cond` every 10 ms until it holds; fails the test naming `what` after `timeoutMs`. */
export async function eventually(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Collects a store watch's events (with the revision of each batch) and errors. */
export function watchRecorder(): {
  events: WatchEvent[];
  revisions: number[];
  errors: Error[];
  onEvents(ev: readonly WatchEvent[], rev: number): void;
  onError(e: Error): void;
} {
  const r = {
    events: [] as WatchEvent[],
    revisions: [] as number[],
    errors: [] as Error[],
    onEvents(ev: readonly WatchEvent[], rev: number) {
      r.events.push(...ev);
      r.revisions.push(rev);
    },
    onError(e: Error) {
      r.errors.push(e);
    },
  };
  return r;
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown> | undefined;
}

/** A Logger that appends every line to `lines` (children write to the same list). */
export function recordingLogger(lines: LogLine[]): Logger {
  const log: Logger = {
    debug: (msg, fields) => void lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => void lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => void lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => void lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return log;
}
