import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type BackupRecord, writeRecord } from './catalog.js';
import { PosixRepo } from './posix-repo.js';
import { BackupStore } from './store.js';
import { verifyRepository } from './verify.js';
import { walRepoPath } from './wal-names.js';

const seg = (tli: number, n: number) =>
  `${tli.toString(16).padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-verify-'));
  const repo = new PosixRepo(join(dir, 'repo'));
  const store = await BackupStore.open(repo, { create: true });
  const data = Buffer.from('the base archive');
  const stored = await store.put('backups/20261203-010000F/base.tar', [data], 'none');
  const rec: BackupRecord = {
    id: '20261203-010000F',
    type: 'full',
    parent: null,
    member: 'n2',
    timeline: 1,
    start_lsn: '0/3000028',
    stop_lsn: '0/4000100',
    start_time: '2026-12-03T01:00:00.000Z',
    stop_time: '2026-12-03T01:00:05.000Z',
    bytes: 100,
    repo_bytes: data.length,
    duration_s: 5,
    status: 'ok',
    system_identifier: '1',
    pg_version: 150018,
    compression: 'none',
    wal_start: seg(1, 3),
    wal_stop: seg(1, 4),
    files: [{ name: 'base.tar', size: stored.bytes, sha256: createHash('sha256').update(data).digest('hex') }],
  };
  await writeRecord(store, rec);
  // Timeline 1: segments 3..6; a switch to timeline 2 inside segment 6 (0/6000100); timeline 2: 6..8.
  for (const n of [3, 4, 5, 6]) await store.put(walRepoPath(seg(1, n)), [Buffer.from(`wal ${n}`)], 'none');
  for (const n of [6, 7, 8]) await store.put(walRepoPath(seg(2, n)), [Buffer.from(`wal 2/${n}`)], 'none');
  await store.put(
    walRepoPath('00000002.history'),
    [Buffer.from('1\t0/6000100\tno recovery target specified\n')],
    'none',
  );
  return {
    store,
    repoDir: join(dir, 'repo'),
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('a sound repository verifies: files by checksum, WAL across the timeline switch', async () => {
  await using f = await fixture();
  const r = await verifyRepository(f.store);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.backups, ['20261203-010000F']);
  // 3,4,5 on timeline 1, then 6,7,8 on timeline 2 (timeline 1's segment 6 is past the switch: not needed).
  assert.equal(r.walChecked, 6);
});

test('one changed byte, a missing file and an unexpected file are each named', async () => {
  await using f = await fixture();
  const base = join(f.repoDir, 'backups/20261203-010000F/base.tar');
  const bytes = await readFile(base);
  bytes[0] = (bytes[0] ?? 0) ^ 1;
  await writeFile(base, bytes);
  await writeFile(join(f.repoDir, 'backups/20261203-010000F/stray'), 'x');
  const r = await verifyRepository(f.store);
  assert.deepEqual(
    r.problems.map((p) => p.problem),
    [
      'backups/20261203-010000F/base.tar changed: its SHA-256 differs from the one recorded when it was written',
      "unexpected file backups/20261203-010000F/stray (not in the backup's record)",
    ],
  );
  await f.store.repo.delete('backups/20261203-010000F/base.tar');
  assert.match(
    (await verifyRepository(f.store)).problems[0]?.problem ?? '',
    /missing file backups\/20261203-010000F\/base\.tar/,
  );
});

test('a missing WAL segment is named, inside the backup and after it, on either timeline', async () => {
  await using f = await fixture();
  await f.store.repo.delete(walRepoPath(seg(1, 4)));
  let r = await verifyRepository(f.store);
  assert.deepEqual(
    r.problems.map((p) => p.problem),
    [`missing WAL segment ${seg(1, 4)} (needed to restore backup 20261203-010000F at all)`],
  );
  await f.store.put(walRepoPath(seg(1, 4)), [Buffer.from('wal 4')], 'none');
  await f.store.repo.delete(walRepoPath(seg(2, 7)));
  r = await verifyRepository(f.store);
  assert.deepEqual(
    r.problems.map((p) => p.problem),
    [`missing WAL segment ${seg(2, 7)} (needed to recover past it from backup 20261203-010000F)`],
  );
});

test('verify of an unknown id says so', async () => {
  await using f = await fixture();
  const r = await verifyRepository(f.store, { id: '20990101-000000F' });
  assert.match(r.problems[0]?.problem ?? '', /no backup 20990101-000000F/);
});
