import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMPRESSIONS } from './codec.js';
import { isBackupError } from './errors.js';
import { PosixRepo } from './posix-repo.js';
import { BackupStore } from './store.js';

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-store-'));
  const keyFile = join(dir, 'key');
  await writeFile(keyFile, randomBytes(48).toString('base64'));
  const otherKey = join(dir, 'other-key');
  await writeFile(otherKey, randomBytes(48).toString('base64'));
  return {
    dir,
    keyFile,
    otherKey,
    repo: new PosixRepo(join(dir, 'repo')),
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// Compressible and incompressible halves, bigger than one pipe buffer.
const DATA = Buffer.concat([Buffer.alloc(300_000, 'pgkeel '), randomBytes(200_000)]);

for (const encrypted of [false, true]) {
  for (const c of COMPRESSIONS) {
    test(`store round trip: ${c}${encrypted ? ', encrypted' : ''}`, async () => {
      await using f = await fixture();
      const store = await BackupStore.open(f.repo, { create: true, keyFile: encrypted ? f.keyFile : undefined });
      const res = await store.put('wal/x/seg', [DATA.subarray(0, 1000), DATA.subarray(1000)], c);
      assert.equal(res.path, `wal/x/seg${{ lz4: '.lz4', zstd: '.zst', gzip: '.gz', none: '' }[c]}`);
      assert.equal(await store.find('wal/x/seg'), res.path);
      assert.ok((await store.read(res.path)).equals(DATA));
      const stored = await readFile(join(f.repo.root, res.path));
      if (encrypted) assert.equal(stored.subarray(0, 8).toString(), 'PGKEENC1');
      if (c !== 'none') assert.ok(stored.length < DATA.length, 'compressed');
    });
  }
}

test('a wrong key is refused before anything is decrypted; no key for an encrypted repo too', async () => {
  await using f = await fixture();
  await BackupStore.open(f.repo, { create: true, keyFile: f.keyFile });
  await assert.rejects(BackupStore.open(f.repo, { keyFile: f.otherKey }), (err: unknown) => {
    assert.ok(isBackupError(err, 'REPO_KEY_MISMATCH'));
    assert.match((err as Error).message, /does not open/);
    return true;
  });
  await assert.rejects(BackupStore.open(f.repo, {}), (err: unknown) => isBackupError(err, 'REPO_KEY_MISMATCH'));
});

test('a key file shorter than 32 bytes is refused with how to make one', async () => {
  await using f = await fixture();
  await writeFile(f.keyFile, 'short');
  await assert.rejects(BackupStore.open(f.repo, { create: true, keyFile: f.keyFile }), /openssl rand/);
});

test('one changed byte of an encrypted file fails authentication, naming the file', async () => {
  await using f = await fixture();
  const store = await BackupStore.open(f.repo, { create: true, keyFile: f.keyFile });
  const { path } = await store.put('backups/1/base.tar', [DATA], 'none');
  const abs = join(f.repo.root, path);
  const bytes = await readFile(abs);
  const mid = bytes.length >> 1;
  bytes[mid] = (bytes[mid] ?? 0) ^ 0x01;
  await writeFile(abs, bytes);
  await assert.rejects(store.read(path), (err: unknown) => {
    assert.ok(isBackupError(err, 'REPO_DECRYPT_FAILED'));
    assert.match((err as Error).message, /backups\/1\/base\.tar/);
    return true;
  });
});

test('a corrupt lz4 file is a codec error, not garbage', async () => {
  await using f = await fixture();
  const store = await BackupStore.open(f.repo, { create: true });
  const { path } = await store.put('w/seg', [DATA], 'lz4');
  const abs = join(f.repo.root, path);
  const bytes = await readFile(abs);
  await writeFile(abs, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(store.read(path), (err: unknown) => isBackupError(err, 'REPO_CODEC_FAILED'));
});

test('an unopened directory is not a repository unless asked to create one', async () => {
  await using f = await fixture();
  await assert.rejects(BackupStore.open(f.repo), (err: unknown) => isBackupError(err, 'REPO_NOT_INITIALIZED'));
  const s = await BackupStore.open(f.repo, { create: true });
  assert.equal(s.encrypted, false);
  await s.claimSystem('7300000000000000001');
  const again = await BackupStore.open(f.repo);
  assert.equal(again.meta.system_identifier, '7300000000000000001');
  await assert.rejects(again.claimSystem('7300000000000000002'), /not 7300000000000000002/);
});
