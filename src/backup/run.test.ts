import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MemberView } from '../cluster/view.js';
import { MemoryStore } from '../dcs/memory.js';
import { listRecords, writeRecord } from './catalog.js';
import { isBackupError } from './errors.js';
import { testSettings, viewMember, viewOf } from './fixture.js';
import type { ArchiveSink, BaseBackupSource } from './full-backup.js';
import { openStore, runBackup } from './run.js';

const VIEW = viewOf(viewMember('n1', 'running'), viewMember('n2', 'streaming'));
const MANIFEST = JSON.stringify({
  Files: [
    { Path: 'PG_VERSION', Size: 3 },
    { Path: 'base/1/1', Size: 8192 },
  ],
});

function fakeSource(
  name: string,
  opts: { failAfterData?: boolean } = {},
): BaseBackupSource & { close(): Promise<void> } {
  return {
    member: name,
    identify: async () => ({ systemId: '7300000000000000001', timeline: 1 }),
    serverVersion: async () => 150018,
    async baseBackup(_o, sink: ArchiveSink) {
      await sink.start({ startLsn: '0/2000028', timeline: 1 });
      await sink.archive('base.tar.lz4', '');
      await sink.data(Buffer.from('tar bytes part 1;'));
      if (opts.failAfterData) throw new Error('connection lost');
      await sink.data(Buffer.from('tar bytes part 2'));
      await sink.manifest();
      await sink.data(Buffer.from(MANIFEST));
      await sink.end({ endLsn: '0/2000100', timeline: 1 });
    },
    close: async () => {},
  };
}

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-run-'));
  let t = Date.parse('2026-12-03T01:00:00Z');
  const settings = testSettings(join(dir, 'repo'));
  const dcs = new MemoryStore({ now: () => t });
  const switched: string[] = [];
  return {
    dir,
    settings,
    dcs,
    switched,
    tick: (ms: number) => {
      t += ms;
    },
    deps: (source: BaseBackupSource & { close(): Promise<void> }, walArrives = true) => ({
      settings,
      dcs,
      leaseKey: '/service/s/backup',
      readView: async () => VIEW,
      connectSource: async () => source,
      switchWal: async (m: MemberView) => {
        switched.push(m.name);
        if (walArrives) {
          const store = await openStore(settings);
          await store.put('wal/0000000100000000/000000010000000000000002', [Buffer.alloc(16)], 'lz4');
        }
      },
      now: () => new Date(t),
      sleep: async (ms: number) => {
        t += ms;
      },
      who: 'test',
      walTimeoutMs: 5000,
    }),
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('a full backup from the replica: stored as sent, checksummed, recorded ok once its last WAL is archived', async () => {
  await using f = await fixture();
  const rec = await runBackup(f.deps(fakeSource('n2')), { type: 'full' });
  assert.equal(rec.status, 'ok');
  assert.equal(rec.member, 'n2');
  assert.equal(rec.id, '20261203-010000F');
  assert.equal(rec.start_lsn, '0/2000028');
  assert.equal(rec.stop_lsn, '0/2000100');
  assert.equal(rec.wal_start, '000000010000000000000002');
  assert.equal(rec.wal_stop, '000000010000000000000002');
  assert.equal(rec.bytes, 8195);
  assert.deepEqual(f.switched, ['n1'], 'the leader was asked to close its WAL segment');
  const base = rec.files.find((x) => x.name === 'base.tar.lz4');
  assert.ok(base);
  const stored = await readFile(join(f.settings.repo, 'backups', rec.id, 'base.tar.lz4'));
  assert.equal(stored.toString(), 'tar bytes part 1;tar bytes part 2', 'server-compressed bytes are stored as sent');
  assert.equal(base.sha256, createHash('sha256').update(stored).digest('hex'));
  assert.equal(
    rec.repo_bytes,
    rec.files.reduce((s, x) => s + x.size, 0),
  );
  const [listed] = await listRecords(await openStore(f.settings));
  assert.equal(listed?.status, 'ok');
  assert.equal(await f.dcs.get('/service/s/backup'), undefined, 'lease released');
});

test('a failed backup is marked failed, its data removed, the lease released', async () => {
  await using f = await fixture();
  await assert.rejects(runBackup(f.deps(fakeSource('n2', { failAfterData: true })), { type: 'full' }), (e: unknown) =>
    isBackupError(e, 'BACKUP_FAILED'),
  );
  const store = await openStore(f.settings);
  const [rec] = await listRecords(store);
  assert.equal(rec?.status, 'failed');
  assert.match(rec?.error ?? '', /connection lost/);
  assert.deepEqual(
    (await store.repo.list('backups')).map((x) => x.path),
    [`backups/${rec?.id}/backup.json`],
  );
  assert.equal(await f.dcs.get('/service/s/backup'), undefined);
});

test('a backup whose last WAL never reaches the archive fails, saying so', async () => {
  await using f = await fixture();
  await assert.rejects(runBackup(f.deps(fakeSource('n2'), false), { type: 'full' }), /did not reach the archive/);
  const [rec] = await listRecords(await openStore(f.settings));
  assert.equal(rec?.status, 'failed');
});

test('a record left running by a dead writer is cleaned by the next backup, which succeeds', async () => {
  await using f = await fixture();
  const first = await runBackup(f.deps(fakeSource('n2')), { type: 'full' });
  const store = await openStore(f.settings);
  await writeRecord(store, {
    ...first,
    id: '20261203-010030F',
    start_time: '2026-12-03T01:00:30.000Z',
    status: 'running',
    writer: { host: 'h', pid: 42 },
  });
  await store.put('backups/20261203-010030F/base.tar', [Buffer.from('half')], 'lz4', { precompressed: true });
  f.tick(60_000);
  const second = await runBackup(f.deps(fakeSource('n2')), { type: 'full' });
  assert.equal(second.status, 'ok');
  const byId = new Map((await listRecords(store)).map((r) => [r.id, r]));
  assert.equal(byId.get('20261203-010030F')?.status, 'failed');
  assert.match(byId.get('20261203-010030F')?.error ?? '', /interrupted.*pid 42/);
  assert.equal(await store.repo.stat('backups/20261203-010030F/base.tar.lz4'), null);
});

test('an incremental backup without a SQL session, or with --delta, is refused plainly', async () => {
  await using f = await fixture();
  await assert.rejects(runBackup(f.deps(fakeSource('n2')), { type: 'incr' }), /need a SQL session/);
  await assert.rejects(runBackup(f.deps(fakeSource('n2')), { type: 'full', delta: true }), /--delta .* not built yet/);
});

test('retention is applied after each successful backup: the oldest full backup beyond `full` goes', async () => {
  await using f = await fixture();
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await runBackup(f.deps(fakeSource('n2')), { type: 'full' })).id);
    f.tick(60_000);
  }
  const left = (await listRecords(await openStore(f.settings))).map((r) => r.id);
  assert.deepEqual(left, ids.slice(1), 'retention full: 2');
});
