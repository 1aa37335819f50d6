import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lastProblem } from '../postgres/log-problems.js';
import { backoffMs, onUnexpectedStop, operationBackoffMs, settled } from './crash-loop.js';
import { decide } from './decide.js';
import { acts, fixture } from '../../test/fakes/observed.js';

const AT = Date.parse('2026-12-02T19:48:27.200Z');
const LOG = [
  '2026-12-02 19:47:35.640 UTC [2790] LOG:  database system is ready to accept read-only connections',
  '2026-12-02 19:48:22.181 UTC [4473] FATAL:  could not write to file "pg_wal/xlogtemp.4473": No space left on device',
  '2026-12-02 19:48:27.132 UTC [4659] FATAL:  could not write to file "pg_wal/xlogtemp.4659": No space left on device',
  '2026-12-02 19:48:27.133 UTC [2794] LOG:  waiting for WAL to become available at 0/6000018',
].join('\n');

describe('why a replica does not stream, from its PostgreSQL log', () => {
  it('finds the newest recent error and classifies it', () => {
    const p = lastProblem(LOG, AT);
    assert.equal(p?.kind, 'disk_full');
    assert.match(p?.message ?? '', /xlogtemp\.4659.*No space left on device/);
    assert.equal(p?.at, Date.parse('2026-12-02T19:48:27.132Z'));
    const removed =
      '2026-12-02 19:48:27.100 UTC [77] FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed';
    assert.equal(lastProblem(removed, AT)?.kind, 'wal_removed');
    const auth =
      '2026-12-02 19:48:27.100 UTC [77] FATAL:  could not connect to the primary server: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "replicator"';
    assert.equal(lastProblem(auth, AT)?.kind, 'connection');
  });

  it('ignores errors older than a minute: they describe a past that may have been repaired', () => {
    assert.equal(lastProblem(LOG, AT + 61_000), null);
    assert.equal(lastProblem('2026-12-02 19:48:27.132 UTC [1] LOG:  all good', AT), null);
    assert.equal(lastProblem('', AT), null);
  });

  it('a replica whose disk is full says so in its cycle summary and keeps waiting', () => {
    const d = decide(fixture({ pg: { streaming: false, streamProblem: lastProblem(LOG, AT) } }));
    assert.deepEqual(acts(d), []);
    assert.equal(d.summary, 'no action: following node1, not streaming: my disk is full (No space left on device)');
  });

  it('PostgreSQL running but not accepting (the postmaster restarting after each PANIC) says what its log says', () => {
    const panic = {
      kind: 'disk_full' as const,
      message: 'could not extend file "base/5/16384": No space left on device',
      at: AT,
    };
    const d = decide(fixture({ pg: { accepting: false, inRecovery: null, streaming: false, streamProblem: panic } }));
    assert.deepEqual(acts(d), []);
    assert.equal(
      d.summary,
      'no action: waiting for PostgreSQL to accept connections (last error in its log: No space left on device)',
    );
  });

  it('a replica whose WAL the leader removed (slot past max_slot_wal_keep_size) is re-cloned, not left waiting forever', () => {
    const d = decide(
      fixture({
        pg: {
          streaming: false,
          streamProblem: {
            kind: 'wal_removed',
            message: 'requested WAL segment 00000001000000000000000A has already been removed',
            at: AT,
          },
        },
      }),
    );
    assert.deepEqual(acts(d), ['reclone:node1']);
    assert.match(d.summary, /no longer has the WAL I need/);
  });
});

describe('crash loop: PostgreSQL stopping soon after each start backs off', () => {
  it('restarts at once after one crash, then waits 2, 4, 8 … up to 60 s, saying why', () => {
    assert.deepEqual([1, 2, 3, 4, 6, 7, 20].map(backoffMs), [0, 2000, 4000, 8000, 32_000, 60_000, 60_000]);
    const first = onUnexpectedStop({ crashes: 0, startedAt: AT - 5000 }, AT, null);
    assert.deepEqual(first, { crashes: 1, retryAfter: 0, error: null });
    const third = onUnexpectedStop({ crashes: 2, startedAt: AT - 2000 }, AT, lastProblem(LOG, AT));
    assert.equal(third.crashes, 3);
    assert.equal(third.retryAfter, AT + 4000);
    assert.match(
      third.error ?? '',
      /stopped 3 times within 60 s of being started; last error in its log: could not write .*No space left on device; next start in 4 s/,
    );
  });

  it('a stop long after the last start is a first crash again; a minute of running clears the count', () => {
    assert.equal(onUnexpectedStop({ crashes: 5, startedAt: AT - 120_000 }, AT, null).crashes, 1);
    assert.equal(settled({ crashes: 3, startedAt: AT - 61_000 }, AT, true), true);
    assert.equal(settled({ crashes: 3, startedAt: AT - 10_000 }, AT, true), false);
    assert.equal(settled({ crashes: 3, startedAt: AT - 61_000 }, AT, false), false);
  });

  it('a background operation that keeps failing (bootstrap, clone) is retried after 5, 10, 20, 40, then 60 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 9].map(operationBackoffMs), [5000, 10_000, 20_000, 40_000, 60_000, 60_000]);
  });
});
