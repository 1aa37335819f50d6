/**
 * Failover stories that depend on the cluster's mode:
 * - given synchronous_mode, when the leader's node dies under a write probe, then the synchronous standby is
 *   promoted and every acknowledged insert is on it;
 * - given a paused cluster, when the leader's PostgreSQL dies, then no agent acts until the cluster is resumed;
 * - when etcd stops, then the leader demotes (no writable primary without the DCS) and the cluster recovers when
 *   etcd returns; with failsafe_mode, every member confirms the primary over REST and it stays writable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { healthyStatus, leaderOf, newLeaderStatus, startCluster } from '../helpers/cluster.js';
import {
  agentPid,
  kill9,
  patchDcsConfig,
  postmasterPid,
  readCluster,
  rest,
  superuserPassword,
  WriteProbe,
} from '../helpers/scenario.js';

describe('failover modes: synchronous, paused, DCS outage', () => {
  it('keeps every acknowledged commit in synchronous mode, stays still when paused, demotes without etcd', async () => {
    await using c = await startCluster({ name: 'modes' });
    assert.equal((await c.up()).code, 0);
    let s = await healthyStatus(c);
    const leader = leaderOf(s);
    assert.ok(leader);
    await c.query(leader.port, 'CREATE TABLE probe (id int PRIMARY KEY)');

    // --- synchronous mode ---------------------------------------------------------------------------------------
    await patchDcsConfig(s, { synchronous_mode: true });
    const syncName = await c.waitFor(
      'a synchronous standby in /sync and in PostgreSQL',
      async () => {
        const dcs = await readCluster(s);
        const name = dcs.sync?.standbys[0];
        if (!name || dcs.sync?.leader !== leader.name) return undefined;
        const rows = await c.query(
          leader.port,
          `SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'`,
        );
        return rows.some((r) => r['application_name'] === name) ? name : undefined;
      },
      30_000,
    );
    s = await c.status();
    assert.equal(s.members.find((m) => m.name === syncName)?.role, 'sync_standby', 'status shows the sync standby');

    const probe = new WriteProbe(
      s.members.map((m) => m.port),
      superuserPassword(c),
    );
    probe.start();
    await c.waitFor('acknowledged writes', async () => probe.acked.length >= 30);
    kill9(agentPid(c, leader.name), postmasterPid(c, leader.name));
    const after = await newLeaderStatus(c, leader.name, 40_000);
    const promoted = leaderOf(after);
    assert.equal(promoted?.name, syncName, 'only the synchronous standby may be promoted');
    assert.ok(promoted);
    await c.waitFor(
      'writes on the new leader',
      async () => {
        const n = probe.acked.length;
        await sleep(300);
        return probe.acked.length > n;
      },
      40_000,
    );
    await probe.stop();
    const ids = new Set((await c.query(promoted.port, 'SELECT id FROM probe')).map((r) => r['id'] as number));
    const lost = probe.acked.filter((id) => !ids.has(id));
    assert.deepEqual(lost, [], 'no acknowledged commit is lost in synchronous mode');
    assert.ok(probe.acked.length > 30);

    assert.equal((await c.up()).code, 0, 'the dead node comes back');
    s = await healthyStatus(c);
    await patchDcsConfig(s, { synchronous_mode: false });
    await c.waitFor('/sync removed', async () => (await readCluster(s)).sync === undefined, 30_000);

    // --- paused: no agent acts -----------------------------------------------------------------------------------
    const l2 = leaderOf(s);
    assert.ok(l2);
    await patchDcsConfig(s, { pause: true });
    await c.waitFor(
      'every member reports pause',
      async () => {
        for (const m of s.members) if ((await rest(m.api_url)).body['pause'] !== true) return false;
        return true;
      },
      20_000,
    );
    const dead = postmasterPid(c, l2.name);
    kill9(dead);
    const keyBefore = (await readCluster(s)).leader;
    // Watch for a while: nothing may restart, promote or take the key.
    for (let i = 0; i < 12; i++) {
      await sleep(500);
      assert.equal(postmasterPid(c, l2.name), null, 'a paused agent does not restart PostgreSQL');
      const k = (await readCluster(s)).leader;
      assert.equal(k?.name, keyBefore?.name, 'nobody takes over while paused');
    }
    await patchDcsConfig(s, { pause: null });
    await c.waitFor(
      'the leader restarted in place after resume',
      async () => {
        const [r] = await c.query(l2.port, 'SELECT pg_is_in_recovery() AS rec');
        return r?.['rec'] === false;
      },
      60_000,
    );
    s = await healthyStatus(c);
    assert.equal(leaderOf(s)?.name, l2.name);

    // --- etcd stops: the leader demotes before its key could expire ----------------------------------------------
    const etcdPid = Number(readFileSync(join(c.dir, 'etcd', 'etcd.pid'), 'utf8').split('\n')[0]);
    assert.ok(pidAlive(etcdPid));
    process.kill(etcdPid, 'SIGKILL');
    await c.waitFor(
      'no writable primary without the DCS',
      async () => {
        for (const m of s.members) {
          const rows = await c.query(m.port, 'SELECT pg_is_in_recovery() AS rec').catch(() => [{ rec: true }]);
          if (rows[0]?.['rec'] === false) return false;
        }
        return true;
      },
      30_000,
    );
    for (const m of s.members)
      assert.equal((await rest(m.api_url.replace('/patroni', '/primary'))).code, 503, `${m.name} /primary`);
    const log = readFileSync(join(c.dir, l2.name, 'agent.log'), 'utf8');
    assert.match(log, /demoting \(offline\)/);

    // etcd comes back (up starts only what is missing): a leader again, everyone streaming.
    assert.equal((await c.up()).code, 0);
    s = await healthyStatus(c);
    const rows = await c.query(leaderOf(s)?.port as number, 'SELECT count(*)::int AS n FROM probe');
    assert.ok((rows[0]?.['n'] as number) >= probe.acked.length, 'the data survived the outage');

    // --- failsafe_mode: the primary stays writable through an etcd outage longer than the ttl ---------------------
    const l3 = leaderOf(s);
    assert.ok(l3);
    await patchDcsConfig(s, { failsafe_mode: true });
    await c.waitFor(
      'every member has seen /failsafe list all three',
      async () => {
        for (const m of s.members) {
          const r = await rest(m.api_url.replace('/patroni', '/failsafe'));
          if (r.code !== 200 || Object.keys(r.body).length !== 3) return false;
        }
        return true;
      },
      20_000,
    );
    const etcd2 = Number(readFileSync(join(c.dir, 'etcd', 'etcd.pid'), 'utf8').split('\n')[0]);
    process.kill(etcd2, 'SIGKILL');
    const ttlMs = 10_000;
    const until = Date.now() + ttlMs + 5_000;
    let writes = 0;
    while (Date.now() < until) {
      await c.query(l3.port, 'INSERT INTO probe (id) VALUES ($1)', [-100 - writes]);
      writes++;
      await sleep(500);
    }
    assert.ok(writes > 20, 'the primary kept accepting writes past the ttl');
    const l3log = readFileSync(join(c.dir, l3.name, 'agent.log'), 'utf8');
    assert.match(l3log, /staying primary in failsafe mode/);
    assert.equal((await c.up()).code, 0);
    s = await healthyStatus(c);
    assert.equal(leaderOf(s)?.name, l3.name, 'the failsafe primary is still the leader after etcd returns');
  });
});
