#!/usr/bin/env node
// Profiling helper for the proxy: one PostgreSQL, pgkeel and pgBouncer side by side, then per target a pgbench run
// (default `-S -M simple -c 50`) with CPU seconds per 1k transactions split into user and sys; optionally strace -c
// for a fixed number of transactions (syscalls per transaction), perf record, pgkeel under --cpu-prof, a second
// pgkeel build for A/B, and RSS per idle client (idle-clients.mjs).
//
//   flock /tmp/pgkeel-heavy.lock node bench/proxy/profile.mjs
//   env: PROF_SECONDS (10; 0 = no pgbench), PROF_ROUNDS (1, alternating order), PROF_TARGETS (pgkeel,pgbouncer),
//        PROF_CLIENTS (50), PROF_PGBENCH (pgbench args, space-separated; default "-S -M simple"),
//        PROF_STRACE (transactions per client under strace -c -f, 0 = off), PROF_CPU (dir for --cpu-prof),
//        PROF_PERF (dir for perf record -g), PROF_NODE_ARGS (extra node flags for pgkeel, e.g. --perf-basic-prof),
//        PROF_ALT_DIST (a second pgkeel from another dist/ tree, for A/B), PROF_IDLE (N idle clients, 0 = off)
//
// Everything it starts is stopped by PID in `finally`.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../../dist/test/helpers/postgres.js';
import { freePort } from '../../dist/src/lib/net.js';
import { postgresIdentity, run, sleep } from '../../dist/src/lib/proc.js';
import { measureIdle } from './idle-clients.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.PROF_SECONDS ?? 10);
const TARGETS = (process.env.PROF_TARGETS ?? 'pgkeel,pgbouncer').split(',');
const STRACE = Number(process.env.PROF_STRACE ?? 0);
const CPU_DIR = process.env.PROF_CPU ?? '';
const CLIENTS = Number(process.env.PROF_CLIENTS ?? 50);
const IDLE = Number(process.env.PROF_IDLE ?? 0);
const EXTRA = (process.env.PROF_PGBENCH ?? '-S -M simple').split(' ').filter(Boolean);
const POOL = 20;
const MAX_CLIENTS = Math.max(2000, IDLE + 100);

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const r = await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port), '-t', '1'], { asPostgres: false });
    if (r.code === 0) return;
    await sleep(50);
  }
  throw new Error(`nothing answers on port ${port}`);
}

function cpuSeconds(pid, which = 'both') {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const u = Number(parts[11]) / 100;
  const s = Number(parts[12]) / 100;
  return which === 'user' ? u : which === 'sys' ? s : u + s;
}

const dir = mkdtempSync(join(tmpdir(), 'pgkeel-prof-'));
chmodSync(dir, 0o755);
const children = [];
let pgsrv;
try {
  pgsrv = await startPostgres(dir, { maxConnections: 200, conf: { shared_buffers: "'128MB'" } });
  const env = { PGHOST: '127.0.0.1', PGUSER: 'postgres', PGDATABASE: 'postgres' };
  const init = await run('pgbench', ['-i', '-s', '10', '-q', '-p', String(pgsrv.port)], { env, asPostgres: false });
  if (init.code !== 0) throw new Error(init.stderr);

  const targets = {};
  if (TARGETS.includes('pgkeel')) {
    const port = await freePort();
    const nodeArgs = [
      ...(CPU_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_DIR}`] : []),
      ...(process.env.PROF_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ];
    const keel = spawn(
      process.execPath,
      [
        ...nodeArgs,
        join(here, 'pgkeel-proxy.mjs'),
        '--listen',
        `127.0.0.1:${port}`,
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
    targets.pgkeel = { port, pid: keel.pid, child: keel };
  }
  if (process.env.PROF_ALT_DIST) {
    // A second pgkeel from another build (A/B of a change in one run): PROF_ALT_DIST=/path/to/dist
    const port = await freePort();
    const runner = join(dir, 'alt-proxy.mjs');
    writeFileSync(
      runner,
      `import { runProxyCommand } from '${process.env.PROF_ALT_DIST}/src/cli/proxy-cmd.js'; process.exitCode = await runProxyCommand(process.argv.slice(2));\n`,
    );
    const alt = spawn(
      process.execPath,
      [
        runner,
        '--listen',
        `127.0.0.1:${port}`,
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
    children.push(alt);
    targets['pgkeel-alt'] = { port, pid: alt.pid, child: alt };
  }
  if (TARGETS.includes('pgbouncer')) {
    const port = await freePort();
    const id = postgresIdentity();
    writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
    writeFileSync(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `postgres = host=127.0.0.1 port=${pgsrv.port} dbname=postgres`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
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
    const b = spawn('/usr/sbin/pgbouncer', [join(dir, 'pgbouncer.ini')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      ...(id ? { uid: id.uid, gid: id.gid } : {}),
    });
    children.push(b);
    targets.pgbouncer = { port, pid: b.pid };
  }
  for (const t of Object.values(targets)) await waitPort(t.port);

  const ROUNDS = Number(process.env.PROF_ROUNDS ?? 1);
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, t] of round % 2 ? Object.entries(targets).reverse() : Object.entries(targets)) {
      if (SECONDS > 0) {
        const cpu0 = cpuSeconds(t.pid);
        const u0 = cpuSeconds(t.pid, 'user');
        const bench = run(
          'pgbench',
          [...EXTRA, '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-n', '-p', String(t.port)],
          { env, asPostgres: false, timeoutMs: (SECONDS + 60) * 1000 },
        );
        if (process.env.PROF_PERF && round === 0) {
          // perf record of the target for half the run: where native and kernel time goes (PROF_PERF=output dir)
          await sleep(1000);
          const out = join(process.env.PROF_PERF, `${name}.perf.data`);
          await run(
            'perf',
            [
              'record',
              '-F',
              '1999',
              '-g',
              '-p',
              String(t.pid),
              '-o',
              out,
              '--',
              'sleep',
              String(Math.max(1, SECONDS / 2)),
            ],
            { asPostgres: false, timeoutMs: (SECONDS + 30) * 1000 },
          );
        }
        const r = await bench;
        const cpu = cpuSeconds(t.pid) - cpu0;
        const user = cpuSeconds(t.pid, 'user') - u0;
        const tps = Number(/tps = ([\d.]+) \((?:without|including)/.exec(r.stdout)?.[1] ?? NaN);
        const xacts = Number(/actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
        const lat = /latency average = ([\d.]+) ms/.exec(r.stdout)?.[1];
        console.log(
          `${name}: tps=${tps.toFixed(0)} latency_avg=${lat} ms cpu=${cpu.toFixed(2)} s (${((cpu / xacts) * 1000).toFixed(3)} s/1k tx; user ${((user / xacts) * 1000).toFixed(3)}, sys ${(((cpu - user) / xacts) * 1000).toFixed(3)}) ${r.code !== 0 ? r.stderr.slice(0, 300) : ''}`,
        );
      }
      if (STRACE > 0 && round === 0) {
        // strace attached for a fixed number of transactions: calls per transaction without guessing the rate.
        const st = spawn('strace', ['-c', '-f', '-p', String(t.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
        children.push(st);
        let out = '';
        st.stderr.on('data', (d) => (out += d));
        await sleep(1000);
        const r = await run(
          'pgbench',
          [...EXTRA, '-c', String(CLIENTS), '-j', '2', '-t', String(STRACE), '-n', '-p', String(t.port)],
          { env, asPostgres: false, timeoutMs: 300_000 },
        );
        const xacts = Number(/actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
        st.kill('SIGINT');
        await new Promise((res) => st.once('exit', res));
        console.log(`  strace -c -f during ${xacts} tx: calls per tx`);
        for (const l of out
          .split('\n')
          .filter((x) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(x))
          .slice(0, 12)) {
          const f = l.trim().split(/\s+/);
          console.log(`    ${f[f.length - 1].padEnd(16)} ${(Number(f[3]) / xacts).toFixed(3)}`);
        }
      }
      if (IDLE > 0 && round === 0) {
        const r = await measureIdle({ port: t.port, pid: t.pid, n: IDLE, user: 'postgres', database: 'postgres' });
        console.log(
          `${name}: idle clients ${r.opened}: RSS ${r.rss0} kB -> ${r.rssHalf} kB (N/2) -> ${r.rssN} kB = ${r.perClient.toFixed(2)} KiB per idle client; marginal (N/2..N) ${r.marginal.toFixed(2)} KiB`,
        );
      }
    }
  if (targets.pgkeel && CPU_DIR) {
    targets.pgkeel.child.kill('SIGINT');
    await new Promise((r) => targets.pgkeel.child.once('exit', r));
    console.log(`cpu profile written to ${CPU_DIR}`);
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
