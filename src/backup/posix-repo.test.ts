import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
