/**
 * The one test suite every LocalInstance implementation passes (see the contract in `local-instance.ts`).
 * Implementations register it from their own test file with a factory: `FakeInstance` in fake-instance.test.ts,
 * `PostgresInstance` against PostgreSQL 15 in test/integration/local-instance.test.ts. Each test gets a fresh
 * instance with an empty data directory and walks one story through it (the real one pays an initdb per story).
 *
 * clone and rewind from a member that answers need a second server: the failover scenarios cover them; here only
 * their failure (nothing answers) is part of the contract.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfInput } from './conf.js';
import { PostgresError, type HostPort, type LocalInstance, type PostgresErrorCode } from './local-instance.js';

export interface InstanceHarness extends AsyncDisposable {
  readonly instance: LocalInstance;
  /** The managed-configuration input for this instance's node, with the given synchronous_standby_names. */
  conf(synchronousStandbyNames?: string): ConfInput;
  /** Where this instance's PostgreSQL listens over TCP (for remoteDatabaseBytes while it runs). */
  readonly self: HostPort;
  /** An address where nothing listens. */
  readonly nowhere: HostPort;
  /** Opens a client transaction on the running instance (BEGIN and one statement); resolves a function ending it. */
  openTransaction(): Promise<() => Promise<void>>;
}

async function rejectsWith(p: Promise<unknown>, code: PostgresErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof PostgresError, `expected a PostgresError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

export function localInstanceContract(name: string, make: () => Promise<InstanceHarness>): void {
  describe(`LocalInstance contract: ${name}`, () => {
    it('an empty data directory: nothing to read, nothing runs; a clone from nowhere fails and leaves it empty', async () => {
      await using h = await make();
      const pg = h.instance;
      assert.equal(pg.dataDirState(), 'empty');
      assert.equal(pg.isRunning(), false);
      assert.equal(pg.hasStandbySignal(), false);
      assert.equal(await pg.controlData(), null);
      await assert.rejects(pg.status(2000));
      await assert.rejects(pg.checkpoint(2000));
      await pg.stop('fast', 10_000);
      assert.equal(await pg.remoteDatabaseBytes(h.nowhere, 2000), null);
      await rejectsWith(pg.start(10_000), 'PG_START_FAILED');
      assert.equal(pg.isRunning(), false);
      await rejectsWith(
        pg.clone(h.nowhere, 30_000),
        'PG_CLONE_FAILED',
        new RegExp(`^pg_basebackup from ${h.nowhere.host}:${h.nowhere.port} failed`),
      );
      assert.equal(pg.dataDirState(), 'empty');
      assert.equal(await pg.controlData(), null);
    });

    it('initdb makes a stopped primary; configure, start, query, slots, drain count, stop, a failed rewind, move aside', async () => {
      await using h = await make();
      const pg = h.instance;
      await pg.initdb();
      assert.equal(pg.dataDirState(), 'ready');
      assert.equal(pg.isRunning(), false);
      const cd = await pg.controlData();
      assert.ok(cd && cd.sysid.length > 0, 'a system identifier');
      assert.deepEqual({ state: cd.state, timeline: cd.timeline }, { state: 'shut down', timeline: 1 });
      await rejectsWith(pg.initdb(), 'PG_INITDB_FAILED');
      assert.equal((await pg.controlData())?.sysid, cd.sysid, 'a refused initdb leaves the cluster alone');

      assert.equal(pg.writeConfig(h.conf(), 'primary').changed, true);
      assert.equal(pg.writeConfig(h.conf(), 'primary').changed, false, 'the same configuration again is no change');
      assert.equal(pg.hasStandbySignal(), false);
      assert.equal(pg.writeConfig(h.conf('FIRST 1 ("node2")'), 'primary').changed, true);
      assert.equal(pg.writeConfig(h.conf(), 'primary').changed, true);

      await pg.start(60_000);
      assert.equal(pg.isRunning(), true);
      await pg.start(60_000);
      const st = await pg.status(5000);
      assert.equal(st.inRecovery, false);
      assert.equal(st.timeline, 1);
      assert.ok((st.walPosition ?? 0) > 0, `a WAL position, got ${st.walPosition}`);
      assert.ok(st.serverVersion >= 150000, `server version ${st.serverVersion}`);
      assert.deepEqual(st.replication, []);
      assert.equal(st.streaming, false);
      await pg.reload();
      await pg.checkpoint(30_000);
      assert.equal(await pg.latestTimelineSwitch(), null, 'timeline 1 has no history');
      await pg.ensureReplicationRole();
      await pg.ensureReplicationRole();
      assert.ok(((await pg.remoteDatabaseBytes(h.self, 5000)) ?? 0) > 0, 'its own databases have a size');

      assert.equal(await pg.transactionsInFlight(2000), 0);
      const end = await h.openTransaction();
      assert.equal(await pg.transactionsInFlight(2000), 1);
      await end();
      assert.equal(await pg.transactionsInFlight(2000), 0);

      await pg.createSlot('node2');
      await pg.createSlot('node2');
      const slots = await pg.slots();
      assert.deepEqual([...slots.keys()], ['node2']);
      assert.ok((slots.get('node2') ?? 0) > 0, 'a created slot reserves WAL at once');
      assert.deepEqual([...(await pg.lostSlots())], []);
      await pg.dropSlot('node2');
      await pg.dropSlot('node2');
      assert.deepEqual([...(await pg.slots()).keys()], []);

      await rejectsWith(pg.promote(10_000), 'PG_PROMOTE_FAILED');
      assert.equal((await pg.status(5000)).inRecovery, false);

      await pg.stop('fast', 30_000);
      assert.equal(pg.isRunning(), false);
      assert.equal((await pg.controlData())?.state, 'shut down');
      await assert.rejects(pg.status(2000));
      await assert.rejects(pg.transactionsInFlight(2000));
      await pg.stop('fast', 30_000);

      await rejectsWith(
        pg.rewind(h.nowhere, 30_000),
        'PG_REWIND_FAILED',
        new RegExp(`^pg_rewind from ${h.nowhere.host}:${h.nowhere.port} failed`),
      );
      assert.equal(pg.dataDirState(), 'ready', 'a failed rewind leaves the data directory');
      assert.equal((await pg.controlData())?.sysid, cd.sysid);

      const aside = pg.moveAside('before-reclone');
      assert.ok(aside, 'moved somewhere');
      assert.equal(pg.dataDirState(), 'empty');
      assert.equal(await pg.controlData(), null);
    });

    it('restoreFrom and cloneFromBackup: a repository that is not there fails and leaves nothing; restoreFrom refuses a data directory with a cluster', async () => {
      await using h = await make();
      const pg = h.instance;
      const src = { repo: '/nonexistent/pgkeel-contract-repo', target: { kind: 'latest' } as const };
      await rejectsWith(
        pg.restoreFrom(src, h.conf(), 30_000),
        'PG_RESTORE_FAILED',
        /^bootstrap from \/nonexistent\/pgkeel-contract-repo failed at "open the repository/,
      );
      assert.equal(pg.dataDirState(), 'empty');
      assert.equal(pg.isRunning(), false);
      await rejectsWith(
        pg.cloneFromBackup(src, 30_000),
        'PG_CLONE_FAILED',
        /^restoring the newest backup of \/nonexistent\/pgkeel-contract-repo failed/,
      );
      assert.equal(pg.dataDirState(), 'empty');
      await pg.initdb();
      const cd = await pg.controlData();
      await rejectsWith(
        pg.restoreFrom(src, h.conf(), 30_000),
        'PG_RESTORE_FAILED',
        /^refusing to restore into .*: it holds a database cluster$/,
      );
      assert.equal((await pg.controlData())?.sysid, cd?.sysid, 'a refused restore leaves the cluster alone');
    });

    it('a standby (standby.signal) starts in recovery and promotes to the next timeline, which names the one it left', async () => {
      await using h = await make();
      const pg = h.instance;
      await pg.initdb();
      pg.writeConfig(h.conf(), 'replica');
      assert.equal(pg.hasStandbySignal(), true);
      await pg.start(60_000);
      const before = await pg.status(5000);
      assert.equal(before.inRecovery, true);
      assert.equal(before.timeline, 1);
      await pg.stop('fast', 30_000);
      assert.equal((await pg.controlData())?.state, 'shut down in recovery');
      await pg.start(60_000);
      assert.equal((await pg.status(5000)).inRecovery, true, 'standby.signal still there: in recovery again');
      await pg.promote(60_000);
      const after = await pg.status(5000);
      assert.equal(after.inRecovery, false);
      assert.equal(after.timeline, 2);
      assert.equal(pg.hasStandbySignal(), false, 'PostgreSQL removes standby.signal when promoted');
      const sw = await pg.latestTimelineSwitch();
      assert.ok(sw, 'a timeline switch');
      assert.equal(sw.timeline, 1);
      assert.ok(sw.lsn > 0, `the switch LSN, got ${sw.lsn}`);
      assert.ok(sw.reason.length > 0);
      // The control file names the new timeline once a checkpoint ran (why the executor checkpoints after promote).
      await pg.checkpoint(30_000);
      await pg.stop('immediate', 30_000);
      assert.equal(pg.isRunning(), false);
      const cd = await pg.controlData();
      assert.equal(cd?.timeline, 2);
      assert.equal(cd?.state, 'in production', 'an immediate stop is a crash: no shutdown checkpoint');
    });
  });
}
