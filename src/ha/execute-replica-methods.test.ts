/**
 * postgresql.create_replica_methods (Patroni's): a new replica from the newest backup and the archive before
 * pg_basebackup from the leader, with a fall-back to the next method when the restore fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execHarness, type ExecHarness } from '../../test/helpers/executor.js';

async function withLeader(h: ExecHarness, methods: ('backup' | 'basebackup')[], repo?: string): Promise<void> {
  await h.member('node2', { role: 'master' });
  await h.store.put(h.keys.leader, 'node2');
  h.reachable('node2');
  h.cfg.postgresql.create_replica_methods = methods;
  if (repo) h.cfg.backup = { repo };
}

const steps = (h: ExecHarness) => h.pg.calls.filter((c) => !c.startsWith('writeConfig'));

describe('create_replica_methods', () => {
  it('backup first: the newest backup restored as a standby, then started following the leader; no pg_basebackup', async () => {
    await using h = await execHarness();
    await withLeader(h, ['backup', 'basebackup'], '/repo');
    h.pg.repos.set('/repo', { sysid: '7000000000000000001', timeline: 1, walPosition: 0x2000000, databaseBytes: 0 });
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(steps(h), ['writePgpass', 'cloneFromBackup /repo', 'start']);
    assert.deepEqual(
      [h.pg.isRunning(), h.pg.inRecovery, h.pg.conf?.upstream, h.mem.following],
      [true, true, 'node2:5432 slot=node1', 'node2'],
    );
    assert.deepEqual(h.messages('info'), ['creating the replica from the newest backup in /repo']);
  });

  it('the restore fails: pg_basebackup from the leader instead, the failure logged as a warning', async () => {
    await using h = await execHarness();
    await withLeader(h, ['backup', 'basebackup'], '/repo');
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(steps(h), ['writePgpass', 'cloneFromBackup /repo', 'clone node2:5432', 'start']);
    assert.deepEqual(h.messages('warn'), ['creating the replica from a backup failed; trying the next method']);
    assert.deepEqual([h.pg.isRunning(), h.mem.failures], [true, 0]);
  });

  it('no repository: backup is skipped; the default is pg_basebackup alone; re-clone follows the list too', async () => {
    await using h = await execHarness();
    await withLeader(h, ['backup', 'basebackup']);
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(steps(h), ['writePgpass', 'clone node2:5432', 'start']);
    assert.equal(h.messages('info')[0], 'create_replica_methods: backup skipped, this node has no backup repository');

    await using d = await execHarness();
    assert.deepEqual(d.cfg.postgresql.create_replica_methods, ['basebackup']);
    await withLeader(d, ['backup'], '/repo');
    d.pg.repos.set('/repo', { sysid: '7000000000000000001', timeline: 1, walPosition: 0x2000000, databaseBytes: 0 });
    await d.pg.initdb();
    d.pg.calls.length = 0;
    await d.act([{ kind: 'reclone', from: 'node2' }]);
    assert.deepEqual(steps(d), ['stop fast', 'moveAside before-reclone', 'cloneFromBackup /repo', 'start']);
  });

  it('backup alone and it fails: the clone fails with the restore error; backup alone without a repository too', async () => {
    await using h = await execHarness();
    await withLeader(h, ['backup'], '/repo');
    await h.act([{ kind: 'clone', from: 'node2' }]);
    assert.deepEqual(
      [h.mem.lastError, h.pg.dataDirState(), h.pg.isRunning()],
      ['restoring the newest backup of /repo failed', 'empty', false],
    );
    await using n = await execHarness();
    await withLeader(n, ['backup']);
    await n.act([{ kind: 'clone', from: 'node2' }]);
    assert.equal(n.mem.lastError, 'no create_replica_methods entry could create the replica');
    assert.deepEqual(n.pg.calls, ['writePgpass'], 'nothing else');
  });
});
