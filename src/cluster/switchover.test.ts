import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, Member, MemberRecord } from '../dcs/layout.js';
import { formatScheduledAt, parseScheduledAt, planSwitchover } from './switchover.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

function member(name: string, rec: Partial<MemberRecord> = {}): [string, Member] {
  const record: MemberRecord = {
    conn_url: `postgres://127.0.0.1:5432/postgres`,
    api_url: `http://127.0.0.1:8008/patroni`,
    state: 'running',
    role: 'replica',
    ...rec,
  };
  return [name, { name, record, modRevision: 1, lease: '1' }];
}

function cluster(p: Partial<Cluster> = {}): Cluster {
  return {
    revision: 10,
    initialize: '7',
    config: { value: { ttl: 10, loop_wait: 1 }, modRevision: 2 },
    leader: { name: 'node1', modRevision: 3, lease: '1' },
    members: new Map([member('node1', { role: 'master' }), member('node2'), member('node3')]),
    sync: undefined,
    failover: undefined,
    history: [],
    status: undefined,
    failsafe: undefined,
    ...p,
  };
}

function refusal(r: ReturnType<typeof planSwitchover>): [number, string] {
  assert.equal(r.refused, true, `expected a refusal, got ${JSON.stringify(r)}`);
  return r.refused ? [r.code, r.body] : [0, ''];
}

describe('planSwitchover: what Patroni would refuse', () => {
  it('accepts a switchover to a healthy named candidate and writes leader + member', () => {
    const r = planSwitchover('switchover', cluster(), { leader: 'node1', candidate: 'node2', scheduled_at: null }, NOW);
    assert.deepEqual(r, {
      refused: false,
      value: { leader: 'node1', member: 'node2' },
      fromLeader: 'node1',
      candidate: 'node2',
      scheduled: false,
    });
  });

  it('accepts a switchover to any member when one is healthy (no member in the key)', () => {
    const r = planSwitchover('switchover', cluster(), { leader: 'node1' }, NOW);
    assert.equal(r.refused, false);
    assert.deepEqual(!r.refused && r.value, { leader: 'node1' });
  });

  it('400 without a leader (switchover) or without a candidate (failover), or a non-string field', () => {
    assert.deepEqual(refusal(planSwitchover('switchover', cluster(), { candidate: 'node2' }, NOW)), [
      400,
      'Switchover could be performed only from a specific leader',
    ]);
    assert.deepEqual(refusal(planSwitchover('failover', cluster(), { leader: 'node1' }, NOW)), [
      400,
      'Failover could be performed only to a specific candidate',
    ]);
    assert.equal(refusal(planSwitchover('switchover', cluster(), { leader: 1 }, NOW))[0], 400);
    assert.equal(
      refusal(
        planSwitchover('failover', cluster(), { candidate: 'node2', scheduled_at: '2030-01-01T00:00:00Z' }, NOW),
      )[0],
      400,
    );
  });

  it('412 when the named leader is not the leader, or there is no leader key', () => {
    const [code, body] = refusal(planSwitchover('switchover', cluster(), { leader: 'node2' }, NOW));
    assert.equal(code, 412);
    assert.match(body, /^leader name does not match: node2 is not the leader \(the leader is node1\)/);
    assert.match(
      refusal(planSwitchover('switchover', cluster({ leader: undefined }), { leader: 'node1' }, NOW))[1],
      /leader key is free/,
    );
  });

  it('412 for an unknown, unhealthy, nofailover or same-as-leader candidate', () => {
    const members = new Map([
      member('node1', { role: 'master' }),
      member('node2', { state: 'starting' }),
      member('node3', { tags: { nofailover: true } }),
    ]);
    const c = cluster({ members });
    assert.deepEqual(refusal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node9' }, NOW)), [
      412,
      'candidate does not exists: node9 is not a member of the cluster',
    ]);
    assert.match(
      refusal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node2' }, NOW))[1],
      /candidate node2 is not healthy \(role replica, state starting\)/,
    );
    assert.match(
      refusal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node3' }, NOW))[1],
      /candidate node3 is not healthy \(.*tagged nofailover\)/,
    );
    assert.match(
      refusal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node1' }, NOW))[1],
      /target and source are the same/,
    );
    assert.match(
      refusal(planSwitchover('switchover', c, { leader: 'node1' }, NOW))[1],
      /no good candidates have been found/,
    );
  });

  it('412 in synchronous mode for a candidate not in /sync, and no candidate outside /sync counts', () => {
    const c = cluster({
      config: { value: { synchronous_mode: true }, modRevision: 2 },
      sync: { leader: 'node1', standbys: ['node3'], modRevision: 4 },
    });
    assert.match(
      refusal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node2' }, NOW))[1],
      /^candidate name does not match with sync_standby: node2 is not in \/sync \(node3\)/,
    );
    assert.equal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node3' }, NOW).refused, false);
    const noneSync = cluster({ config: c.config, sync: { leader: 'node1', standbys: [], modRevision: 4 } });
    assert.match(refusal(planSwitchover('switchover', noneSync, { leader: 'node1' }, NOW))[1], /listed in \/sync/);
  });

  it('412 while paused, for switchover and failover alike', () => {
    const c = cluster({ config: { value: { pause: true }, modRevision: 2 } });
    assert.match(refusal(planSwitchover('switchover', c, { leader: 'node1', candidate: 'node2' }, NOW))[1], /paused/);
    assert.equal(refusal(planSwitchover('failover', c, { candidate: 'node2' }, NOW))[0], 412);
  });

  it('failover works without a leader and names the current leader when there is one', () => {
    const r = planSwitchover('failover', cluster({ leader: undefined }), { candidate: 'node2' }, NOW);
    assert.deepEqual(!r.refused && r.value, { member: 'node2' });
    const r2 = planSwitchover('failover', cluster(), { candidate: 'node3' }, NOW);
    assert.deepEqual(!r2.refused && r2.value, { leader: 'node1', member: 'node3' });
  });

  it('schedules with a timezone; 400 without one, 422 unreadable or past', () => {
    const r = planSwitchover(
      'switchover',
      cluster(),
      { leader: 'node1', candidate: 'node2', scheduled_at: '2026-03-01T14:30:00+02:00' },
      NOW,
    );
    assert.equal(r.refused, false);
    assert.equal(!r.refused && r.scheduled, true);
    assert.equal(!r.refused && r.value.scheduled_at, '2026-03-01T12:30:00+00:00');
    assert.deepEqual(
      refusal(planSwitchover('switchover', cluster(), { leader: 'node1', scheduled_at: '2026-03-01T14:30' }, NOW)),
      [400, 'Timezone information is mandatory for the scheduled switchover'],
    );
    assert.equal(
      refusal(planSwitchover('switchover', cluster(), { leader: 'node1', scheduled_at: 'tomorrow' }, NOW))[0],
      422,
    );
    assert.deepEqual(
      refusal(planSwitchover('switchover', cluster(), { leader: 'node1', scheduled_at: '2026-03-01T11:59:00Z' }, NOW)),
      [422, 'Cannot schedule switchover in the past'],
    );
  });
});

describe('scheduled_at parsing', () => {
  it('reads Z, +hh:mm, +hhmm and +hh offsets, and a space instead of T', () => {
    const at = Date.parse('2026-03-01T13:00:00Z');
    for (const s of [
      '2026-03-01T13:00:00Z',
      '2026-03-01T15:00:00+02:00',
      '2026-03-01T15:00:00+0200',
      '2026-03-01 15:00+02',
      '2026-03-01T08:00:00.000-05:00',
    ]) {
      assert.equal(parseScheduledAt(s, NOW, 'switchover'), at, s);
    }
    assert.equal(typeof parseScheduledAt('2026-13-45T99:00:00Z', NOW, 'switchover'), 'object');
  });

  it('formats as Patroni isoformat in UTC', () => {
    assert.equal(formatScheduledAt(Date.parse('2026-03-01T13:00:00Z')), '2026-03-01T13:00:00+00:00');
    assert.equal(formatScheduledAt(Date.parse('2026-03-01T13:00:00.250Z')), '2026-03-01T13:00:00.250+00:00');
  });
});
