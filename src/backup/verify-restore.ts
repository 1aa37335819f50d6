/**
 * `pgkeel backup verify --restore`: the proof that a backup restores — the newest backup and the archived WAL into a
 * temporary directory, PostgreSQL's own checks on the extracted files (pg_verifybackup against the backup's
 * manifest), the server started on a private port and recovered to the end of the archive, then pg_amcheck on every
 * database. The time from the first byte read to a promoted server is the real RTO of this repository.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../lib/net.js';
import { chownForPostgres, run } from '../lib/proc.js';
import { listRecords, usable } from './catalog.js';
import { recoveryOf } from './recovery.js';
import { restoreBackup } from './restore.js';
import { DEFAULT_BIN_DIR, startRestored } from './restore-start.js';
import type { BackupStore } from './store.js';
import type { VerifyProblem } from './verify.js';
import { restoreCommand } from './wal-commands.js';

export interface RestoreCheck {
  readonly backup: string | null;
  readonly restore_seconds: number;
  readonly recovery_seconds: number;
  /** Restore + recovery: how long getting this repository back as a running server takes. */
  readonly rto_seconds: number;
  readonly databases_checked: number;
  readonly summary: string;
  readonly problems: VerifyProblem[];
}

export async function verifyByRestore(
  store: BackupStore,
  keyFile: string | undefined,
  say: (line: string) => void,
  binDir = DEFAULT_BIN_DIR,
): Promise<RestoreCheck> {
  const newest = usable(await listRecords(store)).at(-1);
  const empty = (summary: string, problems: VerifyProblem[] = []): RestoreCheck => ({
    backup: newest?.id ?? null,
    restore_seconds: 0,
    recovery_seconds: 0,
    rto_seconds: 0,
    databases_checked: 0,
    summary,
    problems,
  });
  if (!newest) return empty('restore check: no usable backup', [{ problem: 'no usable backup to restore' }]);
  const tmp = await mkdtemp(join(tmpdir(), 'pgkeel-verify-'));
  await chmod(tmp, 0o755);
  const dataDir = join(tmp, 'data');
  const socketDir = join(tmp, 'run');
  let pgStarted = false;
  try {
    const t0 = performance.now();
    say(`restore check: restoring backup ${newest.id} into ${dataDir}`);
    const recovery = recoveryOf({ kind: 'latest' }, 'promote');
    await restoreBackup({
      store,
      dataDir,
      backupId: newest.id,
      recovery,
      restoreCommand: restoreCommand({
        repo: store.repo.location,
        keyFile,
        prefetch: 8,
        spool: join(dataDir, 'pgkeel_prefetch'),
      }),
    });
    const t1 = performance.now();
    const problems: VerifyProblem[] = [];
    // The extracted files against PostgreSQL's manifest (before recovery changes them).
    const manifestPath = join(tmp, 'backup_manifest');
    const stored = await store.find(`backups/${newest.id}/backup_manifest`);
    if (stored) {
      await writeFile(manifestPath, await store.read(stored));
      chownForPostgres(manifestPath);
      const v = await run(join(binDir, 'pg_verifybackup'), [
        '-n',
        '-q',
        '-m',
        manifestPath,
        '-i',
        'postgresql.auto.conf',
        '-i',
        'recovery.signal',
        '-i',
        'pgkeel_prefetch',
        // restore.ts removes these stale files on purpose (a server's leftovers, not data).
        ...['postmaster.opts', 'standby.signal', 'backup_label.old'].flatMap((f) => ['-i', f]),
        dataDir,
      ]);
      if (v.code !== 0)
        problems.push({
          backup: newest.id,
          problem: `pg_verifybackup: ${(v.stderr || v.stdout).trim().split('\n').slice(0, 20).join('; ')}`,
        });
    }
    say('restore check: starting the restored copy and replaying the archived WAL');
    const port = await freePort('127.0.0.1');
    pgStarted = true;
    await startRestored({ dataDir, port, socketDir, logFile: join(tmp, 'postgresql.log'), recovery, binDir });
    const t2 = performance.now();
    const dbs = await run(join(binDir, 'psql'), [
      '-X',
      '-At',
      '-h',
      socketDir,
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      'postgres',
      '-c',
      'select count(*) from pg_database where datallowconn',
    ]);
    const amcheck = await run(
      join(binDir, 'pg_amcheck'),
      ['-h', socketDir, '-p', String(port), '-U', 'postgres', '--all', '--install-missing', '--heapallindexed'],
      { timeoutMs: 3_600_000 },
    );
    if (amcheck.code !== 0)
      problems.push({
        backup: newest.id,
        problem: `pg_amcheck found corruption: ${(amcheck.stdout + amcheck.stderr).trim().split('\n').slice(0, 20).join('; ')}`,
      });
    const restoreS = (t1 - t0) / 1000;
    const recoveryS = (t2 - t1) / 1000;
    const n = Number(dbs.stdout.trim()) || 0;
    return {
      backup: newest.id,
      restore_seconds: round(restoreS),
      recovery_seconds: round(recoveryS),
      rto_seconds: round(restoreS + recoveryS),
      databases_checked: n,
      summary: `restore check: backup ${newest.id} restored in ${restoreS.toFixed(1)} s, WAL replayed in ${recoveryS.toFixed(1)} s (RTO ${(restoreS + recoveryS).toFixed(1)} s); pg_verifybackup ${problems.some((p) => p.problem.startsWith('pg_verifybackup')) ? 'FAILED' : 'ok'}, pg_amcheck on ${n} database(s) ${amcheck.code === 0 ? 'ok' : 'FAILED'}`,
      problems,
    };
  } catch (err) {
    return empty('restore check failed', [
      { backup: newest.id, problem: `restore check failed: ${(err as Error).message}` },
    ]);
  } finally {
    if (pgStarted)
      await run(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { timeoutMs: 60_000 }).catch(
        () => {},
      );
    await rm(tmp, { recursive: true, force: true });
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
