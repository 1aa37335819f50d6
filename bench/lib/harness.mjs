// What the benchmarks share: running a program (as postgres when asked), the log line, the temp work directory and
// the Ctrl-C hook that cleans up by PID. Needs a build (dist/).
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresIdentity } from '../../dist/src/lib/proc.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PGKEEL = join(root, 'dist', 'src', 'cli', 'main.js');
const pg = postgresIdentity();

export const log = (s) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

/** Runs a program (as postgres when asked), throws on a non-zero exit; returns stdout and the wall time. */
export function sh(cmd, args, { asPostgres = false, env = {}, shell = false } = {}) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(shell ? '/bin/sh' : cmd, shell ? ['-c', cmd] : args, {
      env: { ...process.env, ...(asPostgres && pg ? { HOME: pg.home } : {}), ...env },
      cwd: asPostgres ? '/' : root,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asPostgres && pg ? { uid: pg.uid, gid: pg.gid } : {}),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-8000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = (performance.now() - t0) / 1000;
      if (code === 0) resolve({ out, err, secs });
      else reject(new Error(`${shell ? cmd : [cmd, ...args].join(' ')} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/** A fresh temp directory (0755, so the postgres user can reach what is made below it). */
export function workDir(prefix) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(work, 0o755);
  return work;
}

/** Removes the work directory, or keeps it with PGKEEL_KEEP_TEST_DIRS=1. */
export function dropWorkDir(work) {
  if (process.env.PGKEEL_KEEP_TEST_DIRS === '1') log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

/** On SIGINT/SIGTERM: `cleanup()`, then exit 130. */
export function onInterrupt(cleanup) {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      cleanup().finally(() => process.exit(130));
    });
  }
}

/** `pgkeel down --dir` (errors logged, not thrown). */
export async function clusterDown(cdir) {
  await sh('node', [PGKEEL, 'down', '--dir', cdir]).catch((e) => log(`down: ${e.message}`));
}
