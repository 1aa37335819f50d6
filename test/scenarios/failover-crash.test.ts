/**
 * Failover stories on a real 3-node cluster:
 * - given a healthy cluster, when the leader's node dies (agent and postmaster SIGKILLed together), then one replica
 *   is promoted, the other follows it, no acknowledged write is missing, and the dead node rejoins through pg_rewind
 *   when restarted;
 * - when only the leader's PostgreSQL crashes, then it is restarted in place: same leader, same timeline;
 * - when the leader's agent is stopped gracefully, then another member leads at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../src/lib/proc.js';
import { healthyStatus, leaderOf, newLeaderStatus, startCluster } from '../helpers/cluster.js';
import { agentPid, kill9, postmasterPid, readCluster, superuserPassword, WriteProbe } from '../helpers/scenario.js';

describe('failover: node crash, postgres crash, graceful stop', () => {
  it('handles each without losing an acknowledged write or leaving two primaries', async () => {
    await using c = await startCluster({ name: 'failover' });
    assert.equal((await c.up()).code, 0);
    let s = await healthyStatus(c);
    const ports = s.members.map((m) => m.port);
    const first = leaderOf(s);
    assert.ok(first);
    await c.query(first.port, 'CREATE TABLE probe (id int PRIMARY KEY)');

    // --- node crash, under a write probe -------------------------------------------------------------------------
    const probe = new WriteProbe(ports, superuserPassword(c));
    probe.start();
    await c.waitFor('some acknowledged writes', async () => probe.acked.length >= 20);
    kill9(agentPid(c, first.name), postmasterPid(c, first.name));
    const afterCrash = await newLeaderStatus(c, first.name, 30_000);
    const second = leaderOf(afterCrash);
    assert.ok(second);
    const survivor = afterCrash.members.find((m) => m.name !== first.name && m.name !== second.name);
    assert.ok(survivor);
    await c.waitFor(
      `${survivor.name} streaming from ${second.name}`,
      async () => {
        const rows = await c.query(
          second.port,
          `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'`,
        );
        return rows.some((r) => r['application_name'] === survivor.name);
      },
      30_000,
    );
    await c.waitFor('writes acknowledged by the new leader', async () => {
      const n = probe.acked.length;
      await sleep(300);
      return probe.acked.length > n;
    });
    await probe.stop();
    const ids = new Set((await c.query(second.port, 'SELECT id FROM probe')).map((r) => r['id'] as number));
    const missing = probe.acked.filter((id) => !ids.has(id));
    // Asynchronous replication may lose the last commits before a crash (bounded by maximum_lag_on_failover);
    // here the replicas stream with no lag, so the bound is tiny: never more than a handful of 20 ms writes.
    assert.ok(missing.length <= 5, `acknowledged ids missing after an async failover: ${missing.join(',')}`);
    const dcs = await readCluster(afterCrash);
    assert.equal(dcs.leader?.name, second.name);
    assert.ok(dcs.history.length >= 1, 'the promotion is recorded in /history');

    // The dead node comes back through `up` and rejoins as a streaming replica on the new timeline (pg_rewind) —
    // also when the leader is idle right after a WAL segment switch (archive_timeout, a backup): the rewound node's
    // minimum recovery point is then past the leader's last record, and it must not wait for the next write.
    await c.query(second.port, 'SELECT pg_switch_wal()');
    assert.equal((await c.up()).code, 0);
    s = await healthyStatus(c);
    assert.equal(leaderOf(s)?.name, second.name, 'the returning node does not take over');
    const back = s.members.find((m) => m.name === first.name);
    assert.equal(back?.role, 'replica');
    assert.equal(back?.timeline, leaderOf(s)?.timeline);
    const log = readFileSync(join(c.dir, first.name, 'agent.log'), 'utf8');
    assert.match(log, /running pg_rewind from/);
    // Its archiver does not stall on the segment where it left the old timeline (the follower archived that one up
    // to the fork): every WAL file it has ready for archiving gets archived.
    const status = join(c.dir, first.name, 'data', 'pg_wal', 'archive_status');
    await c.waitFor(
      `${first.name} archives every WAL file it has ready`,
      async () => readdirSync(status).filter((f) => f.endsWith('.ready')).length === 0,
      30_000,
    );
    const primaries = await Promise.all(
      s.members.map(async (m) => (await c.query(m.port, 'SELECT pg_is_in_recovery() AS r'))[0]?.['r'] === false),
    );
    assert.equal(primaries.filter(Boolean).length, 1, 'exactly one writable primary');

    // --- postgres-only crash: restarted in place --------------------------------------------------------------------
    const tl = leaderOf(s)?.timeline;
    const historyBefore = (await readCluster(s)).history.length;
    const crashed = postmasterPid(c, second.name);
    kill9(crashed);
    await c.waitFor(
      'the leader PostgreSQL back, writable',
      async () => {
        const pid = postmasterPid(c, second.name);
        if (pid === null || pid === crashed) return false;
        const [r] = await c.query(second.port, 'SELECT pg_is_in_recovery() AS rec');
        return r?.['rec'] === false;
      },
      60_000,
    );
    s = await healthyStatus(c);
    assert.equal(leaderOf(s)?.name, second.name, 'no failover for a PostgreSQL crash');
    const restartLog = readFileSync(join(c.dir, second.name, 'agent.log'), 'utf8');
    assert.doesNotMatch(
      restartLog,
      /PostgreSQL did not start/,
      'the in-place restart succeeds at the first attempt (no zombie lock-file clash)',
    );
    assert.equal(leaderOf(s)?.timeline, tl, 'no new timeline');
    assert.equal((await readCluster(s)).history.length, historyBefore);
    await c.query(second.port, 'INSERT INTO probe (id) VALUES (-1)');

    // --- graceful stop of the leader's agent: immediate handover -------------------------------------------------
    const stopping = agentPid(c, second.name);
    assert.ok(stopping);
    const t0 = Date.now();
    process.kill(stopping, 'SIGTERM');
    const handed = await newLeaderStatus(c, second.name, 30_000);
    const third = leaderOf(handed);
    assert.ok(third);
    // Handed over, not expired: the stopping leader released its key after a clean shutdown.
    const oldLog = readFileSync(join(c.dir, second.name, 'agent.log'), 'utf8');
    assert.match(oldLog, /demoting \(graceful\)/);
    assert.match(oldLog, /SIGTERM received/);
    console.log(`graceful handover: new leader ${third.name} after ${Date.now() - t0} ms`);
    const rows = await c.query(third.port, 'SELECT count(*)::int AS n FROM probe WHERE id = -1');
    assert.equal(rows[0]?.['n'], 1, 'the write made before the handover is on the new leader');
    assert.equal((await c.up()).code, 0);
    s = await healthyStatus(c);
    assert.equal(leaderOf(s)?.name, third.name);
  });
});
