import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, Member, MemberRecord } from '../dcs/layout.js';
import { checkFailover, checkSwitchover, lagOf, parseScheduled } from './checks.js';
import { configDiff, patchFromSets } from './edit.js';
import { CtlError } from './errors.js';
import { listJson, listText, topologyText } from './view.js';

function member(name: string, rec: Partial<MemberRecord> = {}): [string, Member] {
  const port = 5430 + Number(name.slice(-1));
  const record: MemberRecord = {
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 100}/patroni`,
    state: 'running',
    role: 'replica',
    timeline: 2,
    xlog_location: 5_000_000,
    replay_lsn: 5_000_000,
    ...rec,
  };
  return [name, { name, record, modRevision: 1, lease: '1' }];
}

function cluster(p: Partial<Cluster> = {}): Cluster {
  return {
    revision: 10,
    initialize: '7382175862789562070',
    config: { value: { ttl: 10, maximum_lag_on_failover: 1048576 }, modRevision: 2 },
    leader: { name: 'node1', modRevision: 3, lease: '1' },
    members: new Map([member('node1', { role: 'master', replay_lsn: undefined }), member('node2'), member('node3')]),
    sync: undefined,
    failover: undefined,
    history: [],
    status: { optime: 5_000_000, slots: null, retainSlots: [] },
    failsafe: undefined,
    ...p,
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CtlError, String(e));
    return e.code;
  }
  return 'no error';
}

describe('ctl checks', () => {
  it('switchover: names the leader; refuses no leader, wrong leader, paused, unknown/unhealthy/lagging candidates, no candidate', () => {
    assert.equal(checkSwitchover(cluster(), 'pg', { candidate: 'node2' }), 'node1');
    assert.equal(
      code(() => checkSwitchover(cluster({ leader: undefined }), 'pg', {})),
      'CTL_NO_LEADER',
    );
    assert.equal(
      code(() => checkSwitchover(cluster(), 'pg', { leader: 'node2' })),
      'CTL_NOT_LEADER',
    );
    assert.equal(
      code(() => checkSwitchover(cluster({ config: { value: { pause: true }, modRevision: 2 } }), 'pg', {})),
      'CTL_PAUSED',
    );
    assert.equal(
      code(() => checkSwitchover(cluster(), 'pg', { candidate: 'node9' })),
      'CTL_UNKNOWN_MEMBER',
    );
    assert.equal(
      code(() => checkSwitchover(cluster(), 'pg', { candidate: 'node1' })),
      'CTL_SAME_MEMBER',
    );
    const sick = cluster({
      members: new Map([
        member('node1', { role: 'master' }),
        member('node2', { state: 'crashed' }),
        member('node3', { tags: { nofailover: true } }),
      ]),
    });
    assert.equal(
      code(() => checkSwitchover(sick, 'pg', { candidate: 'node2' })),
      'CTL_UNHEALTHY_CANDIDATE',
    );
    assert.equal(
      code(() => checkSwitchover(sick, 'pg', { candidate: 'node3' })),
      'CTL_UNHEALTHY_CANDIDATE',
    );
    assert.equal(
      code(() => checkSwitchover(sick, 'pg', {})),
      'CTL_NO_CANDIDATE',
    );
    const lagging = cluster({
      members: new Map([
        member('node1', { role: 'master' }),
        member('node2', { replay_lsn: 1_000_000 }),
        member('node3', { replay_lsn: 1_000 }),
      ]),
    });
    assert.equal(
      code(() => checkSwitchover(lagging, 'pg', { candidate: 'node2' })),
      'CTL_CANDIDATE_LAGGING',
    );
    assert.equal(
      code(() => checkSwitchover(lagging, 'pg', {})),
      'CTL_NO_CANDIDATE',
    );
    // Scheduled: only names are checked now; the leader judges health when it is due.
    assert.equal(checkSwitchover(lagging, 'pg', { candidate: 'node2', scheduledAt: Date.now() + 60_000 }), 'node1');
  });

  it('failover: works without a leader, refuses the same things for the candidate', () => {
    assert.equal(checkFailover(cluster({ leader: undefined }), 'pg', 'node2'), undefined);
    assert.equal(checkFailover(cluster(), 'pg', 'node3'), 'node1');
    assert.equal(
      code(() => checkFailover(cluster(), 'pg', 'node1')),
      'CTL_SAME_MEMBER',
    );
    assert.equal(
      code(() => checkFailover(cluster({ config: { value: { pause: true }, modRevision: 2 } }), 'pg', 'node2')),
      'CTL_PAUSED',
    );
  });

  it('lag is measured from the leader record or /status, whichever is ahead', () => {
    const c = cluster({ status: { optime: 6_000_000, slots: null, retainSlots: [] } });
    assert.equal(lagOf(c, 'node2'), 1_000_000);
    assert.equal(lagOf(cluster({ leader: undefined, status: undefined }), 'node2'), null);
  });

  it('--scheduled: now, with an offset, local time without one; past and garbage refused', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    assert.equal(parseScheduled('now', now), undefined);
    assert.equal(parseScheduled(undefined, now), undefined);
    assert.equal(parseScheduled('2026-03-01T14:00+0100', now), Date.parse('2026-03-01T13:00:00Z'));
    assert.equal(parseScheduled('2026-03-01 13:00:00Z', now), Date.parse('2026-03-01T13:00:00Z'));
    assert.equal(parseScheduled('2030-03-01T13:00', now), new Date(2030, 2, 1, 13, 0).getTime());
    assert.equal(
      code(() => parseScheduled('2026-03-01T11:00Z', now)),
      'CTL_BAD_TIME',
    );
    assert.equal(
      code(() => parseScheduled('tomorrow', now)),
      'CTL_BAD_TIME',
    );
  });
});

describe('ctl edit-config helpers', () => {
  it('builds a merge patch from dotted keys and YAML scalars', () => {
    assert.deepEqual(
      patchFromSets([
        'ttl=30',
        'postgresql.parameters.work_mem=8MB',
        'postgresql.use_slots=false',
        'pause=null',
        'synchronous_mode=on',
      ]),
      {
        patch: {
          ttl: 30,
          postgresql: { parameters: { work_mem: '8MB' }, use_slots: false },
          pause: null,
          synchronous_mode: 'on',
        },
      },
    );
    assert.match((patchFromSets(['ttl']) as { error: string }).error, /key=value/);
    // `--set __proto__.x=1` is a key the server refuses, never a change to Object.prototype in the ctl process.
    const hostile = patchFromSets(['__proto__.polluted=1', 'constructor.prototype.polluted=2']) as {
      patch: Record<string, unknown>;
    };
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.deepEqual(Object.keys(hostile.patch), ['__proto__', 'constructor']);
    assert.equal(
      JSON.stringify(hostile.patch),
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}',
    );
    assert.match((patchFromSets(['a..b=1']) as { error: string }).error, /dotted key/);
    assert.match((patchFromSets(['ttl=[1, 2]']) as { error: string }).error, /scalar/);
  });

  it('diffs leaves by dotted path', () => {
    assert.deepEqual(
      configDiff(
        { ttl: 10, postgresql: { parameters: { a: '1' } } },
        { ttl: 20, postgresql: { parameters: {} }, pause: true },
      ),
      ['+ pause: true', '+ postgresql.parameters: {}', '- postgresql.parameters.a: "1"', '- ttl: 10', '+ ttl: 20'],
    );
    assert.deepEqual(configDiff({ a: 1 }, { a: 1 }), []);
  });
});

describe('ctl list', () => {
  it('json: roles from the leader and /sync keys, lag in bytes and MB, the pending request', () => {
    const c = cluster({
      sync: { leader: 'node1', standbys: ['node2'], modRevision: 5 },
      members: new Map([
        member('node1', { role: 'master' }),
        member('node2'),
        member('node3', { replay_lsn: 5_000_000 - 3 * 1048576, replication_state: 'streaming' }),
      ]),
      failover: { leader: 'node1', member: 'node3', scheduledAt: '2026-03-01T13:00:00+00:00', modRevision: 9 },
    });
    const j = listJson('pg', c);
    assert.equal(j.system_id, '7382175862789562070');
    assert.deepEqual(
      j.members.map((m) => [m.name, m.role, m.state, m.lag_bytes, m.lag_mb]),
      [
        ['node1', 'leader', 'running', 0, 0],
        ['node2', 'sync_standby', 'running', 0, 0],
        ['node3', 'replica', 'streaming', 3 * 1048576, 3],
      ],
    );
    const text = listText(j);
    assert.match(text, /^Cluster: pg \(system id 7382175862789562070\)\n/);
    assert.match(text, /node2\s+127\.0\.0\.1:5432\s+Sync Standby\s+running\s+2\s+0/);
    assert.match(text, /Switchover scheduled at: 2026-03-01T13:00:00\+00:00 {2}from: node1 {2}to: node3$/);
    assert.doesNotMatch(text, /Maintenance mode/);
    assert.match(topologyText(j), /\n\+ node3\s+127/);
  });

  it('shows maintenance mode and tags', () => {
    const c = cluster({
      config: { value: { pause: true }, modRevision: 2 },
      members: new Map([member('node1', { role: 'master' }), member('node2', { tags: { nofailover: true } })]),
    });
    const text = listText(listJson('pg', c));
    assert.match(text, /Maintenance mode: on/);
    assert.match(text, /node2 .* nofailover$/m);
  });
});
