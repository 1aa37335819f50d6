/**
 * The executor's lifecycle steps on MemoryStore + FakeInstance + a fake clock: what each does in order, and what a
 * failure halfway leaves in the DCS, in the agent's memory and in the data directory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresError } from '../postgres/local-instance.js';
import { execHarness, T0, type ExecHarness } from '../../test/helpers/executor.js';
import { Executor } from './execute.js';

async function withLease(h: ExecHarness): Promise<string> {
  const lease = await h.store.grantLease(30);
  h.mem.lease = lease;
  return lease;
}

/** The one background failure the executor logged, with its fields. */
function failure(h: ExecHarness): { msg: string; fields: Record<string, unknown> | undefined } {
  const errors = h.logs.filter((l) => l.level === 'error');
  assert.equal(errors.length, 1, `one error logged, got ${JSON.stringify(errors)}`);
  return errors[0] as { msg: string; fields: Record<string, unknown> | undefined };
}

/** A stopped former standby or primary on timeline `tl` with data, as after a clone. */
async function stoppedCluster(h: ExecHarness, opts: { standby?: boolean; timeline?: number } = {}): Promise<void> {
  await h.pg.initdb();
  h.pg.timeline = opts.timeline ?? 1;
  h.pg.standbySignal = opts.standby ?? false;
  h.pg.clusterState = opts.standby ? 'shut down in recovery' : 'shut down';
}

describe('bootstrap', () => {
  it('wins the initialize race, runs initdb, starts, then takes the leader key and publishes the system id', async () => {
    await using h = await execHarness();
    const lease = await withLease(h);
    await h.act([{ kind: 'bootstrap' }]);
    assert.deepEqual(
      h.events.filter((e) => !e.startsWith('pg writeConfig') && !e.startsWith('pg hasStandby')),
      [
        'dcs create /service/t/initialize',
        'pg initdb',
        'pg start',
        'pg ensureReplicationRole',
        'dcs create /service/t/leader',
        'pg controlData',
        'dcs put /service/t/initialize',
        'dcs create /service/t/config',
      ],
    );
    const leader = await h.store.get(h.keys.leader);
    assert.deepEqual([leader?.value, leader?.lease], ['node1', lease]);
    assert.equal((await h.store.get(h.keys.initialize))?.value, h.pg.sysid);
    assert.equal(h.mem.sysid, h.pg.sysid);
    assert.equal(h.mem.role, 'primary');
    assert.deepEqual(h.mem.lastRenew, { ok: true, at: T0 });
    assert.equal(h.mem.busy, null);
    assert.equal(h.pg.isRunning(), true);
    assert.equal(h.pg.hasStandbySignal(), false);
    assert.equal(h.pg.replicationRole, true);
    assert.deepEqual(h.messages('info'), ['won the initialize race: running initdb', 'initialized a new cluster']);
  });

  it('initialize key taken: does nothing to PostgreSQL and fails nothing', async () => {
    await using h = await execHarness();
    await withLease(h);
    await h.store.put(h.keys.initialize, '');
    await h.act([{ kind: 'bootstrap' }]);
    assert.deepEqual(h.pg.calls, []);
    assert.deepEqual(h.messages(), ['another member is initializing the cluster']);
    assert.equal(h.mem.failures, 0);
    assert.equal((await h.store.get(h.keys.initialize))?.value, '');
  });

  it('initdb fails: the initialize key is released, nothing else is left, the retry waits', async () => {
    await using h = await execHarness();
    await withLease(h);
    h.pg.failNext(
      'initdb',
      new PostgresError('PG_INITDB_FAILED', 'initdb failed for /fake/data', 'initdb: error: disk full'),
    );
    await h.act([{ kind: 'bootstrap' }]);
    const f = failure(h);
    assert.equal(f.msg, 'bootstrap failed: initdb failed for /fake/data; the next start retries initialization');
    assert.deepEqual(
      { code: f.fields?.['code'], detail: f.fields?.['detail'] },
      { code: 'PG_INITDB_FAILED', detail: 'initdb: error: disk full' },
    );
    assert.equal(await h.store.get(h.keys.initialize), undefined);
    assert.equal(await h.store.get(h.keys.leader), undefined);
    assert.deepEqual([h.pg.dataDirState(), h.pg.isRunning(), h.pg.movedAside], ['empty', false, []]);
    assert.deepEqual([h.mem.failures, h.mem.retryAfter, h.mem.busy, h.mem.role], [1, T0 + 5000, null, 'uninitialized']);
    assert.equal(h.mem.lastError, f.msg.slice('bootstrap failed: '.length));
  });

  it('start fails after initdb: PostgreSQL stopped, the new data directory moved aside, the initialize key released', async () => {
    await using h = await execHarness();
    await withLease(h);
    h.pg.failNext('start', new PostgresError('PG_START_FAILED', 'PostgreSQL did not start in /fake/data (see log)'));
    await h.act([{ kind: 'bootstrap' }]);
    assert.equal(
      h.mem.lastError,
      'PostgreSQL did not start in /fake/data (see log) (the partial data directory was moved to /fake/data.failed-bootstrap-1; remove it once you have read its logs); the next start retries initialization',
    );
    assert.deepEqual(h.pg.movedAside, ['/fake/data.failed-bootstrap-1']);
    assert.ok(h.pg.calls.includes('stop immediate'));
    assert.equal(h.pg.dataDirState(), 'empty');
    assert.equal(await h.store.get(h.keys.initialize), undefined);
    assert.equal(await h.store.get(h.keys.leader), undefined);
  });

  it("the leader key taken while initializing: rolls back but leaves the other member's key alone", async () => {
    await using h = await execHarness();
    await withLease(h);
    h.pg.failNext('ensureReplicationRole', new Error('not yet'));
    await h.store.put(h.keys.leader, 'node2');
    h.pg.calls.length = 0;
    // ensureReplicationRole fails first here; run again with it working to reach the leader key.
    await h.act([{ kind: 'bootstrap' }]);
    assert.match(h.mem.lastError ?? '', /^not yet \(the partial data directory was moved to/);
    h.logs.length = 0;
    await h.act([{ kind: 'bootstrap' }]);
    const f = failure(h);
    assert.equal(f.fields?.['code'], 'HA_BOOTSTRAP_LEADER_TAKEN');
    assert.equal(
      h.mem.lastError,
      'the leader key was taken while this member was initializing the cluster (the partial data directory was moved to /fake/data.failed-bootstrap-2; remove it once you have read its logs); the next start retries initialization',
    );
    assert.equal((await h.store.get(h.keys.leader))?.value, 'node2');
    assert.equal(await h.store.get(h.keys.initialize), undefined);
    assert.deepEqual([h.pg.isRunning(), h.pg.dataDirState(), h.mem.failures], [false, 'empty', 2]);
  });

  it('no lease: HA_NO_LEASE after the start, rolled back like any failure', async () => {
    await using h = await execHarness();
    await h.act([{ kind: 'bootstrap' }]);
    assert.equal(failure(h).fields?.['code'], 'HA_NO_LEASE');
    assert.match(
      h.mem.lastError ?? '',
      /^no lease \(the partial data directory was moved to \/fake\/data\.failed-bootstrap-1;/,
    );
    assert.equal(await h.store.get(h.keys.initialize), undefined);
  });
});

describe('demote', () => {
  it('graceful: waits for transactions in flight, then the fast stop, then releases the leader key', async () => {
    await using h = await execHarness();
    const lease = await withLease(h);
    await stoppedCluster(h);
    await h.pg.start(1);
    await h.store.put(h.keys.leader, 'node1', { lease });
    h.mem.role = 'primary';
    let polls = 0;
    h.pg.inFlight = () => (++polls <= 3 ? 2 : 0);
    const inp = await h.input();
    h.events.length = 0;
    await h.act([{ kind: 'demote', mode: 'graceful' }], inp);
    assert.deepEqual(h.events, [
      'pg transactionsInFlight',
      'pg transactionsInFlight',
      'pg transactionsInFlight',
      'pg transactionsInFlight',
      'pg stop fast',
      'dcs compareAndDelete /service/t/leader',
    ]);
    assert.equal(h.now(), T0 + 150, 'three polls of 50 ms on the fake clock');
    assert.equal(await h.store.get(h.keys.leader), undefined);
    assert.deepEqual(
      [h.mem.role, h.mem.releasedLockAt, h.mem.shouldRun, h.pg.clusterState],
      ['demoted', T0 + 150, true, 'shut down'],
    );
    assert.deepEqual(h.messages('warn'), ['demoting (graceful)']);
  });

  it('graceful: transactions that do not end delay the stop by 5 s at most, with a warning', async () => {
    await using h = await execHarness();
    await stoppedCluster(h);
    await h.pg.start(1);
    h.pg.inFlight = 3;
    await h.act(
      [{ kind: 'demote', mode: 'graceful' }, { kind: 'release_lock' }],
      await h.input({ shuttingDown: true }),
    );
    const warn = h.logs.find((l) => l.msg.startsWith('stopping with transactions'));
    assert.deepEqual(warn?.fields, { transactions: 3, waited_ms: 5000 });
    assert.equal(h.now(), T0 + 5000);
    assert.equal(h.pg.isRunning(), false);
    assert.equal(h.mem.shouldRun, false, 'shutting down: PostgreSQL stays down');
  });

  it('graceful: when the count fails, the stop is not delayed', async () => {
    await using h = await execHarness();
    await stoppedCluster(h);
    await h.pg.start(1);
    h.pg.failNext('transactionsInFlight', new Error('connection lost'));
    await h.act([{ kind: 'demote', mode: 'graceful' }]);
    assert.equal(h.now(), T0);
    assert.equal(h.pg.isRunning(), false);
  });

  it('immediate: no drain, an immediate stop, and the leader key is not touched', async () => {
    await using h = await execHarness();
    await stoppedCluster(h);
    await h.pg.start(1);
    await h.store.put(h.keys.leader, 'node2');
    await h.act([{ kind: 'demote', mode: 'immediate' }]);
    assert.deepEqual(h.pg.calls.slice(-1), ['stop immediate']);
    assert.equal(h.pg.clusterState, 'in production', 'crashed, no shutdown checkpoint');
    assert.equal((await h.store.get(h.keys.leader))?.value, 'node2');
    assert.equal(h.mem.releasedLockAt, null);
  });

  it('the stop fails halfway: still running, still holding the key, still primary in memory', async () => {
    await using h = await execHarness();
    const lease = await withLease(h);
    await stoppedCluster(h);
    await h.pg.start(1);
    await h.store.put(h.keys.leader, 'node1', { lease });
    h.mem.role = 'primary';
    h.pg.failNext('stop', new PostgresError('PG_STOP_FAILED', 'PostgreSQL in /fake/data did not stop'));
    await h.act([{ kind: 'demote', mode: 'graceful' }]);
    assert.equal(failure(h).msg, 'demote failed: PostgreSQL in /fake/data did not stop');
    assert.equal(h.pg.isRunning(), true);
    assert.equal((await h.store.get(h.keys.leader))?.value, 'node1');
    assert.deepEqual([h.mem.role, h.mem.releasedLockAt], ['primary', null]);
  });

  it('the key cannot be released (DCS down): logged, and the demotion completes', async () => {
    await using h = await execHarness();
    await stoppedCluster(h);
    await h.pg.start(1);
    h.failStoreNext('compareAndDelete', h.keys.leader);
    await h.act([{ kind: 'demote', mode: 'graceful' }]);
    assert.ok(h.messages('warn').includes('could not release the leader key'));
    assert.deepEqual([h.mem.role, h.mem.releasedLockAt, h.mem.failures], ['demoted', T0, 0]);
  });
});

describe('the VIP goes before PostgreSQL stops taking writes (src/vip/)', () => {
  /** An executor whose context has a VIP that records its drops among the harness's events. */
  function withVip(h: ExecHarness): Executor {
    const vip = { drop: async (reason: string) => void h.events.push(`vip drop: ${reason}`) };
    return new Executor({ ...h.ctx, vip }, { sleep: async (ms) => h.advance(ms) });
  }

  for (const mode of ['graceful', 'immediate', 'offline'] as const)
    it(`demote ${mode}: the VIP is dropped first, before the drain and the stop`, async () => {
      await using h = await execHarness();
      await stoppedCluster(h);
      await h.pg.start(1);
      h.mem.role = 'primary';
      h.pg.inFlight = () => 0;
      const ex = withVip(h);
      const inp = await h.input();
      h.events.length = 0;
      await ex.run({ summary: 'test', actions: [{ kind: 'demote', mode }], role: 'demoted' }, inp);
      await ex.idle();
      assert.equal(h.events[0], `vip drop: demoting (${mode})`);
      assert.ok(
        h.events.findIndex((e) => e.startsWith('pg stop')) > 0,
        `the stop comes after the drop: ${h.events.join(', ')}`,
      );
    });

  it("a primary's restart drops the VIP before the stop; a replica's does not touch it", async () => {
    await using h = await execHarness();
    await stoppedCluster(h);
    await h.pg.start(1);
    h.mem.role = 'primary';
    const ex = withVip(h);
    const inp = await h.input();
    h.events.length = 0;
    await ex.run({ summary: 'test', actions: [{ kind: 'restart' }], role: 'primary' }, inp);
    await ex.idle();
    assert.equal(h.events[0], 'vip drop: restarting PostgreSQL');
    h.mem.role = 'replica';
    h.events.length = 0;
    await ex.run({ summary: 'test', actions: [{ kind: 'restart' }], role: 'replica' }, await h.input());
    await ex.idle();
    assert.ok(!h.events.some((e) => e.startsWith('vip')), h.events.join(', '));
  });
});
