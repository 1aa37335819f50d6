import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isBackupError } from './errors.js';
import { PosixRepo } from './posix-repo.js';
import { BackupStore } from './store.js';
import { getWal, listWal, pushWal, walPresent } from './wal.js';

const SEG1 = '000000010000000000000001';
const SEG2 = '000000010000000000000002';

async function fixture(keyed = false) {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-wal-'));
  const keyFile = join(dir, 'key');
  if (keyed) await writeFile(keyFile, randomBytes(48).toString('base64'));
  const repo = new PosixRepo(join(dir, 'repo'));
  const store = await BackupStore.open(repo, { create: true, keyFile: keyed ? keyFile : undefined });
  const walFile = async (name: string, content: Buffer) => {
    const p = join(dir, name);
    await writeFile(p, content);
    return p;
  };
  return {
    dir,
    repo,
    store,
    walFile,
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// A WAL-like segment: mostly zeros with some random records (compressible, as real segments are).
function segment(size = 1 << 20): Buffer {
  const b = Buffer.alloc(size);
  randomBytes(size / 8).copy(b, 0);
  return b;
}

for (const keyed of [false, true]) {
  test(`push then get gives the same bytes, under the layout's path${keyed ? ' (encrypted)' : ''}`, async () => {
    await using f = await fixture(keyed);
    const data = segment();
    const res = await pushWal(f.store, await f.walFile(SEG1, data), SEG1, { compression: 'lz4' });
    assert.deepEqual(res.path, `wal/0000000100000000/${SEG1}.lz4`);
    assert.ok(res.created);
    assert.ok(res.bytes > 0 && res.bytes < data.length, 'compressed');
    const dest = join(f.dir, 'RECOVERYXLOG');
    assert.deepEqual(await getWal(f.store, SEG1, dest), { path: res.path, bytes: data.length });
    assert.ok((await readFile(dest)).equals(data));
    assert.deepEqual(
      (await readdir(f.dir)).filter((n) => n.includes('tmp')),
      [],
      'no temporary file left',
    );
  });
}

test('an identical re-push succeeds without rewriting, whatever compression the stored copy has', async () => {
  await using f = await fixture();
  const data = segment();
  const p = await f.walFile(SEG1, data);
  const first = await pushWal(f.store, p, SEG1, { compression: 'zstd' });
  const before = await stat(join(f.repo.root, first.path));
  const again = await pushWal(f.store, p, SEG1, { compression: 'lz4' });
  assert.deepEqual(again, { path: `wal/0000000100000000/${SEG1}.zst`, created: false, bytes: 0 });
  const after = await stat(join(f.repo.root, first.path));
  assert.equal(after.ino, before.ino);
  assert.equal(after.mtimeMs, before.mtimeMs);
  assert.equal(await f.store.find(`wal/0000000100000000/${SEG1}`), first.path, 'no second copy with .lz4');
});

test('different content under an archived name is refused, naming both, and the original is kept', async () => {
  await using f = await fixture();
  const original = segment();
  const stored = (await pushWal(f.store, await f.walFile(SEG1, original), SEG1)).path;
  const other = segment();
  await assert.rejects(pushWal(f.store, await f.walFile('other', other), SEG1), (err: unknown) => {
    assert.ok(isBackupError(err, 'WAL_DIFFERENT_CONTENT'));
    assert.match((err as Error).message, new RegExp(`${SEG1} is already archived as .*${stored}`));
    assert.deepEqual((err as { context: unknown }).context, { wal: SEG1, path: stored });
    return true;
  });
  assert.ok((await f.store.read(stored)).equals(original));
});

test('get of a missing file is WAL_NOT_FOUND and creates nothing', async () => {
  await using f = await fixture();
  const dest = join(f.dir, 'RECOVERYXLOG');
  await assert.rejects(getWal(f.store, '00000002.history', dest), (err: unknown) => {
    assert.ok(isBackupError(err, 'WAL_NOT_FOUND'));
    assert.match((err as Error).message, /00000002\.history is not in the repository/);
    return true;
  });
  await assert.rejects(stat(dest), { code: 'ENOENT' });
});

test('a name that is not a WAL file name is refused before touching the repository', async () => {
  await using f = await fixture();
  const p = await f.walFile('x', Buffer.from('x'));
  await assert.rejects(pushWal(f.store, p, '../../etc/passwd'), /is not a WAL file name/);
  await assert.rejects(getWal(f.store, 'repo.json', join(f.dir, 'y')), /is not a WAL file name/);
});

test('listWal and walPresent: history first, then by position; sizes are the stored sizes', async () => {
  await using f = await fixture();
  const hist = Buffer.from('1\t0/2000000\tno recovery target specified\n');
  await pushWal(f.store, await f.walFile(SEG2, segment()), SEG2, { compression: 'gzip' });
  await pushWal(f.store, await f.walFile(SEG1, segment()), SEG1, { compression: 'none' });
  await pushWal(f.store, await f.walFile('h', hist), '00000002.history');
  await f.store.put('backups/x/backup.json', [Buffer.from('{}')], 'none'); // not WAL: not listed
  const list = await listWal(f.store);
  assert.deepEqual(
    list.map((w) => [w.name, w.path]),
    [
      ['00000002.history', 'wal/history/00000002.history.lz4'],
      [SEG1, `wal/0000000100000000/${SEG1}`],
      [SEG2, `wal/0000000100000000/${SEG2}.gz`],
    ],
  );
  assert.equal(list[1]?.size, 1 << 20);
  assert.deepEqual(await walPresent(f.store, [SEG1, '000000010000000000000003', SEG2]), {
    present: [SEG1, SEG2],
    missing: ['000000010000000000000003'],
  });
});

test('a former primary after pg_rewind: its copy differs only past where pg_wal says its timeline was left — archived', async () => {
  await using f = await fixture();
  const follower = segment(); // what the replica that followed timeline 2 archived: timeline 1 up to the fork
  const stored = (await pushWal(f.store, await f.walFile(SEG1, follower), SEG1)).path;
  // Timeline 1 was left at 0/1080000, inside SEG1 (which starts at 0/1000000): 0x80000 bytes in.
  await writeFile(join(f.dir, '00000002.history'), '1\t0/1080000\tno recovery target specified\n');
  const abandoned = Buffer.concat([follower.subarray(0, 0x80000), randomBytes(follower.length - 0x80000)]);
  const res = await pushWal(f.store, await f.walFile(SEG1, abandoned), SEG1);
  assert.deepEqual(res, { path: stored, created: false, bytes: 0, abandonedAfter: '0/1080000' });
  assert.deepEqual(await f.store.read(stored), follower, 'the stored copy is kept');
  // A difference before the switchpoint is two writers on one timeline: still refused.
  const forked = Buffer.from(abandoned);
  forked[0x7ffff] = (forked[0x7ffff] as number) ^ 0xff;
  await assert.rejects(pushWal(f.store, await f.walFile(SEG1, forked), SEG1), (err: unknown) =>
    isBackupError(err, 'WAL_DIFFERENT_CONTENT'),
  );
  // So is a segment of the timeline after the one the history names (the switchpoint is not inside it).
  await pushWal(f.store, await f.walFile(SEG2, follower), SEG2);
  await assert.rejects(pushWal(f.store, await f.walFile(SEG2, abandoned), SEG2), (err: unknown) =>
    isBackupError(err, 'WAL_DIFFERENT_CONTENT'),
  );
});
