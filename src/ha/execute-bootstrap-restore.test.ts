/**
 * The executor's bootstrap with bootstrap.restore (Patroni's custom bootstrap) on MemoryStore + FakeInstance: the
 * winner of the initialize race restores instead of running initdb, then goes on as after initdb (start, replication
 * role, leader key, the system id of the restored cluster); a failure rolls back the same way.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresError } from '../postgres/local-instance.js';
import { execHarness, type ExecHarness } from '../../test/helpers/executor.js';

const OLD_SYSID = '7100000000000000042';

async function restoring(h: ExecHarness, restore: { repo: string; target_time?: string; backup?: string }) {
  h.mem.lease = await h.store.grantLease(30);
  h.cfg.bootstrap.restore = restore;
}

describe('bootstrap from a backup (bootstrap.restore)', () => {
  it('restores instead of initdb, then starts, takes the leader key and publishes the restored system id', async () => {
    await using h = await execHarness();
    await restoring(h, { repo: '/old/backup', target_time: '2026-12-03 14:03:00+00', backup: '20261203-050000F' });
    h.pg.repos.set('/old/backup', { sysid: OLD_SYSID, timeline: 1, walPosition: 0x5000000, databaseBytes: 1 << 20 });
    await h.act([{ kind: 'bootstrap' }]);
    // The same steps as a bootstrap with initdb, the restore in initdb's place.
    await using plain = await execHarness();
    plain.mem.lease = await plain.store.grantLease(30);
    await plain.act([{ kind: 'bootstrap' }]);
    const steps = (events: string[]) => events.filter((e) => !e.startsWith('pg writeConfig'));
    assert.deepEqual(
      steps(h.events),
      steps(plain.events).map((e) => (e === 'pg initdb' ? 'pg restoreFrom /old/backup time' : e)),
    );
    assert.ok(!h.pg.calls.includes('initdb'), 'no initdb');
    assert.deepEqual(h.pg.restoredFrom, {
      repo: '/old/backup',
      keyFile: undefined,
      backupId: '20261203-050000F',
      target: { kind: 'time', time: '2026-12-03 14:03:00+00:00' },
    });
    assert.equal(h.pg.conf?.role, 'primary', 'restored with the managed configuration of a primary');
    assert.equal((await h.store.get(h.keys.initialize))?.value, OLD_SYSID);
    assert.equal(h.mem.sysid, OLD_SYSID);
    assert.equal(h.pg.timeline, 2, 'promoted onto a new timeline');
    assert.deepEqual([h.mem.role, h.pg.isRunning(), h.pg.hasStandbySignal()], ['primary', true, false]);
    assert.equal((await h.store.get(h.keys.leader))?.value, 'node1');
    assert.deepEqual(h.messages('info'), [
      'won the initialize race: restoring a backup of /old/backup to time 2026-12-03 14:03:00+00:00',
      'initialized a new cluster from a backup',
    ]);
  });

  it('without a target: the latest point; the initialize key taken: nothing restored', async () => {
    await using h = await execHarness();
    await restoring(h, { repo: '/old/backup' });
    await h.store.put(h.keys.initialize, '');
    await h.act([{ kind: 'bootstrap' }]);
    assert.deepEqual(h.pg.calls, []);
    await h.store.delete(h.keys.initialize);
    h.pg.repos.set('/old/backup', { sysid: OLD_SYSID, timeline: 3, walPosition: 0x5000000, databaseBytes: 0 });
    await h.act([{ kind: 'bootstrap' }]);
    assert.deepEqual(h.pg.restoredFrom?.target, { kind: 'latest' });
    assert.equal(h.pg.timeline, 4);
  });

  it('the restore fails: PG_RESTORE_FAILED, the initialize key released, nothing left running, the retry waits', async () => {
    await using h = await execHarness();
    await restoring(h, { repo: '/old/backup' });
    h.pg.failNext(
      'restoreFrom',
      new PostgresError('PG_RESTORE_FAILED', 'bootstrap from /old/backup failed at "restore the backup": disk full'),
    );
    await h.act([{ kind: 'bootstrap' }]);
    const errors = h.logs.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.fields?.['code'], 'PG_RESTORE_FAILED');
    assert.equal(
      h.mem.lastError,
      'bootstrap from /old/backup failed at "restore the backup": disk full; the next start retries initialization',
    );
    assert.equal(await h.store.get(h.keys.initialize), undefined);
    assert.equal(await h.store.get(h.keys.leader), undefined);
    assert.deepEqual([h.pg.isRunning(), h.pg.dataDirState(), h.mem.failures], [false, 'empty', 1]);
  });

  it('a repository the instance cannot read fails the same way; start failing after the restore moves it aside', async () => {
    await using h = await execHarness();
    await restoring(h, { repo: '/nowhere' });
    await h.act([{ kind: 'bootstrap' }]);
    assert.match(h.mem.lastError ?? '', /^bootstrap from \/nowhere failed at "open the repository \/nowhere"/);
    h.cfg.bootstrap.restore = { repo: '/old/backup' };
    h.pg.repos.set('/old/backup', { sysid: OLD_SYSID, timeline: 1, walPosition: 0x5000000, databaseBytes: 0 });
    h.pg.failNext('start', new PostgresError('PG_START_FAILED', 'PostgreSQL did not start in /fake/data (see log)'));
    await h.act([{ kind: 'bootstrap' }]);
    assert.deepEqual(h.pg.movedAside, ['/fake/data.failed-bootstrap-1']);
    assert.equal(h.pg.dataDirState(), 'empty');
    assert.equal(await h.store.get(h.keys.initialize), undefined);
  });
});
