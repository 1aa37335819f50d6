/**
 * Restore and point-in-time recovery against a real PostgreSQL 15: rows are committed one per second with the
 * moments between them noted (a time, an LSN, a restore point, an xid); each restore to one of them must show
 * exactly the rows committed before it.
 *
 * Scaffolding until the backup and archive commands are merged: the base backup is `pg_basebackup -D - -Ft -X none
 * --no-manifest --compress=server-lz4` stored with BackupStore under backups/<id>/ with a hand-made record; WAL is
 * archived by `cp` into a plain directory and copied into the repository layout (wal/<16 hex>/<segment>.lz4,
 * wal/history/…); restore_command is a tiny script reading the repository through BackupStore.
 */
import assert from 'node:assert/strict';
import {
  appendFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type BackupRecord, readRecord, writeRecord } from '../../src/backup/catalog.js';
import { isBackupError } from '../../src/backup/errors.js';
import { PosixRepo } from '../../src/backup/posix-repo.js';
import { type RecoveryAction, type RecoveryTarget, recoveryOf } from '../../src/backup/recovery.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { clusterState, DEFAULT_BIN_DIR, type StartedRestore, startRestored } from '../../src/backup/restore-start.js';
import { BackupStore } from '../../src/backup/store.js';
import { runRestoreCommand } from '../../src/cli/restore-cmd.js';
import { freePort } from '../../src/lib/net.js';
import { ensureDirFor, pidAlive, postgresIdentity, run, sleep } from '../../src/lib/proc.js';
import { type RunningPostgres, startPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { eventually } from '../helpers/wait.js';

const BACKUP_ID = '20261203-050000F';
const BASEBACKUP_FLAGS = ['-X', 'none', '--no-manifest', '--compress=server-lz4', '-c', 'fast'];

/** The stand-in archive-get: `node archive-get.mjs REPO %f %p`, exit 1 when the repository lacks the file. */
function writeArchiveGet(path: string): void {
  const lib = (f: string) => fileURLToPath(new URL(`../../src/backup/${f}`, import.meta.url));
  writeFileSync(
    path,
    `import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { BackupStore } from ${JSON.stringify(lib('store.js'))};
import { PosixRepo } from ${JSON.stringify(lib('posix-repo.js'))};
const [repo, f, p] = process.argv.slice(2);
const store = await BackupStore.open(new PosixRepo(repo));
const stored = await store.find(f.endsWith('.history') ? 'wal/history/' + f : 'wal/' + f.slice(0, 16) + '/' + f);
if (!stored) process.exit(1);
await pipeline(await store.get(stored), createWriteStream(p));
`,
    { mode: 0o755 },
  );
}

/** Copies the plain archive directory into the repository layout. */
async function syncWal(store: BackupStore, archDir: string): Promise<void> {
  for (const f of readdirSync(archDir).sort()) {
    const logical = f.endsWith('.history') ? `wal/history/${f}` : `wal/${f.slice(0, 16)}/${f}`;
    if (await store.find(logical)) continue;
    await store.put(logical, createReadStream(join(archDir, f)), 'lz4');
  }
}

/**
 * A full backup into backups/<id>/ with an ok record: pg_basebackup writes base.tar.lz4 and one <oid>.tar.lz4 per
 * extra tablespace (as PostgreSQL compressed them) into `tmp`, and each is stored as it is.
 */
async function takeBackup(store: BackupStore, src: RunningPostgres, id: string, tmp: string): Promise<void> {
  const [before] = await src.sql(`SELECT pg_current_wal_lsn()::text AS lsn, now()::text AS t,
    (SELECT system_identifier::text FROM pg_control_system()) AS sysid`);
  const r = await run(
    join(DEFAULT_BIN_DIR, 'pg_basebackup'),
    ['-h', src.host, '-p', String(src.port), '-U', 'postgres', '-D', tmp, '-Ft', ...BASEBACKUP_FLAGS],
    { asPostgres: false, timeoutMs: 120_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const files: BackupRecord['files'] = [];
  for (const f of readdirSync(tmp).sort()) {
    const put = await store.put(`backups/${id}/${f.replace(/\.lz4$/, '')}`, createReadStream(join(tmp, f)), 'lz4', {
      precompressed: true,
    });
    files.push({ name: f, size: put.bytes, sha256: '' });
  }
  const [afterRow] = await src.sql(`SELECT pg_current_wal_lsn()::text AS lsn, now()::text AS t`);
  await writeRecord(store, {
    id,
    type: 'full',
    parent: null,
    member: 'node1',
    timeline: 1,
    start_lsn: before?.['lsn'] as string,
    stop_lsn: afterRow?.['lsn'] as string,
    start_time: new Date(before?.['t'] as string).toISOString(),
    stop_time: new Date(afterRow?.['t'] as string).toISOString(),
    bytes: 0,
    repo_bytes: files.reduce((n, f) => n + f.size, 0),
    duration_s: 1,
    status: 'ok',
    system_identifier: before?.['sysid'] as string,
    pg_version: 15,
    compression: 'lz4',
    wal_start: null,
    wal_stop: null,
    files,
  });
}

/** Switches to a new segment and copies the archive, once that segment is in it, into the repository. */
async function archiveAll(src: RunningPostgres, store: BackupStore, archDir: string): Promise<void> {
  const last = (await src.sql('SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]?.['f'] as string;
  await eventually('the last segment archived', () => readdirSync(archDir).includes(last), 30_000);
  await syncWal(store, archDir);
}

describe('restore and point-in-time recovery (PostgreSQL 15)', { timeout: 300_000 }, () => {
  let dir: { path: string } & AsyncDisposable;
  let src: RunningPostgres;
  let store: BackupStore;
  let repoDir: string;
  let restoreCommand: string;
  const marks: { time: string; lsn: string; name: string; xid: string } = { time: '', lsn: '', name: '', xid: '' };
  const started: number[] = [];
  let n = 0;

  before(async () => {
    dir = await tempDir('restore');
    const archDir = join(dir.path, 'archive');
    ensureDirFor(archDir, 0o700);
    src = await startPostgres(dir.path, {
      conf: {
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: `'cp %p ${archDir}/%f'`,
        max_wal_senders: 4,
      },
    });
    appendFileSync(join(src.dataDir, 'pg_hba.conf'), 'host replication all 127.0.0.1/32 trust\n');
    await src.sql('SELECT pg_reload_conf()');
    repoDir = join(dir.path, 'repo');
    store = await BackupStore.open(new PosixRepo(repoDir, { owner: postgresIdentity() }), { create: true });
    const script = join(dir.path, 'archive-get.mjs');
    writeArchiveGet(script);
    restoreCommand = `${process.execPath} ${script} ${repoDir} %f %p`;

    await src.sql('CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    await src.sql('INSERT INTO t (id) VALUES (0)');
    await takeBackup(store, src, BACKUP_ID, join(dir.path, 'bb1'));
    await src.sql('INSERT INTO t (id) VALUES (1)');
    await sleep(1100);
    marks.time = (await src.sql('SELECT clock_timestamp()::text AS t'))[0]?.['t'] as string;
    await sleep(1100);
    await src.sql('INSERT INTO t (id) VALUES (2)');
    await sleep(200);
    marks.lsn = (await src.sql('SELECT pg_current_wal_insert_lsn()::text AS l'))[0]?.['l'] as string;
    await src.sql('INSERT INTO t (id) VALUES (3)');
    marks.name = 'before_four';
    await src.sql(`SELECT pg_create_restore_point('${marks.name}')`);
    marks.xid = (await src.sql('INSERT INTO t (id) VALUES (4) RETURNING pg_current_xact_id()::text AS x'))[0]?.[
      'x'
    ] as string;
    await src.sql('INSERT INTO t (id) VALUES (5)');
    await archiveAll(src, store, archDir);
  });

  after(async () => {
    for (const pid of started)
      if (pidAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 100 && pidAlive(pid); i++) await sleep(20);
      }
    await src?.stop();
    await dir?.[Symbol.asyncDispose]();
  });

  /** Restores into a fresh directory and starts it; returns the rows' ids and how it ended. */
  async function pitr(target: RecoveryTarget, action: RecoveryAction = 'promote') {
    const dataDir = join(dir.path, `restored-${++n}`);
    const recovery = recoveryOf(target, action);
    const progress: number[] = [];
    const res = await restoreBackup({
      store,
      dataDir,
      recovery,
      restoreCommand,
      onProgress: (p) => progress.push(p.files),
    });
    assert.equal(res.backup.id, BACKUP_ID);
    assert.ok(res.files > 900 && res.bytes > 20_000_000, `extracted ${res.files} files, ${res.bytes} bytes`);
    assert.equal(progress.at(-1), res.files);
    const st = statSync(dataDir);
    assert.equal(st.mode & 0o777, 0o700);
    const id = postgresIdentity();
    if (id) assert.equal(st.uid, id.uid);
    assert.ok(readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8').includes('restore_command'));
    const socketDir = join(dir.path, `sock-${n}`);
    const logFile = join(dir.path, `restored-${n}.log`);
    const port = await freePort('127.0.0.1');
    const s: StartedRestore = await startRestored({
      dataDir,
      port,
      socketDir,
      logFile,
      recovery,
      pollMs: 200,
    });
    started.push(s.pid);
    if (s.state === 'shutdown') return { s, ids: [] as number[], dataDir, socketDir, port, logFile };
    const c = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      const ids = (await c.query('SELECT id FROM t ORDER BY id')).rows.map((r: { id: number }) => r.id);
      const paused =
        s.state === 'paused' ? (await c.query('SELECT pg_get_wal_replay_pause_state() AS p')).rows[0] : null;
      return { s, ids, dataDir, paused, socketDir, port, logFile };
    } finally {
      await c.end();
    }
  }

  test('to a time: the rows committed before it, none after', async () => {
    const r = await pitr({ kind: 'time', time: marks.time });
    assert.equal(r.s.state, 'promoted');
    assert.deepEqual(r.ids, [0, 1]);
  });

  test('to an LSN', async () => {
    const r = await pitr({ kind: 'lsn', lsn: marks.lsn });
    assert.deepEqual(r.ids, [0, 1, 2]);
  });

  test('to a restore point, pausing there', async () => {
    const r = await pitr({ kind: 'name', name: marks.name }, 'pause');
    assert.equal(r.s.state, 'paused');
    assert.deepEqual(r.paused, { p: 'paused' });
    assert.deepEqual(r.ids, [0, 1, 2, 3]);
    // Resumed as the failure message says (pg_ctl start): still isolated on its port and socket, paused again.
    const ctl = (...a: string[]) =>
      run(join(DEFAULT_BIN_DIR, 'pg_ctl'), ['-D', r.dataDir, ...a], { timeoutMs: 60_000 });
    assert.equal((await ctl('-m', 'fast', '-w', 'stop')).code, 0);
    const again = await ctl('-l', r.logFile, '-w', 'start');
    assert.equal(again.code, 0, again.stderr);
    started.push(Number(readFileSync(join(r.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]));
    const c = new pg.Client({ host: r.socketDir, port: r.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      let paused = '';
      for (let i = 0; i < 150 && paused !== 'paused'; i++) {
        paused = (await c.query('SELECT pg_get_wal_replay_pause_state() AS p')).rows[0].p as string;
        if (paused !== 'paused') await sleep(200);
      }
      assert.equal(paused, 'paused');
      assert.equal((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 4);
      assert.deepEqual((await c.query('SHOW archive_mode')).rows, [{ archive_mode: 'off' }]);
    } finally {
      await c.end();
    }
  });

  test('to an xid (inclusive), then latest', async () => {
    assert.deepEqual((await pitr({ kind: 'xid', xid: marks.xid })).ids, [0, 1, 2, 3, 4]);
    assert.deepEqual((await pitr({ kind: 'latest' })).ids, [0, 1, 2, 3, 4, 5]);
  });

  test('immediate with shutdown: the server stops by itself at the end of the backup', async () => {
    const r = await pitr({ kind: 'immediate' }, 'shutdown');
    assert.equal(r.s.state, 'shutdown');
    assert.equal(await clusterState(DEFAULT_BIN_DIR, r.dataDir), 'shut down in recovery');
  });

  test('a target after the end of the archived WAL: RESTORE_FAILED naming the log, the directory kept', async () => {
    const dataDir = join(dir.path, 'unreachable');
    const recovery = recoveryOf({ kind: 'time', time: '2099-01-01 00:00:00+00' });
    await restoreBackup({ store, dataDir, recovery, restoreCommand });
    const logFile = join(dir.path, 'unreachable.log');
    const port = await freePort('127.0.0.1');
    await assert.rejects(
      startRestored({ dataDir, port, socketDir: join(dir.path, 'sock-u'), logFile, recovery, pollMs: 200 }),
      (e: unknown) =>
        isBackupError(e, 'RESTORE_FAILED') &&
        e.message.includes(logFile) &&
        e.message.includes('resume recovery') &&
        /recovery ended before configured recovery target was reached/.test(e.message),
    );
    assert.ok(readdirSync(dataDir).includes('recovery.signal'));
  });

  test('watching as a role that does not exist fails at once, naming it, and stops the server', async () => {
    const dataDir = join(dir.path, 'no-role');
    const recovery = recoveryOf({ kind: 'immediate' });
    await restoreBackup({ store, dataDir, recovery, restoreCommand });
    const port = await freePort('127.0.0.1');
    const opts = { dataDir, port, socketDir: join(dir.path, 'sock-nr'), logFile: join(dir.path, 'nr.log'), recovery };
    await assert.rejects(
      startRestored({ ...opts, user: 'nobody_here', pollMs: 200 }),
      (e: unknown) =>
        isBackupError(e, 'RESTORE_FAILED') &&
        /role "nobody_here"/.test(e.message) &&
        /server was stopped/.test(e.message),
    );
    await eventually('the server stopped', () => !existsSync(join(dataDir, 'postmaster.pid')), 30_000);
  });

  test('a tablespace: refused where the original still is, restored where asked (tablespace_map rewritten)', async () => {
    const tsOld = join(dir.path, 'ts-old');
    ensureDirFor(tsOld, 0o700);
    await src.sql(`CREATE TABLESPACE ts1 LOCATION '${tsOld}'`);
    await src.sql('CREATE TABLE u (id int) TABLESPACE ts1; INSERT INTO u VALUES (42)');
    const oid = String((await src.sql(`SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'`))[0]?.['oid']);
    const id = '20261203-051000F';
    await takeBackup(store, src, id, join(dir.path, 'bb2'));
    await archiveAll(src, store, join(dir.path, 'archive'));
    const recovery = recoveryOf({ kind: 'immediate' });
    await assert.rejects(
      restoreBackup({ store, dataDir: join(dir.path, 'ts-refused'), backupId: id, recovery, restoreCommand }),
      (e: unknown) =>
        isBackupError(e, 'RESTORE_TARGET_NOT_EMPTY') && e.message.includes(`tablespace ${oid} ${tsOld} is not empty`),
    );
    assert.equal(existsSync(join(dir.path, 'ts-refused')), false, 'refused before anything was written');
    const dataDir = join(dir.path, 'ts-restored');
    const tsNew = join(dir.path, 'ts-new');
    const res = await restoreBackup({
      store,
      dataDir,
      backupId: id,
      recovery,
      restoreCommand,
      tablespaces: { [oid]: tsNew },
    });
    assert.deepEqual(res.tablespaces, [{ oid, path: tsNew }]);
    assert.equal(readFileSync(join(dataDir, 'tablespace_map'), 'utf8'), `${oid} ${tsNew}\n`);
    const socketDir = join(dir.path, 'sock-ts');
    const port = await freePort('127.0.0.1');
    const s = await startRestored({
      dataDir,
      port,
      socketDir,
      logFile: join(dir.path, 'ts.log'),
      recovery,
      pollMs: 200,
    });
    started.push(s.pid);
    const c = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT id FROM u')).rows, [{ id: 42 }]);
      const loc = await c.query(`SELECT pg_tablespace_location(oid) AS l FROM pg_tablespace WHERE spcname = 'ts1'`);
      assert.deepEqual(loc.rows, [{ l: tsNew }]);
    } finally {
      await c.end();
    }
  });

  test('a truncated base archive fails the restore by name (RESTORE_FAILED), the repository untouched', async () => {
    const good = await readRecord(store, BACKUP_ID);
    const id = '20261203-045900F';
    const stored = readFileSync(join(repoDir, `backups/${BACKUP_ID}/base.tar.lz4`));
    await store.put(`backups/${id}/base.tar`, [stored.subarray(0, stored.length >> 1)], 'lz4', { precompressed: true });
    await writeRecord(store, {
      ...good,
      id,
      start_time: '2026-12-03T04:59:00.000Z',
      stop_time: '2026-12-03T04:59:01.000Z',
    });
    const listing = async () => JSON.stringify(await store.repo.list(''));
    const before = await listing();
    await assert.rejects(
      restoreBackup({
        store,
        dataDir: join(dir.path, 'truncated'),
        backupId: id,
        recovery: recoveryOf({ kind: 'immediate' }),
        restoreCommand,
      }),
      (e: unknown) =>
        isBackupError(e, 'RESTORE_FAILED') && e.message.includes(`backups/${id}/base.tar.lz4`) && /lz4/.test(e.message),
    );
    assert.equal(await listing(), before);
  });

  test('a non-empty target is refused and left untouched, by the API and the CLI', async () => {
    const target = join(dir.path, 'not-empty');
    mkdirSync(target);
    writeFileSync(join(target, 'keep.txt'), 'precious');
    await assert.rejects(
      restoreBackup({ store, dataDir: target, recovery: recoveryOf({ kind: 'latest' }), restoreCommand }),
      (e: unknown) => isBackupError(e, 'RESTORE_TARGET_NOT_EMPTY'),
    );
    const code = await runRestoreCommand(['--to', target, '--repo', repoDir, '--target-time', marks.time]);
    assert.equal(code, 1);
    assert.deepEqual(readdirSync(target), ['keep.txt']);
    assert.equal(readFileSync(join(target, 'keep.txt'), 'utf8'), 'precious');
  });
});
