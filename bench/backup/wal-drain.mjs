#!/usr/bin/env node
// WAL archive drain rate against a real PostgreSQL 15: a backlog of N full 16 MB segments (.ready files piled up while
// archive_command was empty) is drained by
//   (a) plain:  archive_command = `exec node wal-main.js archive-push ... %p` — one Node process per segment;
//   (b) async:  the agent-side WalArchiver pushing 4 at a time ahead of PostgreSQL, and archive_command's shell fast
//               path (`test -f SPOOL/%f.ok && rm -f ...`).
// The clock runs from pg_reload_conf() (archive_command set) until pg_stat_archiver has archived the whole backlog.
// Prints segments/s per mode and round; rounds alternate (a, b, a, b, ...). Not a test.
//
//   npm run build && flock /tmp/pgkeel-heavy.lock node bench/backup/wal-drain.mjs [--segments 100] [--rounds 3]
//     [--compress lz4] [--parallel 4]
import { execFileSync } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PosixRepo } from '../../dist/src/backup/posix-repo.js';
import { BackupStore } from '../../dist/src/backup/store.js';
import { WalArchiver } from '../../dist/src/backup/wal-archiver.js';
import { listWal } from '../../dist/src/backup/wal.js';
import { archiveCommand, restoreCommand } from '../../dist/src/backup/wal-commands.js';
import { chownForPostgres, postgresIdentity, sleep } from '../../dist/src/lib/proc.js';
import { startPostgres } from '../../dist/test/helpers/postgres.js';
import { tempDir } from '../../dist/test/helpers/tmp.js';

const { values: opt } = parseArgs({
  options: {
    segments: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    compress: { type: 'string', default: 'lz4' },
    parallel: { type: 'string', default: '4' },
    data: { type: 'string', default: 'accounts' },
  },
});
const SEGMENTS = Number(opt.segments);
const ROUNDS = Number(opt.rounds);
const SEG = 16 * 1024 * 1024;

const sqlString = (v) => `'${v.replace(/'/g, "''")}'`;

async function setArchiveCommand(pg, cmd) {
  await pg.sql(`ALTER SYSTEM SET archive_command = ${sqlString(cmd)}`);
  await pg.sql('SELECT pg_reload_conf()');
}

async function archivedCount(pg) {
  const [r] = await pg.sql('SELECT archived_count::int AS n, failed_count::int AS f FROM pg_stat_archiver');
  return r;
}

/**
 * Row data for the WAL: `accounts` = pgbench_accounts rows (aid, bid, abalance, filler char(84)), the usual OLTP
 * benchmark table; `md5` = random hex text, a pessimistic case for lz4 (compresses ~1.8x and slowly).
 */
const ROWS = {
  accounts: { bytes: 190, sql: (n) => `INSERT INTO r SELECT g, g % 1000, 0, '' FROM generate_series(1, ${n}) g` },
  md5: {
    bytes: 190,
    sql: (n) =>
      `INSERT INTO m SELECT g, md5(g::text) || md5((g + 1)::text), md5(random()::text) FROM generate_series(1, ${n}) g`,
  },
};

/** Fills `n` segments with row data while archiving is off. */
async function makeBacklog(pg, n) {
  await setArchiveCommand(pg, '');
  const kind = ROWS[opt.data];
  const rows = Math.ceil((n * SEG) / kind.bytes);
  for (let done = 0; done < rows; done += 200_000) await pg.sql(kind.sql(Math.min(200_000, rows - done)));
  await pg.sql('SELECT pg_switch_wal()');
  await sleep(500);
  const status = join(pg.dataDir, 'pg_wal', 'archive_status');
  return (await readdir(status)).filter((f) => f.endsWith('.ready')).length;
}

async function drain(pg, n, cmd) {
  const before = (await archivedCount(pg)).n;
  const t0 = performance.now();
  await setArchiveCommand(pg, cmd);
  for (;;) {
    const c = await archivedCount(pg);
    if (c.n - before >= n) break;
    await sleep(20);
  }
  const secs = (performance.now() - t0) / 1000;
  const { f } = await archivedCount(pg);
  return { secs, rate: n / secs, failed: f };
}

const dir = await tempDir('wal-drain');
let pg;
try {
  const repoDir = join(dir.path, 'repo');
  const spool = join(dir.path, 'spool');
  await mkdir(spool);
  chownForPostgres(spool);
  const repo = new PosixRepo(repoDir, { owner: postgresIdentity() });
  const store = await BackupStore.open(repo, { create: true });
  pg = await startPostgres(dir.path, {
    conf: { wal_level: 'replica', archive_mode: 'on', archive_command: "''", max_wal_size: "'8GB'" },
  });
  await pg.sql('CREATE TABLE r (aid int, bid int, abalance int, filler char(84))');
  await pg.sql('CREATE TABLE m (id int, a text, b text)');
  const plainCmd = archiveCommand({ repo: repoDir, compression: opt.compress });
  const asyncCmd = archiveCommand({ repo: repoDir, compression: opt.compress, spool });
  const results = { plain: [], async: [] };
  console.log(`backlog ~${SEGMENTS} segments of ${opt.data} rows, compression ${opt.compress}, ${ROUNDS} round(s)`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['plain', 'async']) {
      const n = await makeBacklog(pg, SEGMENTS);
      let archiver = null;
      if (mode === 'async') {
        archiver = new WalArchiver({ store, dataDir: pg.dataDir, spoolDir: spool, parallel: Number(opt.parallel) });
        archiver.start();
      }
      const r = await drain(pg, n, mode === 'plain' ? plainCmd : asyncCmd);
      await archiver?.stop();
      results[mode].push(r.rate);
      console.log(
        `round ${round + 1} ${mode.padEnd(5)}: ${n} segments in ${r.secs.toFixed(2)} s = ${r.rate.toFixed(1)} segments/s (failed_count ${r.failed})`,
      );
      await pg.sql('TRUNCATE r, m');
      await pg.sql('CHECKPOINT'); // recycles archived segments so pg_wal does not grow across rounds
    }
  }
  // Restore side: PostgreSQL's startup process runs restore_command once per segment, serially. Replay it (no server:
  // the command is what is measured) over the archived segments, without and with prefetch.
  const names = (await listWal(store)).map((w) => w.name).filter((n) => /^[0-9A-F]{24}$/.test(n));
  const restoreDir = join(dir.path, 'restore');
  await mkdir(join(restoreDir, 'pg_wal'), { recursive: true });
  for (const prefetch of [0, 8]) {
    const rspool = join(dir.path, `rspool${prefetch}`);
    const cmd = restoreCommand({ repo: repoDir, prefetch, spool: prefetch ? rspool : undefined });
    const t0 = performance.now();
    for (const f of names) {
      const line = cmd.replace(/%([pf%])/g, (_m, c) => (c === 'p' ? 'pg_wal/RECOVERYXLOG' : c === 'f' ? f : '%'));
      execFileSync('/bin/sh', ['-c', line], { cwd: restoreDir, stdio: 'inherit' });
    }
    const rate = names.length / ((performance.now() - t0) / 1000);
    console.log(`restore_command, prefetch ${prefetch}: ${names.length} segments at ${rate.toFixed(1)} segments/s`);
  }
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = Math.floor(v.length / 2);
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const { size } = await repo.list('wal').then((fs) => ({ size: fs.reduce((s, f) => s + f.size, 0) }));
  console.log(`median plain archive-push: ${median(results.plain).toFixed(1)} segments/s`);
  console.log(`median async archiver:     ${median(results.async).toFixed(1)} segments/s`);
  console.log(`repository WAL bytes: ${(size / 1e6).toFixed(0)} MB`);
} finally {
  await pg?.stop();
  await dir[Symbol.asyncDispose]();
}
