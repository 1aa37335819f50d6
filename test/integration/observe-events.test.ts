/**
 * Cluster events on one real 3-node cluster (`pgkeel up`): after `ctl switchover` the merged `ctl events` tells
 * requested → demote on the old leader → lock won and promote on the new one → done, in order with reasons; a DCS
 * config change names its keys; GET /events?since= filters; after the leader's agent and postmaster are killed
 * the survivors tell the leader lost, then a promote with its reason, and `status --json` shows last_failover,
 * lag_seconds and a health verdict.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cli, healthyStatus, leaderOf, newLeaderStatus, startCluster, type TestCluster } from '../helpers/cluster.js';
import { agentPid, kill9, patchDcsConfig, postmasterPid } from '../helpers/scenario.js';
import type { ClusterEvent } from '../../src/observe/events/event.js';
import type { StatusJson } from '../../src/local/status.js';

let c: TestCluster;

const ctl = (...args: string[]) => cli(['ctl', ...args, '--dir', c.dir], 60_000);

async function eventsJson(since: string): Promise<ClusterEvent[]> {
  const r = await ctl('events', '--json', '--since', since);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ClusterEvent[];
}

/** Index of the first event matching, at or after `from`; -1 when none. */
function find(es: readonly ClusterEvent[], pred: (e: ClusterEvent) => boolean, from = 0): number {
  const i = es.slice(from).findIndex(pred);
  return i < 0 ? -1 : i + from;
}

const story = (es: readonly ClusterEvent[]) => es.map((e) => `${e.time} ${e.member} ${e.kind}: ${e.reason}`).join('\n');

function assertInTimeOrder(es: readonly ClusterEvent[]): void {
  for (let i = 1; i < es.length; i++)
    assert.ok((es[i] as ClusterEvent).at >= (es[i - 1] as ClusterEvent).at, `not in time order:\n${story(es)}`);
  for (const e of es) assert.ok(e.reason.length > 0, `an event without a reason: ${JSON.stringify(e)}`);
}

describe('cluster events on a real cluster', () => {
  before(async () => {
    c = await startCluster({ name: 'events' });
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('after ctl switchover: requested, demote on the old leader, lock and promote on the new one, done', async (t) => {
    const s = await healthyStatus(c, 3, 90_000);
    const old = leaderOf(s)?.name as string;
    const candidate = s.members.find((m) => m.name !== old)?.name as string;
    const sw = await ctl('switchover', '--candidate', candidate, '--force');
    assert.equal(sw.code, 0, `${sw.stdout}\n${sw.stderr}`);
    await c.waitFor(
      `${candidate} leading`,
      async () => {
        const st = await c.status();
        return leaderOf(st)?.name === candidate && leaderOf(st)?.state === 'running';
      },
      60_000,
    );
    const es = await c.waitFor(
      'switchover_done in ctl events',
      async () => {
        const e = await eventsJson('5m');
        return e.some((x) => x.kind === 'switchover_done') ? e : undefined;
      },
      30_000,
    );
    assertInTimeOrder(es);
    const req = find(es, (e) => e.kind === 'switchover_requested' && e.from === old && e.to === candidate);
    const demote = find(es, (e) => e.kind === 'demote' && e.member === old, req);
    const promote = find(es, (e) => e.kind === 'promote' && e.member === candidate, demote);
    const acquired = find(es, (e) => e.kind === 'leader_acquired' && e.member === candidate, demote);
    const done = find(es, (e) => e.kind === 'switchover_done' && e.from === old && e.to === candidate, promote);
    assert.ok(req >= 0 && demote > req && promote > demote && acquired > demote && done > promote, story(es));
    assert.match((es[demote] as ClusterEvent).reason, /switchover|demot/i, story(es));
    assert.ok(((es[done] as ClusterEvent).timeline ?? 0) >= 2, story(es));
    // Each happening once after the merge, although every member saw the request.
    assert.equal(es.filter((e) => e.kind === 'switchover_requested').length, 1, story(es));

    const text = await ctl('events', '--since', '5m');
    assert.equal(text.code, 0, text.stderr);
    t.diagnostic(text.stdout);
    assert.match(text.stdout, /Time \(UTC\)\s+Member\s+TL\s+Kind\s+Reason/);
    assert.match(
      text.stdout,
      /derived: writes were down for \d+\.\d s \(\w+ began to demote at .*, leader lost at .* on \w+, \w+ promoted at /,
    );
  });

  it('a DCS config change names its keys; GET /events?since= filters', async () => {
    const s = await healthyStatus(c, 3, 60_000);
    const before = Date.now();
    await patchDcsConfig(s, { maximum_lag_on_failover: 2_097_152 });
    const es = await c.waitFor(
      'config_changed in ctl events',
      async () => {
        const e = await eventsJson(String(before));
        return e.some((x) => x.kind === 'config_changed') ? e : undefined;
      },
      30_000,
    );
    const changed = es.find((e) => e.kind === 'config_changed') as ClusterEvent;
    assert.deepEqual(changed.details?.['keys'], ['maximum_lag_on_failover']);
    assert.equal(es.filter((e) => e.kind === 'config_changed').length, 1, story(es));

    const base = (leaderOf(s)?.api_url ?? '').replace(/\/patroni$/, '');
    const all = (await (await fetch(`${base}/events`)).json()) as ClusterEvent[];
    assert.ok(all.length >= 2, story(all));
    const cut = (all.at(-1) as ClusterEvent).at;
    const recent = (await (await fetch(`${base}/events?since=${cut}`)).json()) as ClusterEvent[];
    assert.ok(recent.length >= 1 && recent.every((e) => e.at >= cut), story(recent));
    assert.ok(recent.length < all.length, 'since filtered nothing');
    const iso = (await (await fetch(`${base}/events?since=${new Date(cut).toISOString()}`)).json()) as ClusterEvent[];
    assert.deepEqual(iso, recent);
    assert.equal((await fetch(`${base}/events?since=yesterday`)).status, 400);
  });

  it('after the leader crashes: leader lost, then a promote with its reason; status shows last_failover and lag', async (t) => {
    const s = await healthyStatus(c, 3, 60_000);
    const dead = leaderOf(s)?.name as string;
    const killedAt = Date.now();
    kill9(agentPid(c, dead), postmasterPid(c, dead));
    const after = await newLeaderStatus(c, dead, 60_000);
    const next = leaderOf(after)?.name as string;
    const es = await c.waitFor(
      'failover_done in ctl events',
      async () => {
        const e = await eventsJson('2m');
        return e.some((x) => x.kind === 'failover_done' && x.at >= killedAt) ? e : undefined;
      },
      30_000,
    );
    assertInTimeOrder(es);
    t.diagnostic(story(es));
    const lost = find(es, (e) => e.kind === 'leader_lost' && e.member === dead && e.at >= killedAt);
    const promote = find(es, (e) => e.kind === 'promote' && e.member === next, lost);
    const done = find(es, (e) => e.kind === 'failover_done' && e.from === dead && e.to === next, promote);
    assert.ok(lost >= 0 && promote > lost && done > promote, story(es));
    assert.match((es[promote] as ClusterEvent).reason, /promot|leader/i);

    const st = await c.waitFor(
      'status with the failover and a degraded verdict',
      async () => {
        const x = await c.status();
        return x.last_failover?.to === next && x.health?.verdict === 'degraded' ? x : undefined;
      },
      60_000,
    );
    assert.deepEqual([st.last_failover?.from, st.last_failover?.to], [dead, next]);
    assert.match(st.last_failover?.time ?? '', /^\d{4}-\d{2}-\d{2}T/);
    assert.ok((st.last_failover?.timeline ?? 0) >= 3);
    assert.match(st.health?.reason ?? '', new RegExp(dead));
    for (const m of st.members) assert.ok('lag_seconds' in m, `no lag_seconds on ${m.name}`);
    assert.equal(st.members.find((m) => m.name === next)?.lag_seconds, 0);
    const streaming = await c.waitFor(
      'the other survivor streaming with a lag in seconds',
      async () => {
        const x: StatusJson = await c.status();
        const r = x.members.find((m) => m.name !== next && m.name !== dead);
        return r?.state === 'streaming' && typeof r.lag_seconds === 'number' ? r : undefined;
      },
      60_000,
    );
    assert.ok((streaming.lag_seconds as number) >= 0);

    const list = await ctl('list', '--json');
    const j = JSON.parse(list.stdout) as { last_failover: unknown; health: { verdict: string } };
    assert.deepEqual(j.last_failover, st.last_failover);
    assert.match(j.health.verdict, /^(healthy|degraded|critical)$/);
  });
});
