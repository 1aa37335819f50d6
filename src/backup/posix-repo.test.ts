import assert from 'node:assert/strict';
import { writeSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isBackupError } from './errors.js';
import { PosixRepo } from './posix-repo.js';
import { repoContract } from './repo.contract.js';

repoContract('posix', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-repo-'));
  const repo = new PosixRepo(join(dir, 'repo'));
  return Object.assign(repo, {
    async [Symbol.asyncDispose]() {
      // No temporary file may survive a test.
      const left = await readdir(join(dir, 'repo'), { recursive: true }).catch(() => []);
      await rm(dir, { recursive: true, force: true });
      if (left.some((f) => String(f).includes('.tmp-'))) throw new Error(`temporary files left: ${left.join(', ')}`);
    },
  });
});

test('putFrom: a program writes the repository file through the fd; durable, atomic, ifAbsent, no temp file left', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-repo-'));
  try {
    const repo = new PosixRepo(join(dir, 'repo'));
    const fill = (text: string) => async (fd: number) => {
      writeSync(fd, text);
    };
    assert.deepEqual(await repo.putFrom('a/b', fill('hello')), { bytes: 5, created: true });
    assert.equal(await readFile(join(dir, 'repo', 'a', 'b'), 'utf8'), 'hello');
    assert.equal((await stat(join(dir, 'repo', 'a', 'b'))).mode & 0o777, 0o640);
    assert.deepEqual(await repo.putFrom('a/b', fill('other'), { ifAbsent: true }), { bytes: 0, created: false });
    assert.equal(await readFile(join(dir, 'repo', 'a', 'b'), 'utf8'), 'hello');
    // A failed fill leaves nothing; with less room than the size hint it is REPO_NO_SPACE, otherwise REPO_IO.
    const boom = async () => {
      throw new Error('Write error : cannot write compressed block');
    };
    await assert.rejects(repo.putFrom('a/c', boom, { sizeHint: 1e18 }), (err: unknown) => {
      assert.ok(isBackupError(err, 'REPO_NO_SPACE'));
      assert.match((err as Error).message, /repository is full: could not write a\/c/);
      return true;
    });
    await assert.rejects(repo.putFrom('a/c', boom, { sizeHint: 1 }), (err: unknown) => {
      assert.ok(isBackupError(err, 'REPO_IO'));
      assert.match((err as Error).message, /Write error/);
      return true;
    });
    assert.deepEqual((await readdir(join(dir, 'repo', 'a'))).sort(), ['b']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
