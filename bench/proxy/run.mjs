#!/usr/bin/env node
// pgbench through pgkeel proxy, through pgBouncer (Debian package, transaction mode) and direct, in one run.
// Rounds alternate the target order; prints medians, ratios and proxy CPU seconds per 1,000 transactions.
//
//   flock /tmp/pgkeel-heavy.lock node bench/proxy/run.mjs        (bench/proxy/run.sh does exactly this)
//   env: BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_ONLY=scenario,scenario, BENCH_IDLE (10000 idle clients for the
//        RSS-per-client measurement, 0 = skip; needs `ulimit -n` above it), BENCH_WORKERS=N (also run pgkeel with
//        `--workers N` as a fourth target; its CPU is the supervisor's plus the workers')
//
// Latency percentiles come from pgbench --log (every transaction's time); p99 is the median over rounds.
//
// Needs a build (dist/), pgbench, /usr/sbin/pgbouncer and /usr/lib/postgresql/15/bin. Everything it starts is
// stopped by PID in `finally`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../../dist/test/helpers/postgres.js';
import { freePort } from '../../dist/src/lib/net.js';
import { postgresIdentity, run, sleep } from '../../dist/src/lib/proc.js';
import { measureIdle } from './idle-clients.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const POOL = 20;
const IDLE = Number(process.env.BENCH_IDLE ?? 10000);
const MAX_CLIENTS = Math.max(2000, IDLE + 100);

const SCENARIOS = [
  { name: 'S-simple-50', args: ['-S', '-M', 'simple', '-c', '50', '-j', '2'] },
  { name: 'S-prepared-50', args: ['-S', '-M', 'prepared', '-c', '50', '-j', '2'] },
  { name: 'S-simple-500', args: ['-S', '-M', 'simple', '-c', '500', '-j', '2'] },
  { name: 'S-connect-C', args: ['-S', '-C', '-c', '20', '-j', '2'] },
  { name: 'tpcb-50', args: ['-c', '50', '-j', '2'] },
].filter((s) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(s.name));

function ownCpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(parts[11]) + Number(parts[12])) / 100; // utime + stime in clock ticks (100 Hz)
}

/** CPU of a process and its live children (proxy workers). */
function cpuSeconds(pid) {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file: count the process alone
  }
  return ownCpuSeconds(pid) + kids.reduce((a, k) => a + ownCpuSeconds(k), 0);
}

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const r = await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port), '-t', '1'], { asPostgres: false });
    if (r.code === 0) return;
    await sleep(50);
  }
  throw new Error(`nothing answers on port ${port}`);
}

/** Percentile of per-transaction latency (ms) from pgbench --log files (3rd column: µs). */
function latencyPercentile(logDir, q) {
  const xs = [];
  for (const f of readdirSync(logDir)) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line) xs.push(us);
    }
  }
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  return xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] / 1000;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

const dir = mkdtempSync(join(tmpdir(), 'pgkeel-bench-'));
chmodSync(dir, 0o755);
const children = [];
let pgsrv;
try {
  pgsrv = await startPostgres(dir, { maxConnections: 600, conf: { shared_buffers: "'128MB'" } });
  const env = { PGHOST: '127.0.0.1', PGUSER: 'postgres', PGDATABASE: 'postgres' };
  const init = await run('pgbench', ['-i', '-s', '10', '-q', '-p', String(pgsrv.port)], { env, asPostgres: false });
  if (init.code !== 0) throw new Error(init.stderr);

  const keelPort = await freePort();
  const keel = spawn(
    process.execPath,
    [
      join(here, 'pgkeel-proxy.mjs'),
      '--listen',
      `127.0.0.1:${keelPort}`,
      '--primary',
      `127.0.0.1:${pgsrv.port}`,
      '--auth',
      'trust',
      '--pool-mode',
      'transaction',
      '--pool-size',
      String(POOL),
      '--max-client-conn',
      String(MAX_CLIENTS),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  children.push(keel);
  const WORKERS = Number(process.env.BENCH_WORKERS ?? 0);
  let keelW = null;
  const keelWPort = WORKERS > 1 ? await freePort() : 0;
  if (WORKERS > 1) {
    keelW = spawn(
      process.execPath,
      [
        join(here, 'pgkeel-proxy.mjs'),
        '--listen',
        `127.0.0.1:${keelWPort}`,
        '--primary',
        `127.0.0.1:${pgsrv.port}`,
        '--auth',
        'trust',
        '--pool-mode',
        'transaction',
        '--pool-size',
        String(POOL),
        '--max-client-conn',
        String(MAX_CLIENTS),
        '--workers',
        String(WORKERS),
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(keelW);
  }

  const bouncerPort = await freePort();
  const id = postgresIdentity();
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `postgres = host=127.0.0.1 port=${pgsrv.port} dbname=postgres`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${bouncerPort}`,
      `unix_socket_dir =`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${POOL}`,
      `max_client_conn = ${MAX_CLIENTS}`,
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      'log_connections = 0',
      'log_disconnections = 0',
    ].join('\n') + '\n',
  );
  if (id) chmodSync(dir, 0o777);
  const bouncer = spawn('/usr/sbin/pgbouncer', [join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    ...(id ? { uid: id.uid, gid: id.gid } : {}),
  });
  children.push(bouncer);
  await waitPort(keelPort);
  if (keelW) await waitPort(keelWPort);
  await waitPort(bouncerPort);
  const { stdout: version } = await run('/usr/sbin/pgbouncer', ['--version'], { asPostgres: false });

  const targets = [
    { name: 'direct', port: pgsrv.port, pid: null },
    { name: 'pgkeel', port: keelPort, pid: keel.pid },
    { name: 'pgbouncer', port: bouncerPort, pid: bouncer.pid },
    ...(keelW ? [{ name: `pgkeel-w${WORKERS}`, port: keelWPort, pid: keelW.pid, noIdle: true }] : []),
  ];
  // Idle clients first, while both poolers are fresh processes (after the runs their heaps hold freed memory).
  const perIdle = {};
  if (IDLE > 0) {
    for (const t of targets.filter((x) => x.pid && !x.noIdle))
      perIdle[t.name] = await measureIdle({ port: t.port, pid: t.pid, n: IDLE });
  }
  const results = {}; // scenario → target → [{tps, p99, cpuPer1000}]
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const sc of SCENARIOS) {
      for (const t of order) {
        const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
        const logDir = mkdtempSync(join(dir, 'log-'));
        const r = await run(
          'pgbench',
          [
            ...sc.args,
            '-T',
            String(SECONDS),
            '-n',
            '-p',
            String(t.port),
            '--log',
            `--log-prefix=${join(logDir, 'tx')}`,
          ],
          { env, asPostgres: false, timeoutMs: (SECONDS + 120) * 1000 },
        );
        const cpu = t.pid ? cpuSeconds(t.pid) - cpu0 : 0;
        const p99 = latencyPercentile(logDir, 0.99);
        rmSync(logDir, { recursive: true, force: true });
        const tps = Number(/tps = ([\d.]+) \((?:without|including)/.exec(r.stdout)?.[1] ?? NaN);
        const xacts = Number(/actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
        const failed = r.code !== 0 || /aborted|error/i.test(r.stderr);
        ((results[sc.name] ??= {})[t.name] ??= []).push({
          tps: failed ? NaN : tps,
          p99: failed ? NaN : p99,
          cpuPer1000: xacts > 0 ? (cpu / xacts) * 1000 : NaN,
          err: failed ? r.stderr.split('\n').find((l) => /error/i.test(l)) : undefined,
        });
        process.stderr.write(
          `round ${round + 1} ${sc.name.padEnd(14)} ${t.name.padEnd(9)} tps=${Number.isNaN(tps) || failed ? 'FAILED' : tps.toFixed(0)} p99=${p99.toFixed(2)}ms${t.pid ? ` cpu=${cpu.toFixed(2)}s` : ''}\n`,
        );
      }
    }
  }
  const idleRss = { pgkeel: rssKb(keel.pid), pgbouncer: rssKb(bouncer.pid) };

  const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  console.log(
    `\npgbench ${SECONDS}s x ${ROUNDS} rounds, pool ${POOL}, transaction mode; ${version.trim().split('\n')[0]}; medians`,
  );
  console.log(
    'scenario        direct_tps  pgkeel_tps  pgbouncer_tps  keel/bouncer  keel/direct  keel_cpu_s/1k  bouncer_cpu_s/1k  p99_ms direct/keel/bouncer',
  );
  for (const sc of SCENARIOS) {
    const m = (t, k) => median((results[sc.name][t] ?? []).map((x) => x[k]).filter(Number.isFinite));
    const [d, k, b] = ['direct', 'pgkeel', 'pgbouncer'].map((t) => m(t, 'tps'));
    const errs = ['pgkeel', 'pgbouncer'].flatMap((t) =>
      (results[sc.name][t] ?? []).filter((x) => x.err).map((x) => `${t}: ${x.err}`),
    );
    console.log(
      `${sc.name.padEnd(15)} ${fmt(d).padStart(10)}  ${fmt(k).padStart(10)}  ${fmt(b).padStart(13)}  ${fmt(k / b, 2).padStart(12)}  ${fmt(k / d, 2).padStart(11)}  ${fmt(m('pgkeel', 'cpuPer1000'), 3).padStart(13)}  ${fmt(m('pgbouncer', 'cpuPer1000'), 3).padStart(16)}  ${['direct', 'pgkeel', 'pgbouncer'].map((t) => fmt(m(t, 'p99'), 2)).join(' / ')}`,
    );
    if (errs.length) console.log(`   ${errs[0]}`);
    if (keelW) {
      const w = `pgkeel-w${WORKERS}`;
      const wt = m(w, 'tps');
      console.log(
        `   pgkeel --workers ${WORKERS}: tps ${fmt(wt)} (${fmt(wt / b, 2)}x pgbouncer, ${fmt(wt / k, 2)}x one worker), cpu_s/1k ${fmt(m(w, 'cpuPer1000'), 3)}, p99 ${fmt(m(w, 'p99'), 2)} ms`,
      );
    }
  }
  console.log(`RSS after the runs: pgkeel ${idleRss.pgkeel} kB, pgbouncer ${idleRss.pgbouncer} kB`);
  for (const [name, r] of Object.entries(perIdle)) {
    console.log(
      `${name}: ${r.opened} idle clients: RSS ${r.rss0} -> ${r.rssN} kB = ${r.perClient.toFixed(2)} KiB per idle client (marginal N/2..N ${r.marginal.toFixed(2)} KiB)`,
    );
  }
} finally {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await pgsrv?.stop();
  rmSync(dir, { recursive: true, force: true });
}
