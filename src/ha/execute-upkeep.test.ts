/**
 * The leader's upkeep on MemoryStore + FakeInstance: synchronous replication in Patroni's order (PostgreSQL first,
 * then `/sync`; names leave `/sync` before PostgreSQL stops waiting for them), what each failing step leaves, and the
 * status, slot and failsafe keys.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError } from '../dcs/store.js';
import { encodeSync } from '../dcs/layout.js';
import { PostgresError } from '../postgres/local-instance.js';
import { execHarness, type ExecHarness } from '../../test/helpers/executor.js';

const SYNC = '/service/t/sync';

/** node1 runs as the primary with node2 and node3 as members; `reported` are the standbys PostgreSQL calls sync. */
async function primary(h: ExecHarness, reported: readonly string[] = []): Promise<void> {
  await h.pg.initdb();
  h.pg.writeConfig({ cfg: h.cfg, dcsParameters: {}, upstream: null, synchronousStandbyNames: '' }, 'primary');
  await h.pg.start(1);
  for (const m of ['node1', 'node2', 'node3']) await h.member(m);
  report(h, reported);
}

function report(h: ExecHarness, sync: readonly string[]): void {
  h.pg.replication = ['node2', 'node3'].map((n) => ({
    applicationName: n,
    state: 'streaming',
    syncState: sync.includes(n) ? 'sync' : 'async',
    clientAddr: null,
    replayLag: 0,
  }));
}

/** Runs one non-background action with a fresh input, recording only what the action itself did. */
async function step(h: ExecHarness, action: Parameters<ExecHarness['act']>[0][number]): Promise<void> {
  const inp = await h.input();
  h.events.length = 0;
  await h.act([action], inp);
}

async function syncValue(h: ExecHarness): Promise<string | undefined> {
  return (await h.store.get(SYNC))?.value;
}

describe('set_sync', () => {
  it('a new sync standby: PostgreSQL waits for it before /sync names it, and /sync names it only once PostgreSQL reports it', async () => {
    await using h = await execHarness();
    await primary(h);
    await step(h, { kind: 'set_sync', standbys: ['node2'] });
    assert.deepEqual(h.events, ['pg writeConfig primary ssn=FIRST 1 ("node2")', 'pg reload', `dcs create ${SYNC}`]);
    assert.equal(await syncValue(h), encodeSync('node1', []), 'not named before PostgreSQL reports it as sync');
    report(h, ['node2']);
    await step(h, { kind: 'set_sync', standbys: ['node2'] });
    assert.deepEqual(h.events, [`dcs compareAndPut ${SYNC}`], 'PostgreSQL already configured: only the key');
    assert.equal(await syncValue(h), encodeSync('node1', ['node2']));
    assert.equal(h.mem.synchronousStandbyNames, 'FIRST 1 ("node2")');
  });

  it('a standby leaving: /sync drops it before PostgreSQL stops waiting for it', async () => {
    await using h = await execHarness();
    await primary(h, ['node2', 'node3']);
    h.mem.synchronousStandbyNames = 'FIRST 1 ("node2","node3")';
    await h.store.put(SYNC, encodeSync('node1', ['node2', 'node3']));
    await step(h, { kind: 'set_sync', standbys: ['node3'] });
    assert.deepEqual(h.events, [
      `dcs compareAndPut ${SYNC}`,
      'pg writeConfig primary ssn=FIRST 1 ("node3")',
      'pg reload',
      `dcs compareAndPut ${SYNC}`,
    ]);
    assert.equal(await syncValue(h), encodeSync('node1', ['node3']));
  });

  it('PostgreSQL cannot be reloaded: /sync is not written; the file and the memory already hold the new value', async () => {
    await using h = await execHarness();
    await primary(h, ['node2']);
    h.pg.failNext('reload', new PostgresError('PG_COMMAND_FAILED', 'pg_ctl reload failed'));
    await assert.rejects(step(h, { kind: 'set_sync', standbys: ['node2'] }), /pg_ctl reload failed/);
    assert.equal(await syncValue(h), undefined);
    assert.equal(h.pg.conf?.synchronousStandbyNames, 'FIRST 1 ("node2")');
    assert.equal(h.mem.synchronousStandbyNames, 'FIRST 1 ("node2")');
    // The next cycle does not reload again (the memory says it is written) and names only what PostgreSQL reports.
    report(h, []);
    await step(h, { kind: 'set_sync', standbys: ['node2'] });
    assert.deepEqual(h.events, [`dcs create ${SYNC}`]);
    assert.equal(await syncValue(h), encodeSync('node1', []));
  });

  it('the /sync write fails: PostgreSQL keeps waiting for the standby; the next cycle writes the key', async () => {
    await using h = await execHarness();
    await primary(h, ['node2']);
    h.failStoreNext('create', SYNC);
    await assert.rejects(
      step(h, { kind: 'set_sync', standbys: ['node2'] }),
      (err: unknown) => err instanceof StoreError && err.code === 'DCS_UNAVAILABLE',
    );
    assert.deepEqual(h.events, ['pg writeConfig primary ssn=FIRST 1 ("node2")', 'pg reload', `dcs! create ${SYNC}`]);
    assert.equal(await syncValue(h), undefined);
    await step(h, { kind: 'set_sync', standbys: ['node2'] });
    assert.deepEqual(h.events, [`dcs create ${SYNC}`]);
    assert.equal(await syncValue(h), encodeSync('node1', ['node2']));
  });

  it('strict mode without a candidate: commits wait for any standby (*)', async () => {
    await using h = await execHarness();
    await primary(h);
    const inp = await h.input({ dynamic: { synchronous_mode_strict: true } });
    await h.act([{ kind: 'set_sync', standbys: [] }], inp);
    assert.equal(h.pg.conf?.synchronousStandbyNames, '*');
    assert.equal(await syncValue(h), encodeSync('node1', []));
  });

  it('clear_sync: PostgreSQL stops waiting first, then /sync goes', async () => {
    await using h = await execHarness();
    await primary(h, ['node2']);
    await step(h, { kind: 'set_sync', standbys: ['node2'] });
    await step(h, { kind: 'clear_sync' });
    assert.deepEqual(h.events, ['pg writeConfig primary', 'pg reload', `dcs delete ${SYNC}`]);
    assert.deepEqual([await syncValue(h), h.mem.synchronousStandbyNames], [undefined, '']);
  });
});

describe('leader housekeeping (renew_lock)', () => {
  it('a slot per member, the status key when it changed, nothing on a standby', async () => {
    await using h = await execHarness();
    await primary(h);
    await step(h, { kind: 'renew_lock' });
    assert.deepEqual(h.events, [
      'pg slots',
      'pg lostSlots',
      'pg createSlot node2',
      'pg createSlot node3',
      'dcs put /service/t/status',
    ]);
    assert.deepEqual([...h.pg.slotMap.keys()], ['node2', 'node3']);
    const status = JSON.parse((await h.store.get('/service/t/status'))?.value ?? '{}') as Record<string, unknown>;
    assert.equal(status['optime'], h.pg.walPosition);
    await step(h, { kind: 'renew_lock' });
    assert.ok(h.events.includes('dcs put /service/t/status'), 'the slots now appear in the status');
    await step(h, { kind: 'renew_lock' });
    assert.deepEqual(h.events, ['pg slots', 'pg lostSlots'], 'unchanged: not written again');

    h.pg.inRecovery = true;
    await step(h, { kind: 'renew_lock' });
    assert.deepEqual(h.events, []);
  });

  it('a slot that cannot be created is a warning; the status is still written', async () => {
    await using h = await execHarness();
    await primary(h);
    h.pg.failNext('createSlot', new Error('out of slots'));
    await step(h, { kind: 'renew_lock' });
    assert.deepEqual(h.messages('warn'), ['could not create replication slot node2']);
    assert.ok(h.events.includes('dcs put /service/t/status'));
    assert.deepEqual([...h.pg.slotMap.keys()], ['node3']);
  });

  it("failsafe_mode: /failsafe lists every member's api_url, written when it changes and removed when the mode is off", async () => {
    await using h = await execHarness();
    await primary(h);
    const on = async () => {
      const inp = await h.input({ dynamic: { failsafe_mode: true } });
      h.events.length = 0;
      await h.act([{ kind: 'renew_lock' }], inp);
    };
    await on();
    assert.ok(h.events.includes('dcs put /service/t/failsafe'));
    assert.deepEqual(JSON.parse((await h.store.get('/service/t/failsafe'))?.value ?? ''), {
      node1: 'http://node1:8008/patroni',
      node2: 'http://node2:8008/patroni',
      node3: 'http://node3:8008/patroni',
    });
    await on();
    assert.ok(!h.events.includes('dcs put /service/t/failsafe'));
    await step(h, { kind: 'renew_lock' });
    assert.ok(h.events.includes('dcs delete /service/t/failsafe'));
    assert.equal(await h.store.get('/service/t/failsafe'), undefined);
  });
});
