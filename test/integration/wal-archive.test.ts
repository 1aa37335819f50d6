/**
 * The continuous WAL archive against a real PostgreSQL 15: archive_command from wal-commands.ts (run by the postgres
 * OS user), the agent-side archiver making its fast path, a different segment under an archived name refused with
 * PostgreSQL keeping its segment, and a full repository (a 20 MB tmpfs) failing cleanly and catching up with no gap.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PosixRepo } from '../../src/backup/posix-repo.js';
import { BackupStore } from '../../src/backup/store.js';
import { listWal, pushWal } from '../../src/backup/wal.js';
import { WalArchiver } from '../../src/backup/wal-archiver.js';
import { archiveCommand } from '../../src/backup/wal-commands.js';
import { segmentNumber } from '../../src/backup/wal-names.js';
import { postgresIdentity, sleep } from '../../src/lib/proc.js';
import { type RunningPostgres, startPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const WAL_MAIN = new URL('../../src/cli/wal-main.js', import.meta.url).pathname;
const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

/** A postgresql.conf string (postgres/conf.ts quotes the same way). */
const confString = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** A directory the postgres OS user owns (archive_command runs as postgres). */
async function postgresDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  const id = postgresIdentity();
  if (id) await chown(path, id.uid, id.gid);
  return path;
}

async function openStore(repoDir: string): Promise<BackupStore> {
  return BackupStore.open(new PosixRepo(repoDir, { owner: postgresIdentity() }), { create: true });
}

async function startArchiving(dir: string, repoDir: string, spool?: string): Promise<RunningPostgres> {
  return startPostgres(dir, {
    conf: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: confString(archiveCommand({ repo: repoDir, spool, compression: 'lz4' })),
      max_wal_size: "'64MB'",
    },
  });
}

/** Writes some WAL and switches to a new segment `times` times; returns the names of the segments it closed. */
async function switchSegments(pg: RunningPostgres, times: number, rowsPerSegment = 2000): Promise<string[]> {
  await pg.sql('CREATE TABLE IF NOT EXISTS t (id serial, v text)');
  const closed: string[] = [];
  for (let i = 0; i < times; i++) {
    await pg.sql(`INSERT INTO t (v) SELECT md5(g::text) FROM generate_series(1, ${rowsPerSegment}) g`);
    const [row] = await pg.sql('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f, pg_switch_wal()');
    closed.push(row?.['f'] as string);
  }
  return closed;
}

async function archiver(pg: RunningPostgres): Promise<Record<string, unknown>> {
  const [row] = await pg.sql(
    'SELECT archived_count::int, failed_count::int, last_archived_wal, last_failed_wal FROM pg_stat_archiver',
  );
  return row as Record<string, unknown>;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Every segment of timeline 1 from the first to `last` is in the repository (no gap). */
async function assertNoGap(store: BackupStore, last: string): Promise<string[]> {
  const segs = (await listWal(store)).map((w) => w.name).filter((n) => /^[0-9A-F]{24}$/.test(n));
  const first = segmentNumber(segs[0] as string);
  const want = segmentNumber(last) - first + 1;
  const got = segs.filter((n) => segmentNumber(n) <= segmentNumber(last)).map((n) => segmentNumber(n));
  assert.deepEqual(
    got,
    Array.from({ length: want }, (_, i) => first + i),
    `segments ${segs.join(' ')}`,
  );
  return segs;
}

function serverLog(dir: string): string {
  return readFileSync(join(dir, 'pgrun', 'postgresql.log'), 'utf8');
}

/** Temporary files a put left behind anywhere in the repository. */
function tempFiles(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).filter((p) => p.includes('.tmp-'));
}

describe('WAL archive with PostgreSQL 15', () => {
  it('archives every segment through the archiver fast path, byte-identical to pg_wal, with no failure', async () => {
    await using dir = await tempDir('walarch');
    const repoDir = join(dir.path, 'repo');
    const spool = await postgresDir(join(dir.path, 'spool'));
    const store = await openStore(repoDir);
    await using pg = await startArchiving(dir.path, repoDir, spool);
    const errors: string[] = [];
    const a = new WalArchiver({
      store,
      dataDir: pg.dataDir,
      spoolDir: spool,
      intervalMs: 50,
      onError: (f, e) => errors.push(`${f}: ${e.message}`),
    });
    a.start();
    try {
      const closed = await switchSegments(pg, 6);
      const last = closed[closed.length - 1] as string;
      await until(`${last} archived`, async () => (await archiver(pg))['last_archived_wal'] === last);
      const segs = await assertNoGap(store, last);
      let compared = 0;
      for (const w of await listWal(store)) {
        const local = join(pg.dataDir, 'pg_wal', w.name);
        if (!existsSync(local)) continue;
        assert.ok((await store.read(w.path)).equals(readFileSync(local)), `${w.name} differs from pg_wal`);
        compared++;
      }
      assert.ok(compared >= 1, `compared ${compared} of ${segs.length}`);
      assert.equal((await archiver(pg))['failed_count'], 0);
      assert.ok(a.stats.pushed >= closed.length, `archiver pushed ${a.stats.pushed}`);
      assert.equal(a.stats.failures, 0, errors.join('\n'));
    } finally {
      await a.stop();
    }
    // Files the agent (root) wrote are the postgres user's, so archive-push (as postgres) can work beside it.
    const id = postgresIdentity();
    if (id) for (const w of await listWal(store)) assert.equal(statSync(join(repoDir, w.path)).uid, id.uid, w.path);
  });

  it('refuses a different segment under the name PostgreSQL archives next; PostgreSQL keeps it and retries', async () => {
    await using dir = await tempDir('walarch');
    const repoDir = join(dir.path, 'repo');
    const store = await openStore(repoDir);
    await using pg = await startArchiving(dir.path, repoDir);
    await switchSegments(pg, 2);
    const [row] = await pg.sql('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
    const next = row?.['f'] as string;
    const impostor = join(dir.path, 'impostor');
    await writeFile(impostor, randomBytes(1 << 20));
    const stored = (await pushWal(store, impostor, next)).path;
    const before = readFileSync(join(repoDir, stored));

    await switchSegments(pg, 1);
    await until('3 failed attempts', async () => ((await archiver(pg))['failed_count'] as number) >= 3);
    const st = await archiver(pg);
    assert.equal(st['last_failed_wal'], next);
    assert.ok(readFileSync(join(repoDir, stored)).equals(before), 'the stored file is unchanged');
    assert.ok(existsSync(join(pg.dataDir, 'pg_wal', next)), 'the segment stays in pg_wal');
    assert.ok(existsSync(join(pg.dataDir, 'pg_wal', 'archive_status', `${next}.ready`)));
    assert.match(serverLog(dir.path), new RegExp(`WAL_DIFFERENT_CONTENT: WAL file ${next} is already archived as`));

    // The operator removes the wrong file: PostgreSQL's next attempt archives its own segment.
    await store.repo.delete(stored);
    const closed = await switchSegments(pg, 1);
    await until('catch-up', async () => (await archiver(pg))['last_archived_wal'] === closed[0]);
    await assertNoGap(store, closed[0] as string);
  });

  it('a full repository fails archiving cleanly and catches up with no gap once space is freed', async () => {
    await using dir = await tempDir('walarch');
    const mnt = join(dir.path, 'tmpfs');
    await mkdir(mnt);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0755', 'tmpfs', mnt]);
    try {
      const repoDir = await postgresDir(join(mnt, 'repo'));
      const store = await openStore(repoDir);
      await using pg = await startArchiving(dir.path, repoDir);
      const first = await switchSegments(pg, 1);
      await until('first segment', async () => (await archiver(pg))['last_archived_wal'] === first[0]);
      // Leave ~1 MB free, then write WAL that does not compress into it (random hex text).
      const { stdout } = await run('df', ['-B1', '--output=avail', mnt]);
      const avail = Number(stdout.trim().split('\n')[1]);
      await writeFile(join(mnt, 'filler'), Buffer.alloc(Math.max(0, avail - (1 << 20))));
      await pg.sql('CREATE TABLE r (v text)');
      await pg.sql(
        "INSERT INTO r SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200) , generate_series(1, 1000) g GROUP BY g",
      );
      const [row] = await pg.sql('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f, pg_switch_wal()');
      const full = row?.['f'] as string;
      await until('3 failed attempts', async () => ((await archiver(pg))['failed_count'] as number) >= 3, 60_000);
      assert.match(serverLog(dir.path), /REPO_NO_SPACE: repository is full/);
      assert.deepEqual(tempFiles(repoDir), [], 'no temporary file left in the repository');
      const stuck = (await archiver(pg))['last_failed_wal'] as string;
      assert.ok(existsSync(join(pg.dataDir, 'pg_wal', stuck)), `${stuck} stays in pg_wal`);
      assert.equal(
        (await listWal(store)).some((w) => w.name === stuck),
        false,
        'nothing stored under the failed name',
      );

      await run('rm', ['-f', join(mnt, 'filler')]);
      const closed = await switchSegments(pg, 2);
      const last = closed[closed.length - 1] as string;
      await until('catch-up', async () => (await archiver(pg))['last_archived_wal'] === last, 60_000);
      const segs = await assertNoGap(store, last);
      assert.ok(segs.includes(full), `${full} archived after the space came back`);
    } finally {
      await run('umount', ['-l', mnt]).catch(() => undefined);
    }
  });

  it('archive-get exits 1 for a missing file, quickly, through both entry points', async () => {
    await using dir = await tempDir('walarch');
    const repoDir = join(dir.path, 'repo');
    await openStore(repoDir);
    for (const entry of [WAL_MAIN, MAIN]) {
      const t0 = Date.now();
      const res = await run(process.execPath, [
        entry,
        'archive-get',
        '--repo',
        repoDir,
        '000000010000000000000009',
        join(dir.path, 'x'),
      ]).then(
        () => 0,
        (err: { code: number }) => err.code,
      );
      assert.equal(res, 1, entry);
      assert.ok(Date.now() - t0 < 5000, `${entry} took ${Date.now() - t0} ms`);
      assert.equal(existsSync(join(dir.path, 'x')), false);
    }
  });
});
