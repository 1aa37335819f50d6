/**
 * `pgkeel drill` through the real CLI against one real 3-node `pgkeel up` cluster (allow_drills is on there):
 * switchover, kill-leader and partition-leader, one round each, each healed with a new leader, the old leader
 * streaming again and the lost-write count reported; then POST /drill refused on a member whose config turns
 * drills off (403) and without credentials (401). The 403 without REST authentication is in
 * src/api/actions-drill.test.ts (`pgkeel up` always sets credentials).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { cli, healthyStatus, leaderOf, startCluster, type TestCluster } from '../helpers/cluster.js';
import { agentPid } from '../helpers/scenario.js';
import { pidAlive } from '../../src/lib/proc.js';

let c: TestCluster;

interface DrillJson {
  scenario: string;
  members: string[];
  fault_seconds: number | null;
  rounds: Array<{
    old_leader: string;
    new_leader: string | null;
    healed: boolean;
    rto_ms: number | null;
    acked: number;
    lost: number;
    rpo_ms: number;
  }>;
  summary: { rounds: number; healed: number; lost: number };
  exit_code: number;
}

async function drill(scenario: string): Promise<DrillJson['rounds'][number]> {
  const r = await cli(['drill', '--scenario', scenario, '--rounds', '1', '--dir', c.dir, '--json'], 240_000);
  assert.equal(r.code, 0, `drill ${scenario} failed:\n${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(r.stdout) as DrillJson;
  assert.equal(j.scenario, scenario);
  assert.deepEqual(j.members, ['node1', 'node2', 'node3']);
  assert.deepEqual([j.summary.rounds, j.summary.healed, j.exit_code], [1, 1, 0]);
  const round = j.rounds[0];
  assert.ok(round);
  assert.equal(round.healed, true);
  assert.ok(round.acked > 50, `the probe wrote before and after the fault (${round.acked} acks)`);
  assert.equal(typeof round.lost, 'number');
  assert.equal(typeof round.rpo_ms, 'number');
  assert.ok(round.rto_ms !== null && round.rto_ms > 0, `RTO measured: ${round.rto_ms}`);
  assert.ok(round.new_leader && round.new_leader !== round.old_leader, `a new leader: ${JSON.stringify(round)}`);
  // The drill's own verdict, checked independently: the old leader streams from the new one.
  const s = await c.status();
  assert.equal(leaderOf(s)?.name, round.new_leader);
  assert.equal(s.members.find((m) => m.name === round.old_leader)?.state, 'streaming', JSON.stringify(s.members));
  // The drill's rows are gone.
  const port = s.members.find((m) => m.name === round.new_leader)?.port as number;
  assert.deepEqual(await c.query(port, 'SELECT count(*)::int AS n FROM pgkeel_drill'), [{ n: 0 }]);
  return round;
}

function restCreds(): string {
  const { restapi } = JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as {
    restapi: { username: string; password: string };
  };
  return 'Basic ' + Buffer.from(`${restapi.username}:${restapi.password}`).toString('base64');
}

async function postDrill(apiUrl: string, auth: string | null): Promise<{ code: number; text: string }> {
  const res = await fetch(apiUrl.replace(/\/patroni$/, '') + '/drill', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: JSON.stringify({ fault: 'crash', seconds: 5 }),
    signal: AbortSignal.timeout(10_000),
  });
  return { code: res.status, text: await res.text() };
}

describe('pgkeel drill on a real cluster', () => {
  before(async () => {
    c = await startCluster({ name: 'drill' });
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('switchover: healed, a new leader, no acknowledged write lost (the old leader hands over its WAL)', async () => {
    const r = await drill('switchover');
    assert.equal(r.lost, 0);
  });

  it('kill-leader: the leader PostgreSQL is SIGKILLed and its agent silent; a replica takes over, the old one rejoins', async () => {
    await drill('kill-leader');
  });

  it('partition-leader: the leader loses the DCS, demotes; a replica takes over, the old one rejoins', async () => {
    await drill('partition-leader');
  });

  it('POST /drill: 403 on a member whose config does not allow drills, 401 without credentials', async () => {
    const s = await healthyStatus(c, 3, 90_000);
    const m = s.members.find((x) => x.role !== 'leader');
    assert.ok(m);
    assert.equal((await postDrill(m.api_url, null)).code, 401);
    const file = join(c.dir, m.name, 'node.yml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    assert.equal(doc.getIn(['restapi', 'allow_drills']), true, '`pgkeel up` opts its staging cluster in');
    doc.deleteIn(['restapi', 'allow_drills']);
    writeFileSync(file, doc.toString(), { mode: 0o600 });
    const pid = agentPid(c, m.name);
    assert.ok(pid);
    process.kill(pid, 'SIGTERM');
    await c.waitFor(`${m.name}'s agent to stop`, async () => !pidAlive(pid), 60_000);
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const refused = await postDrill(m.api_url, restCreds());
    assert.equal(refused.code, 403, refused.text);
    assert.match(refused.text, /restapi\.allow_drills/);
    const after = await healthyStatus(c, 3, 90_000);
    assert.equal(after.members.find((x) => x.name === m.name)?.state, 'streaming', 'nothing was injected');
  });
});
