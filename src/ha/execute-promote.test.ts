/**
 * The executor's promotion, clone, rewind and start steps on MemoryStore + FakeInstance + a fake clock: the order of
 * their writes, and what a failure halfway leaves in the DCS, in memory and in the data directory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeJson } from '../dcs/layout.js';
import { PostgresError } from '../postgres/local-instance.js';
import { execHarness, T0, type ExecHarness } from '../../test/helpers/executor.js';
import { HaError } from './errors.js';

async function withLease(h: ExecHarness): Promise<string> {
  const lease = await h.store.grantLease(30);
  h.mem.lease = lease;
  return lease;
}

function isHaError(code: HaError['code'], member?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof HaError, `expected an HaError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (member !== undefined) assert.equal(err.context.member, member);
    return true;
  };
}

function errorLines(h: ExecHarness): { msg: string; code: unknown }[] {
  return h.logs.filter((l) => l.level === 'error').map((l) => ({ msg: l.msg, code: l.fields?.['code'] }));
}

/** A running standby of node2's cluster (timeline 1), as after a clone and start. */
async function runningStandby(h: ExecHarness): Promise<void> {
  await h.pg.initdb();
  h.pg.writeConfig(
    { cfg: h.cfg, dcsParameters: {}, upstream: { host: 'node2', port: 5432, slot: null }, synchronousStandbyNames: '' },
    'replica',
  );
  await h.pg.start(1);
  h.pg.walPosition = 0x5000060;
  h.pg.calls.length = 0;
}

describe('take_leadership and promote', () => {
  it('takes the key with its lease, then promotes, checkpoints, records the switch in /history and clears /failover', async () => {
    await using h = await execHarness();
    const lease = await withLease(h);
    await runningStandby(h);
    await h.member('node1');
    await h.member('node2', { role: 'master' });
    await h.store.put(h.keys.failover, encodeJson({ leader: 'node2', member: 'node1' }));
    await h.store.put(h.keys.history, encodeJson([[0, 100, 'old', '2025-01-01T00:00:00.000Z', 'node0']]));
    const inp = await h.input();
    h.events.length = 0;
    await h.act([{ kind: 'take_leadership', reason: 'the leader key was free' }], inp);
    assert.deepEqual(h.events, [
      'dcs create /service/t/leader',
      'pg status',
      'pg promote',
      'pg writeConfig primary',
      'pg reload',
      'pg checkpoint',
      'pg latestTimelineSwitch',
      'dcs put /service/t/history',
      'pg ensureReplicationRole',
      'dcs delete /service/t/failover',
    ]);
    const leader = await h.store.get(h.keys.leader);
    assert.deepEqual([leader?.value, leader?.lease], ['node1', lease]);
    assert.deepEqual(JSON.parse((await h.store.get(h.keys.history))?.value ?? ''), [
      [0, 100, 'old', '2025-01-01T00:00:00.000Z', 'node0'],
      [1, 0x5000060, 'no recovery target specified', new Date(T0).toISOString(), 'node1'],
    ]);
    assert.equal(await h.store.get(h.keys.failover), undefined);
    assert.deepEqual(
      [h.mem.role, h.mem.following, h.mem.busy, h.pg.timeline, h.pg.inRecovery],
      ['primary', null, null, 2, false],
    );
    assert.deepEqual(h.messages('info'), ['took the leader key: the leader key was free', 'node1 is now the primary']);
  });

  it('the race lost: nothing else happens and the member never reports busy', async () => {
    await using h = await execHarness();
    await withLease(h);
    await runningStandby(h);
    await h.store.put(h.keys.leader, 'node3');
    let busySeen = false;
    h.pg.onCall = () => void (busySeen ||= h.mem.busy !== null);
    await h.act([{ kind: 'take_leadership', reason: 'r' }]);
    assert.equal(busySeen, false);
    assert.equal(h.pg.calls.includes('promote'), false);
    assert.deepEqual(h.messages(), ['lost the leader race; another member took the key first']);
    assert.equal((await h.store.get(h.keys.leader))?.value, 'node3');
  });

  it('no lease: HA_NO_LEASE from run() itself, before anything is touched', async () => {
    await using h = await execHarness();
    await runningStandby(h);
    await assert.rejects(h.act([{ kind: 'take_leadership', reason: 'r' }]), isHaError('HA_NO_LEASE'));
    assert.equal(await h.store.get(h.keys.leader), undefined);
    assert.deepEqual(h.pg.calls, ['status']);
  });

  it('pg_ctl promote fails after the key was taken: the key stays ours (the next cycle promotes), no history, a retry pause', async () => {
    await using h = await execHarness();
    await withLease(h);
    await runningStandby(h);
    h.pg.failNext('promote', new PostgresError('PG_PROMOTE_FAILED', 'pg_ctl promote failed'));
    await h.act([{ kind: 'take_leadership', reason: 'r' }]);
    assert.deepEqual(errorLines(h), [{ msg: 'promote failed: pg_ctl promote failed', code: 'PG_PROMOTE_FAILED' }]);
    assert.equal((await h.store.get(h.keys.leader))?.value, 'node1');
    assert.equal(await h.store.get(h.keys.history), undefined);
    assert.deepEqual([h.mem.role, h.pg.inRecovery, h.mem.retryAfter], ['uninitialized', true, T0 + 5000]);
  });

  it('a failed checkpoint after promote is only a warning; an already promoted primary is not promoted again', async () => {
    await using h = await execHarness();
    await withLease(h);
    await runningStandby(h);
    h.pg.failNext('checkpoint', new Error('timeout'));
    await h.act([{ kind: 'promote', reason: 'r' }]);
    assert.ok(h.messages('warn').includes('checkpoint after promote failed'));
    assert.equal(h.mem.role, 'primary');
    const inp = await h.input();
    h.pg.calls.length = 0;
    await h.act([{ kind: 'promote', reason: 'r' }], inp);
    assert.deepEqual(h.pg.calls, ['status', 'ensureReplicationRole']);
  });
});

describe('clone and re-clone', () => {
  it('clone: pg_basebackup from the member, then a start as a replica following the leader', async () => {
    await using h = await execHarness();
    await h.member('node2', { role: 'master' });
    await h.store.put(h.keys.leader, 'node2');
    h.reachable('node2');
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(
      h.pg.calls.filter((c) => !c.startsWith('writeConfig')),
      ['writePgpass', 'clone node2:5432', 'start'],
    );
    assert.deepEqual(
      [h.pg.isRunning(), h.pg.inRecovery, h.pg.conf?.upstream, h.mem.following],
      [true, true, 'node2:5432 slot=node1', 'node2'],
    );
    assert.deepEqual(h.messages('info'), ['cloning from node2 (node2:5432)']);
    assert.equal(h.mem.startedAt, T0);
  });

  it('clone fails: the data directory stays empty, PostgreSQL down, the error and a retry pause in memory', async () => {
    await using h = await execHarness();
    await h.member('node2');
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(errorLines(h), [
      { msg: 'clone failed: pg_basebackup from node2:5432 failed', code: 'PG_CLONE_FAILED' },
    ]);
    assert.deepEqual(
      [h.pg.dataDirState(), h.pg.isRunning(), h.mem.lastError, h.mem.failures],
      ['empty', false, 'pg_basebackup from node2:5432 failed', 1],
    );
  });

  it('a member without conn_url: HA_MEMBER_NO_CONN_URL naming it, PostgreSQL untouched', async () => {
    await using h = await execHarness();
    await h.member('node2', { conn_url: '' });
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(errorLines(h), [
      { msg: 'clone failed: cannot clone: member node2 has no conn_url', code: 'HA_MEMBER_NO_CONN_URL' },
    ]);
    assert.deepEqual(h.pg.calls, []);
  });

  it('re-clone: stop, move the old data aside, clone, start; a failed clone leaves the old copy aside and nothing running', async () => {
    await using h = await execHarness();
    await h.member('node2');
    h.reachable('node2');
    await runningStandby(h);
    h.mem.rewindFailed = true;
    const inp = await h.input();
    h.pg.calls.length = 0;
    await h.act([{ kind: 'reclone', from: 'node2' }], inp);
    assert.deepEqual(
      h.pg.calls.filter((c) => !c.startsWith('writeConfig')),
      ['stop fast', 'moveAside before-reclone', 'clone node2:5432', 'start'],
    );
    assert.deepEqual(
      [h.pg.movedAside, h.mem.rewindFailed, h.pg.isRunning()],
      [['/fake/data.before-reclone-1'], false, true],
    );

    h.pg.remote.clear();
    h.mem.rewindFailed = true;
    await h.act([{ kind: 'reclone', from: 'node2' }]);
    assert.equal(errorLines(h)[0]?.code, 'PG_CLONE_FAILED');
    assert.deepEqual(
      [h.pg.movedAside.length, h.pg.dataDirState(), h.pg.isRunning(), h.mem.rewindFailed],
      [2, 'empty', false, true],
    );
  });
});

describe('rewind and start', () => {
  async function formerPrimary(h: ExecHarness): Promise<void> {
    await h.pg.initdb();
    h.pg.clusterState = 'shut down';
    await h.member('node2', { role: 'master', timeline: 2 });
    await h.store.put(h.keys.leader, 'node2');
    h.pg.calls.length = 0;
  }

  it('start as a replica of a leader on a later timeline: pg_rewind first, then the start', async () => {
    await using h = await execHarness();
    await formerPrimary(h);
    h.reachable('node2', 2);
    await h.act([{ kind: 'start', as: 'replica', leader: 'node2' }]);
    assert.deepEqual(
      h.pg.calls.filter((c) => !c.startsWith('writeConfig')),
      ['controlData', 'stop fast', 'removeStandbySignal', 'rewind node2:5432', 'start'],
    );
    assert.deepEqual([h.pg.timeline, h.pg.inRecovery, h.mem.rewindFailed, h.mem.following], [2, true, false, 'node2']);
    assert.deepEqual(h.messages('info'), ['running pg_rewind from node2']);
  });

  it('pg_rewind fails: rewindFailed is set (decide re-clones next), PostgreSQL stays down without standby.signal', async () => {
    await using h = await execHarness();
    await formerPrimary(h);
    await h.act([{ kind: 'rewind', from: 'node2' }]);
    assert.deepEqual(errorLines(h), [
      { msg: 'rewind failed: pg_rewind from node2:5432 failed', code: 'PG_REWIND_FAILED' },
    ]);
    assert.deepEqual(
      [h.mem.rewindFailed, h.pg.isRunning(), h.pg.hasStandbySignal(), h.pg.dataDirState()],
      [true, false, false, 'ready'],
    );
  });

  it('use_pg_rewind off: HA_REWIND_DISABLED, nothing stopped, rewindFailed untouched', async () => {
    await using h = await execHarness();
    await formerPrimary(h);
    const inp = await h.input();
    await h.act([{ kind: 'start', as: 'replica', leader: 'node2' }], {
      ...inp,
      dynamic: { ...inp.dynamic, postgresql: { ...inp.dynamic.postgresql, use_pg_rewind: false } },
    });
    assert.deepEqual(errorLines(h), [
      {
        msg: 'start failed: this former primary diverged from the new leader and use_pg_rewind is off',
        code: 'HA_REWIND_DISABLED',
      },
    ]);
    assert.deepEqual([h.mem.rewindFailed, h.pg.calls], [false, ['controlData']]);
  });

  it('start as primary on a standby data directory promotes (a new timeline) instead of continuing the old one', async () => {
    await using h = await execHarness();
    await h.pg.initdb();
    h.pg.standbySignal = true;
    await h.act([{ kind: 'start', as: 'primary', leader: null }]);
    assert.deepEqual(
      h.pg.calls.filter((c) => !c.startsWith('writeConfig')),
      ['initdb', 'start', 'promote', 'latestTimelineSwitch', 'reload'],
    );
    assert.deepEqual([h.pg.timeline, h.pg.inRecovery, h.pg.hasStandbySignal(), h.mem.startedAt], [2, false, false, T0]);
    assert.ok(await h.store.get(h.keys.history), 'the switch recorded');
  });

  it('start fails: shouldRun stays set (the loop retries after the pause), startedAt not', async () => {
    await using h = await execHarness();
    await h.pg.initdb();
    h.pg.failNext('start', new PostgresError('PG_START_FAILED', 'PostgreSQL did not start in /fake/data (see log)'));
    h.mem.shouldRun = false;
    await h.act([{ kind: 'start', as: 'replica', leader: null }]);
    assert.equal(errorLines(h)[0]?.code, 'PG_START_FAILED');
    assert.deepEqual([h.mem.shouldRun, h.mem.startedAt, h.mem.retryAfter], [true, null, T0 + 5000]);
  });
});
