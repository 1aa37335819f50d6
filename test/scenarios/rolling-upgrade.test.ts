/**
 * The rolling upgrade of docs/deploy.md, step by step on a real 3-node cluster under a write probe: each replica's
 * agent is stopped (SIGTERM, as `systemctl stop` sends it) and started again (`up` starts what is missing, as
 * `systemctl start` after installing the new version), then a switchover to an upgraded replica, then the old
 * leader the same way. Then: the cluster is healthy, the switchover's candidate still leads, and every acknowledged
 * write is on it (a switchover loses nothing). It proves the procedure, not a change of version: both "versions" are
 * this build.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { cli, healthyStatus, leaderOf, newLeaderStatus, type TestCluster, startCluster } from '../helpers/cluster.js';
import { agentPid, superuserPassword, WriteProbe } from '../helpers/scenario.js';

/** `systemctl stop` then `systemctl start` of one member's agent; returns once the cluster is healthy again. */
async function restartAgent(c: TestCluster, node: string): Promise<void> {
  const pid = agentPid(c, node);
  assert.ok(pid, `${node}'s agent runs`);
  process.kill(pid, 'SIGTERM');
  await c.waitFor(`${node}'s agent to exit`, async () => !pidAlive(pid), 60_000);
  const up = await c.up();
  assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  await healthyStatus(c, 3, 90_000);
}

describe('rolling upgrade of pgkeel: replicas first, switchover, old leader last', () => {
  it('keeps the cluster writable and loses no acknowledged write', async () => {
    await using c = await startCluster({ name: 'rolling' });
    assert.equal((await c.up()).code, 0);
    const s = await healthyStatus(c);
    const leader = leaderOf(s);
    assert.ok(leader);
    const replicas = s.members.filter((m) => m.name !== leader.name).map((m) => m.name);
    await c.query(leader.port, 'CREATE TABLE probe (id int PRIMARY KEY)');
    const probe = new WriteProbe(
      s.members.map((m) => m.port),
      superuserPassword(c),
    );
    probe.start(240_000);
    await c.waitFor('some acknowledged writes', async () => probe.acked.length >= 10);

    for (const r of replicas) {
      await restartAgent(c, r);
      assert.equal(leaderOf(await c.status())?.name, leader.name, `restarting replica ${r} does not move the leader`);
    }
    const candidate = replicas[0] as string;
    const sw = await cli(
      ['ctl', 'switchover', '--leader', leader.name, '--candidate', candidate, '--force', '--dir', c.dir],
      120_000,
    );
    assert.equal(sw.code, 0, sw.stderr);
    const switched = await newLeaderStatus(c, leader.name, 60_000);
    assert.equal(leaderOf(switched)?.name, candidate);
    await restartAgent(c, leader.name);

    const after = await healthyStatus(c);
    assert.equal(leaderOf(after)?.name, candidate, 'the old leader rejoins as a replica');
    const before = probe.acked.length;
    await c.waitFor('writes acknowledged after the last restart', async () => {
      await sleep(300);
      return probe.acked.length > before;
    });
    await probe.stop();
    const port = leaderOf(after)?.port as number;
    const ids = new Set((await c.query(port, 'SELECT id FROM probe')).map((r) => r['id'] as number));
    assert.deepEqual(
      probe.acked.filter((id) => !ids.has(id)),
      [],
      'no acknowledged write lost',
    );
  });
});
