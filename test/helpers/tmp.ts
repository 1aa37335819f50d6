import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp directory removed on dispose (`await using dir = await tempDir('x')`). World-traversable so the
 * `postgres` user can reach data directories created inside it when tests run as root. */
export async function tempDir(prefix: string): Promise<{ path: string } & AsyncDisposable> {
  const path = await mkdtemp(join(tmpdir(), `pgkeel-${prefix}-`));
  await chmod(path, 0o755);
  return {
    path,
    async [Symbol.asyncDispose]() {
      if (process.env['PGKEEL_KEEP_TEST_DIRS'] === '1') return;
      await rm(path, { recursive: true, force: true });
    },
  };
}
