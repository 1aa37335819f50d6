/**
 * A full backup into a repository whose filesystem fills up (a 4 MB tmpfs; root mounts it) fails cleanly: the error
 * says the repository is full, the record is `failed`, no data or temporary file of it remains, and the next backup,
 * once there is room, succeeds. The source is a stand-in for BASE_BACKUP (the stream format is tested against a real
 * PostgreSQL in base-backup-stream.test.ts); the repository, the records and the lease are the real ones.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { listRecords } from '../../src/backup/catalog.js';
import { isBackupError } from '../../src/backup/errors.js';
import { testSettings, viewMember, viewOf } from '../../src/backup/fixture.js';
import type { ArchiveSink, BaseBackupSource } from '../../src/backup/full-backup.js';
import { openStore, runBackup } from '../../src/backup/run.js';
import { MemoryStore } from '../../src/dcs/memory.js';
import { run } from '../../src/lib/proc.js';
import { tempDir } from '../helpers/tmp.js';

function source(bytes: number): BaseBackupSource & { close(): Promise<void> } {
  return {
    member: 'n2',
    identify: async () => ({ systemId: '7300000000000000001', timeline: 1 }),
    serverVersion: async () => 150018,
    async baseBackup(_o, sink: ArchiveSink) {
      await sink.start({ startLsn: '0/2000028', timeline: 1 });
      await sink.archive('base.tar.lz4', '');
      for (let sent = 0; sent < bytes; sent += 256 * 1024) await sink.data(randomBytes(256 * 1024));
      await sink.manifest();
      await sink.data(Buffer.from(JSON.stringify({ Files: [{ Path: 'PG_VERSION', Size: 3 }] })));
      await sink.end({ endLsn: '0/2000100', timeline: 1 });
    },
    close: async () => {},
  };
}

it('a full repository fails the backup cleanly; with room again the next one succeeds', async () => {
  if (process.getuid?.() !== 0) return; // mounting a tmpfs needs root (the CI runs as root)
  await using dir = await tempDir('diskfull');
  const mnt = join(dir.path, 'tmpfs');
  await mkdir(mnt);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mnt], { asPostgres: false });
  try {
    const settings = testSettings(join(mnt, 'repo'));
    let t = Date.parse('2026-12-03T01:00:00Z');
    const deps = (bytes: number) => ({
      settings,
      dcs: new MemoryStore({ now: () => t }),
      leaseKey: '/service/s/backup',
      readView: async () => viewOf(viewMember('n1', 'running'), viewMember('n2', 'streaming')),
      connectSource: async () => source(bytes),
      switchWal: async () => {
        const store = await openStore(settings);
        await store.put('wal/0000000100000000/000000010000000000000002', [Buffer.alloc(64)], 'none');
      },
      now: () => new Date(t),
      who: 'test',
    });
    await assert.rejects(runBackup(deps(8 << 20), { type: 'full' }), (err: unknown) => {
      assert.ok(isBackupError(err, 'BACKUP_FAILED'));
      assert.match((err as Error).message, /repository is full/);
      return true;
    });
    const store = await openStore(settings);
    const [failed] = await listRecords(store);
    assert.equal(failed?.status, 'failed');
    assert.deepEqual(await readdir(join(settings.repo, 'backups', failed?.id as string)), ['backup.json']);
    t += 60_000;
    const ok = await runBackup(deps(1 << 20), { type: 'full' });
    assert.equal(ok.status, 'ok');
  } finally {
    await run('umount', ['-l', mnt], { asPostgres: false }).catch(() => undefined);
  }
});
