#!/usr/bin/env node
// Backup benchmark (issue 11): pgkeel beside pg_basebackup and pgBackRest on one `pgkeel up` cluster, same data, same
// run. Rounds alternate the order of the systems; prints medians, bytes stored and ratios. Not a test: no timing is
// asserted, nothing fails on a figure.
//
//   npm run build && flock /tmp/pgkeel-heavy.lock node bench/backup/run.mjs      (bench/backup/run.sh does this)
//   options: --scale N (pgbench scale, 130 ≈ 2 GB) --text-mb N (compressible text table, 300) --rounds N (3)
//            --pitr N (PITR trials, 3) --port-base P (27400) --wal-drain auto|skip (auto: run wal-drain.mjs when it
//            is here) --out FILE (default bench/backup/results-<date>.json; "none" to skip)
//
// Needs a build (dist/), PostgreSQL 15 (Debian paths), pgbench, lz4, zstd and pgBackRest (`apt-get install -y
// pgbackrest`, for the bench only). Runs as root (PostgreSQL programs as `postgres`). Everything started is stopped by
// PID (`pgkeel down`, postmaster.pid of restored servers) and the temp directory removed, also on Ctrl-C.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { paths, readLocalCluster } from '../../dist/src/local/layout.js';
import { chownForPostgres, pidAlive, sleep } from '../../dist/src/lib/proc.js';
import { clusterDown, dropWorkDir, log, onInterrupt, PGKEEL, sh, workDir } from '../lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    scale: { type: 'string', default: '130' },
    'text-mb': { type: 'string', default: '300' },
    rounds: { type: 'string', default: '3' },
    pitr: { type: 'string', default: '3' },
    'port-base': { type: 'string', default: '27400' },
    'wal-drain': { type: 'string', default: 'auto' },
    out: { type: 'string' },
  },
});
const SCALE = Number(opt.scale);
const TEXT_MB = Number(opt['text-mb']);
const ROUNDS = Number(opt.rounds);
const PITR = Number(opt.pitr);
const PORT_BASE = Number(opt['port-base']);
const BIN = '/usr/lib/postgresql/15/bin';

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length === 0 ? Number.NaN : v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

function duBytes(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((s, f) => s + duBytes(join(path, f)), 0);
}

/** A directory the postgres user owns (0700), as PostgreSQL and the restore tools want it. */
function pgDir(path) {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
  chownForPostgres(path);
  return path;
}

// ---------------------------------------------------------------------------------------------------------------
const work = workDir('pgkeel-bench-backup-');
const cdir = join(work, 'cluster');
let clusterUp = false;
const restoredServers = new Set(); // data directories of servers `pgkeel restore --start` left running

async function cleanup() {
  for (const d of restoredServers) await stopServer(d).catch((e) => log(`stop ${d}: ${e.message}`));
  if (clusterUp) {
    clusterUp = false;
    await clusterDown(cdir);
  }
  dropWorkDir(work);
}
onInterrupt(cleanup);

/** Stops a server by the PID in its postmaster.pid (fast shutdown), waiting for it to exit. */
async function stopServer(dataDir) {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return restoredServers.delete(dataDir);
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (pidAlive(pid)) process.kill(pid, 'SIGINT');
  for (let i = 0; i < 600 && pidAlive(pid); i++) await sleep(100);
  restoredServers.delete(dataDir);
}

let lc;
let leader;
const pgpass = () => paths.pgpass(cdir);
async function psql(port, sql) {
  const r = await sh(
    `${BIN}/psql`,
    [
      '-X',
      '-qAt',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      lc.superuser.username,
      '-d',
      'postgres',
      '-c',
      sql,
    ],
    { env: { PGPASSFILE: pgpass() } },
  );
  return r.out.trim();
}
const q = (sql) => psql(leader.pgPort, sql);

async function findLeader() {
  for (let i = 0; i < 300; i++) {
    for (const n of lc.nodes) {
      const r = await psql(n.pgPort, 'SELECT pg_is_in_recovery()').catch(() => '');
      if (r === 'f') return n;
    }
    await sleep(200);
  }
  throw new Error('no leader');
}

/** Closes the leader's WAL segment and waits until every member has archived it (archive_mode always). */
async function waitArchived() {
  const seg = await q('SELECT pg_walfile_name(pg_switch_wal())');
  const t0 = performance.now();
  for (const n of lc.nodes) {
    for (;;) {
      const last = await psql(n.pgPort, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
      if (last.slice(0, 24) >= seg) break;
      if (performance.now() - t0 > 900_000) throw new Error(`${n.name} has not archived ${seg} after 15 min`);
      await sleep(500);
    }
  }
  return (performance.now() - t0) / 1000;
}

async function load() {
  const env = { PGPASSFILE: pgpass() };
  const conn = ['-h', '127.0.0.1', '-p', String(leader.pgPort), '-U', lc.superuser.username, 'postgres'];
  const r = await sh(`${BIN}/pgbench`, ['-i', '-q', '-I', 'dtGvp', '-s', String(SCALE), ...conn], { env });
  log(`pgbench -i -s ${SCALE} (server-side generate): ${r.secs.toFixed(0)} s`);
  // Compressible text, like logs or JSON documents: ~300 bytes a row, repeated words plus a few varying fields.
  await q('DROP TABLE IF EXISTS docs; CREATE TABLE docs (id bigint PRIMARY KEY, body text)');
  const rows = Math.round((TEXT_MB * 1e6) / 360);
  const t0 = performance.now();
  for (let done = 0; done < rows; done += 250_000) {
    const n = Math.min(250_000, rows - done);
    await q(`INSERT INTO docs SELECT g, 'event ' || g || ' user ' || (g % 9973) || ' status ' || (g % 7) ||
      ' path /api/v1/items/' || (g % 1000) || ' ' || repeat('lorem ipsum dolor sit amet ', 7) || md5(g::text)
      FROM generate_series(${done + 1}, ${done + n}) g`);
  }
  log(`docs: ${rows} rows in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  await q('VACUUM ANALYZE');
  await q('CHECKPOINT');
}

// --- the systems -------------------------------------------------------------------------------------------------
let pgbr; // { conf, stanza }

async function setupPgBackRest() {
  const base = pgDir(join(work, 'pgbackrest'));
  const conf = join(base, 'pgbackrest.conf');
  const socketDir = readFileSync(join(cdir, leader.name, 'data', 'postmaster.pid'), 'utf8').split('\n')[4];
  writeFileSync(
    conf,
    [
      '[global]',
      `repo1-path=${pgDir(join(base, 'repo'))}`,
      'repo1-retention-full=99',
      'compress-type=lz4',
      'process-max=2',
      'start-fast=y',
      // The cluster's archive_command is pgkeel's; pgBackRest would wait for the backup's WAL in its own archive.
      'archive-check=n',
      `log-path=${pgDir(join(base, 'log'))}`,
      `lock-path=${pgDir(join(base, 'lock'))}`,
      'log-level-console=warn',
      'log-level-file=off',
      '',
      '[bench]',
      `pg1-path=${join(cdir, leader.name, 'data')}`,
      `pg1-port=${leader.pgPort}`,
      `pg1-socket-path=${socketDir}`,
      `pg1-user=${lc.superuser.username}`,
      '',
    ].join('\n'),
  );
  chownForPostgres(conf);
  // A pgpass the postgres user can read: the superuser (pgBackRest, over the socket) and the replication user
  // (pg_basebackup; the cluster's pg_hba lets only that one make replication connections over TCP).
  const saved = JSON.parse(readFileSync(paths.clusterFile(cdir), 'utf8'));
  const file = join(base, 'pgpass');
  const line = (u) => `*:*:*:${u.username}:${u.password.replace(/[\\:]/g, '\\$&')}`;
  writeFileSync(file, `${line(saved.superuser)}\n${line(saved.replication)}\n`, { mode: 0o600 });
  chownForPostgres(file);
  pgbr = { conf, env: { PGPASSFILE: file }, replUser: saved.replication.username };
  await pgbackrest(['stanza-create']);
}

const pgbackrest = (args) =>
  sh('pgbackrest', [`--config=${pgbr.conf}`, '--stanza=bench', ...args], { asPostgres: true, env: pgbr.env });

async function pgbrNewest() {
  const info = JSON.parse((await pgbackrest(['info', '--output=json'])).out);
  return info[0].backup.at(-1);
}

const SYSTEMS = {
  pgkeel: {
    row: 'pgkeel full (server lz4, streamed)',
    async backup() {
      const r = await sh('node', [PGKEEL, 'backup', '--dir', cdir, '--json']);
      const rec = JSON.parse(r.out);
      return { secs: r.secs, bytes: rec.repo_bytes, id: rec.id, data: rec.bytes };
    },
    async restore(b, to) {
      return sh('node', [PGKEEL, 'restore', '--repo', paths.backupRepo(cdir), '--backup', b.id, '--to', to]);
    },
  },
  'bb-lz4': {
    row: 'pg_basebackup -Ft -X none server-lz4',
    backup: () => basebackup('server-lz4'),
    restore: (b, to) => sh(`lz4 -dc ${b.dir}/base.tar.lz4 | tar -x -C ${to}`, [], { asPostgres: true, shell: true }),
  },
  'bb-zstd': {
    row: 'pg_basebackup -Ft -X none server-zstd',
    backup: () => basebackup('server-zstd'),
    restore: (b, to) => sh(`zstd -dc ${b.dir}/base.tar.zst | tar -x -C ${to}`, [], { asPostgres: true, shell: true }),
  },
  pgbr: {
    row: 'pgBackRest full (lz4, process-max 2)',
    async backup() {
      const r = await pgbackrest(['backup', '--type=full']);
      const b = await pgbrNewest();
      return { secs: r.secs, bytes: b.info.repository.delta, id: b.label, data: b.info.size };
    },
    restore: (b, to) => pgbackrest(['restore', `--set=${b.id}`, `--pg1-path=${to}`]),
  },
};

let bbN = 0;
async function basebackup(compress) {
  const dir = pgDir(join(work, `bb-${++bbN}`));
  const r = await sh(
    `${BIN}/pg_basebackup`,
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(leader.pgPort),
      '-U',
      pgbr.replUser,
      '-D',
      dir,
      '-Ft',
      '-X',
      'none',
      '-c',
      'fast',
      `--compress=${compress}`,
    ],
    { env: pgbr.env, asPostgres: true },
  );
  return { secs: r.secs, bytes: duBytes(dir), id: dir, dir };
}

let restoreN = 0;
/**
 * A restore, timed until its files are on disk: `tar -x` and `pgkeel restore` do not fsync (pgkeel leaves it to
 * PostgreSQL's start), pgBackRest does; so each restore is followed by a timed `sync` (and preceded by an untimed one,
 * so no earlier step's writeback lands in it).
 */
async function timedRestore(sys, b) {
  const to = pgDir(join(work, `restore-${++restoreN}`));
  await sh('sync', []);
  const r = await SYSTEMS[sys].restore(b, to);
  const flushed = await sh('sync', []);
  const bytes = duBytes(to);
  rmSync(to, { recursive: true, force: true });
  return { secs: r.secs + flushed.secs, tool_secs: r.secs, bytes };
}

/** ~1 % of the rows change: a contiguous 1 % of pgbench_accounts and of docs (recent rows, like real hot data). */
async function changeOnePercent(round) {
  const acc = SCALE * 100_000;
  const docs = Math.round((TEXT_MB * 1e6) / 360);
  const a0 = 1 + (((round * acc) / 100) % acc);
  await q(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN ${a0} AND ${a0 + acc / 100 - 1}`);
  await q(`UPDATE docs SET body = body || ' edited' WHERE id > ${docs - Math.round(docs / 100)}`);
  await q('CHECKPOINT');
}

// --- PITR --------------------------------------------------------------------------------------------------------
async function pitrTrial(i) {
  await q('CREATE TABLE IF NOT EXISTS pitr (trial int, batch text, n int, at timestamptz DEFAULT clock_timestamp())');
  await q(`INSERT INTO pitr (trial, batch, n) SELECT ${i}, 'before', g FROM generate_series(1, 1000) g`);
  await sleep(1100);
  const target = new Date().toISOString().replace('Z', '+00:00');
  await sleep(1100);
  await q(`INSERT INTO pitr (trial, batch, n) SELECT ${i}, 'after', g FROM generate_series(1, 1000) g`);
  const to = pgDir(join(work, `pitr-${i}`));
  rmSync(to, { recursive: true }); // restore wants it absent or empty; pgkeel creates it
  const port = PORT_BASE + 40 + i;
  restoredServers.add(to);
  const r = await sh('node', [
    PGKEEL,
    'restore',
    '--dir',
    cdir,
    '--to',
    to,
    '--target-time',
    target,
    '--start',
    '--port',
    String(port),
  ]);
  const got = await psql(
    port,
    `SELECT count(*) FILTER (WHERE batch = 'before')::text || '/' ||
    count(*) FILTER (WHERE batch = 'after') FROM pitr WHERE trial = ${i}`,
  );
  const promoted = (await psql(port, 'SELECT pg_is_in_recovery()')) === 'f';
  const earlier = await psql(port, `SELECT count(*) FROM pitr WHERE trial < ${i}`);
  await stopServer(to);
  rmSync(to, { recursive: true, force: true });
  const exact = got === '1000/0' && promoted && Number(earlier) === 2000 * i;
  return { secs: r.secs, exact, got, promoted };
}

// --- WAL drain (bench/backup/wal-drain.mjs, the WAL archiver's own bench) ----------------------------------------
async function walDrain() {
  const script = join(here, 'wal-drain.mjs');
  if (opt['wal-drain'] === 'skip') return { note: 'skipped (--wal-drain skip)' };
  if (!existsSync(script)) return { note: 'wal-drain.mjs is not on this branch (it comes with the WAL archiver)' };
  const r = await sh('node', [script, '--segments', '100', '--rounds', '3']);
  const num = (re) => Number(r.out.match(re)?.[1] ?? Number.NaN);
  return {
    plain: num(/median plain archive-push:\s+([\d.]+)/),
    async: num(/median async archiver:\s+([\d.]+)/),
    out: r.out,
  };
}

// --- report ------------------------------------------------------------------------------------------------------
const fmtS = (xs) =>
  xs.length ? `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]` : 'n/a';
const mb = (b) => (Number.isFinite(b) ? `${(b / 1e6).toFixed(0)}` : 'n/a');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');

function table(res) {
  const m = (k) => median(res[k].map((x) => x.secs));
  const mbytes = (k) => median(res[k].map((x) => x.bytes));
  const rows = [
    [
      'row',
      'time s median [min–max]',
      'MB stored (restore: on disk)',
      'time / bb-lz4',
      'time / pgBackRest',
      'bytes / bb-lz4',
      'bytes / pgBackRest',
    ],
  ];
  const add = (name, k, refLz4, refPgbr, bytesRatios = true) => {
    if (!res[k]?.length) return;
    rows.push([
      name,
      fmtS(res[k].map((x) => x.secs)),
      mb(mbytes(k)),
      ratio(m(k), m(refLz4)),
      ratio(m(k), m(refPgbr)),
      bytesRatios ? ratio(mbytes(k), mbytes(refLz4)) : '',
      bytesRatios ? ratio(mbytes(k), mbytes(refPgbr)) : '',
    ]);
  };
  for (const k of Object.keys(SYSTEMS)) add(SYSTEMS[k].row, `backup:${k}`, 'backup:bb-lz4', 'backup:pgbr');
  if (res['incr:pgkeel']?.length) add('pgkeel incr after ~1 % changed', 'incr:pgkeel', 'backup:bb-lz4', 'backup:pgbr');
  else rows.push(['pgkeel incr after ~1 % changed', 'not built (backup --type incr refuses)', '', '', '', '', '']);
  add('pgBackRest incr after ~1 % changed', 'incr:pgbr', 'backup:bb-lz4', 'backup:pgbr');
  for (const k of Object.keys(SYSTEMS)) {
    const how = {
      pgkeel: 'pgkeel restore (files, no --start)',
      'bb-lz4': 'lz4 -d | tar -x',
      'bb-zstd': 'zstd -d | tar -x',
      pgbr: 'pgbackrest restore',
    }[k];
    add(`restore: ${how}`, `restore:${k}`, 'restore:bb-lz4', 'restore:pgbr', false);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ')).join('\n');
}

// --- main --------------------------------------------------------------------------------------------------------
const results = {};
const push = (k, v) => (results[k] ??= []).push(v);
const meta = { date: new Date().toISOString(), scale: SCALE, text_mb: TEXT_MB, rounds: ROUNDS };
try {
  log(`work dir ${work}; pgkeel up (3 nodes, port base ${PORT_BASE})`);
  clusterUp = true;
  const up = await sh('node', [PGKEEL, 'up', '--dir', cdir, '--port-base', String(PORT_BASE), '--detach']);
  log(`cluster up in ${up.secs.toFixed(0)} s`);
  lc = readLocalCluster(cdir);
  leader = await findLeader();
  log(`leader ${leader.name} on port ${leader.pgPort}; loading scale ${SCALE} + ${TEXT_MB} MB of text`);
  await load();
  meta.database_bytes = Number(await q('SELECT pg_database_size(current_database())'));
  log(`database ${mb(meta.database_bytes)} MB; waiting until every member has archived the load's WAL`);
  log(`archive caught up in ${(await waitArchived()).toFixed(0)} s`);
  await setupPgBackRest();
  // pgkeel incrementals: this build may refuse them ("not built yet"); then the row says so and no figure is made up.
  try {
    await sh('node', [PGKEEL, 'backup', '--dir', cdir, '--type', 'incr']);
    meta.pgkeel_incr = 'built';
  } catch (e) {
    meta.pgkeel_incr = e.message.replace(/^.* exited \d+: /s, '');
  }
  log(`pgkeel incr: ${meta.pgkeel_incr}`);
  const incrs = {
    pgbr: async () => {
      const r = await pgbackrest(['backup', '--type=incr']);
      return { secs: r.secs, bytes: (await pgbrNewest()).info.repository.delta };
    },
    ...(meta.pgkeel_incr === 'built' && {
      pgkeel: async () => {
        const r = await sh('node', [PGKEEL, 'backup', '--dir', cdir, '--type', 'incr', '--json']);
        return { secs: r.secs, bytes: JSON.parse(r.out).repo_bytes };
      },
    }),
  };
  const order = Object.keys(SYSTEMS);
  for (let round = 0; round < ROUNDS; round++) {
    const seq = round % 2 ? [...order].reverse() : order;
    const made = {};
    for (const k of seq) {
      await q('CHECKPOINT');
      await sh('sync', []);
      made[k] = await SYSTEMS[k].backup();
      push(`backup:${k}`, made[k]);
      log(`round ${round + 1} backup ${k}: ${made[k].secs.toFixed(1)} s, ${mb(made[k].bytes)} MB stored`);
    }
    for (const k of seq) {
      const r = await timedRestore(k, made[k]);
      push(`restore:${k}`, r);
      log(
        `round ${round + 1} restore ${k}: ${r.secs.toFixed(1)} s, ${r.tool_secs.toFixed(1)} s before sync (${mb(r.bytes)} MB on disk)`,
      );
      if (made[k].dir) rmSync(made[k].dir, { recursive: true, force: true });
    }
    await changeOnePercent(round);
    for (const k of round % 2 ? Object.keys(incrs).reverse() : Object.keys(incrs)) {
      await sh('sync', []);
      const r = await incrs[k]();
      push(`incr:${k}`, r);
      log(`round ${round + 1} ${k} incr: ${r.secs.toFixed(1)} s, ${mb(r.bytes)} MB stored`);
    }
  }
  for (let i = 0; i < PITR; i++) {
    const t = await pitrTrial(i);
    push('pitr', t);
    log(
      `PITR trial ${i + 1}: ${t.secs.toFixed(1)} s, before/after rows ${t.got}, promoted ${t.promoted}, exact ${t.exact}`,
    );
  }
  await cleanup();
  const wal = await walDrain();
  if (wal.out) process.stdout.write(wal.out);
  const report = [
    '',
    `data: pgbench scale ${SCALE} + ${TEXT_MB} MB text table = ${mb(meta.database_bytes)} MB database; ${ROUNDS} rounds, alternating order`,
    table(results),
    `incremental / its own full, medians of time and bytes: ${['pgkeel', 'pgbr']
      .map((k) => {
        const inc = results[`incr:${k}`] ?? [];
        if (!inc.length) return `${k} n/a`;
        const full = results[`backup:${k}`] ?? [];
        const of = (f) => ratio(median(inc.map(f)), median(full.map(f)));
        return `${k} ${of((x) => x.secs)} time, ${of((x) => x.bytes)} bytes`;
      })
      .join('; ')}`,
    `restore time before the final sync, medians: ${Object.keys(SYSTEMS)
      .map((k) => `${k} ${median((results[`restore:${k}`] ?? []).map((x) => x.tool_secs)).toFixed(1)} s`)
      .join(', ')}`,
    `PITR end-to-end (pgkeel restore --target-time --start, until promoted): ${fmtS((results.pitr ?? []).map((x) => x.secs))} s, exact ${(results.pitr ?? []).filter((x) => x.exact).length}/${(results.pitr ?? []).length}`,
    wal.note
      ? `WAL backlog drain: ${wal.note}`
      : `WAL backlog drain (wal-drain.mjs, 100 segments): async archiver ${wal.async} segments/s, plain archive-push ${wal.plain} segments/s`,
  ].join('\n');
  console.log(report);
  const out = opt.out ?? join(here, `results-${meta.date.slice(0, 10)}.json`);
  if (out !== 'none')
    writeFileSync(out, `${JSON.stringify({ meta, results, wal: { ...wal, out: undefined }, report }, null, 2)}\n`);
} finally {
  await cleanup();
}
