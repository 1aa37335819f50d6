#!/usr/bin/env node
// Observability benchmark (issue 12): the agent's /metrics beside Debian's prometheus-postgres-exporter 0.11 on one
// `pgkeel up` cluster, same run. Prints scrape latency (median/p95/p99), CPU per scrape (the scraped process, and the
// PostgreSQL instance behind it, each minus an idle baseline), the CPU share of one core at a 15 s scrape interval,
// series counts, which of the exporter's default metric families pgkeel lacks, and the agent's RSS idle vs with the
// dashboard open. Not a test: nothing fails on a figure.
//
//   npm run build && flock /tmp/pgkeel-heavy.lock node bench/observe/run.mjs      (bench/observe/run.sh does this)
//   options: --scrapes N (at least N scrapes per target, 200) --min-seconds S (and at least S seconds, 10)
//            --dashboard-seconds S (30) --port-base P (27700) --out FILE (default bench/observe/results-<date>.json;
//            "none" to skip)
//
// Needs a build (dist/), PostgreSQL 15 and etcd (Debian paths) and /usr/bin/prometheus-postgres-exporter. Runs as root.
// Everything started is stopped by PID (`pgkeel down --dir`, the exporter's child PID) and the temp directory removed,
// also on Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { paths, readLocalCluster } from '../../dist/src/local/layout.js';
import { pidAlive, sleep } from '../../dist/src/lib/proc.js';
import { clusterDown, dropWorkDir, log, onInterrupt, PGKEEL, sh, workDir } from '../lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    scrapes: { type: 'string', default: '200' },
    'min-seconds': { type: 'string', default: '10' },
    'dashboard-seconds': { type: 'string', default: '30' },
    cold: { type: 'string', default: '10' },
    'cold-spacing': { type: 'string', default: '5.5' },
    'port-base': { type: 'string', default: '27700' },
    out: { type: 'string' },
  },
});
const SCRAPES = Number(opt.scrapes);
const MIN_SECONDS = Number(opt['min-seconds']);
const DASH_SECONDS = Number(opt['dashboard-seconds']);
const COLD = Number(opt.cold);
const COLD_SPACING = Number(opt['cold-spacing']);
const PORT_BASE = Number(opt['port-base']);
const EXPORTER = '/usr/bin/prometheus-postgres-exporter';
const INTERVAL_S = 15;

const quantile = (xs, q) => {
  const v = [...xs].sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
};

// ---- /proc ------------------------------------------------------------------------------------------------------

/**
 * CPU time of one process in seconds, summed over its threads from /proc/<pid>/task/<tid>/schedstat (nanoseconds on
 * the CPU; /proc/<pid>/stat's utime + stime count 10 ms ticks, too coarse for one scrape); null when it is gone.
 * Threads that exit in between are missed: Node's and Go's worker threads live as long as the process.
 */
function cpuSeconds(pid) {
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) || 0;
    return ns / 1e9;
  } catch {
    return null;
  }
}

/** The process and its children (one level: a postmaster's backends and workers). */
function withChildren(pid) {
  const out = [pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * CPU seconds of a process tree. A process that started in between counts whole; one that ended in between is
 * missed (the scrapers here keep their connections, so the set is stable while they are measured).
 */
function treeCpu(pid) {
  const m = new Map();
  for (const p of withChildren(pid)) {
    const c = cpuSeconds(p);
    if (c !== null) m.set(p, c);
  }
  return m;
}
function treeDelta(before, after) {
  let d = 0;
  for (const [p, c] of after) d += c - (before.get(p) ?? 0);
  return d;
}

function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

// ---- exposition -------------------------------------------------------------------------------------------------

/** Metric family names (from # TYPE lines; sample names for untyped samples) and the number of samples. */
function families(text) {
  const names = new Set();
  const typed = [];
  let samples = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const n = line.split(' ')[2];
      names.add(n);
      typed.push(n);
    } else if (line && !line.startsWith('#')) {
      samples++;
      const n = line.split(/[{ ]/)[0];
      const base = n.replace(/_(bucket|sum|count|total|created)$/, '');
      if (!names.has(n) && !names.has(base)) names.add(n);
    }
  }
  return { names, samples };
}

async function scrape(url) {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return { ms: performance.now() - t0, body };
}

/**
 * Scrapes back to back (at least SCRAPES times and MIN_SECONDS), then stays idle for the same duration; CPU per
 * scrape is (CPU while scraping − CPU while idle) / scrapes, for the scraped process and for the PostgreSQL instance
 * (postmaster and children) it reads.
 */
async function measure(name, url, pid, pgPid) {
  for (let i = 0; i < 5; i++) await scrape(url); // warm-up: connections, caches, JIT
  const lat = [];
  const c0 = cpuSeconds(pid);
  const g0 = treeCpu(pgPid);
  const t0 = performance.now();
  let body = '';
  while (lat.length < SCRAPES || performance.now() - t0 < MIN_SECONDS * 1000) {
    const r = await scrape(url);
    lat.push(r.ms);
    body = r.body;
  }
  const wall = (performance.now() - t0) / 1000;
  const c1 = cpuSeconds(pid);
  const g1 = treeCpu(pgPid);
  await sleep(wall * 1000);
  const c2 = cpuSeconds(pid);
  const g2 = treeCpu(pgPid);
  const busy = c1 - c0;
  const idle = c2 - c1;
  const n = lat.length;
  const fam = families(body);
  const r = {
    name,
    url,
    scrapes: n,
    seconds: wall,
    median_ms: quantile(lat, 0.5),
    p95_ms: quantile(lat, 0.95),
    p99_ms: quantile(lat, 0.99),
    cpu_ms_per_scrape: (Math.max(0, busy - idle) * 1000) / n,
    pg_cpu_ms_per_scrape: (Math.max(0, treeDelta(g0, g1) - treeDelta(g1, g2)) * 1000) / n,
    raw: { busy_s: busy, idle_s: idle, pg_busy_s: treeDelta(g0, g1), pg_idle_s: treeDelta(g1, g2) },
    series: fam.samples,
    families: [...fam.names].sort(),
  };
  r.core_pct_at_15s = ((r.cpu_ms_per_scrape + r.pg_cpu_ms_per_scrape) / 1000 / INTERVAL_S) * 100;
  log(
    `${name}: ${n} scrapes in ${wall.toFixed(1)} s, median ${r.median_ms.toFixed(2)} ms, ` +
      `CPU ${r.cpu_ms_per_scrape.toFixed(3)} ms + PostgreSQL ${r.pg_cpu_ms_per_scrape.toFixed(3)} ms per scrape`,
  );
  return r;
}

/**
 * Uncached scrapes: the agent reuses one round of PostgreSQL queries for metrics.cache_seconds (default 5 s), so
 * back-to-back scrapes mostly read its cache. Here each target is scraped COLD times, COLD_SPACING seconds apart
 * (longer than the cache period), and CPU is read right before and right after each scrape: the idle share of a
 * window that short is negligible.
 */
async function measureCold(targets) {
  const acc = targets.map(() => ({ lat: [], cpu: 0, pg: 0 }));
  for (let i = 0; i < COLD; i++) {
    const start = performance.now();
    for (const [k, t] of targets.entries()) {
      const a = acc[k];
      const c0 = cpuSeconds(t.pid);
      const g0 = treeCpu(t.pgPid);
      a.lat.push((await scrape(t.url)).ms);
      a.cpu += cpuSeconds(t.pid) - c0;
      a.pg += treeDelta(g0, treeCpu(t.pgPid));
    }
    if (i < COLD - 1) await sleep(Math.max(0, COLD_SPACING * 1000 - (performance.now() - start)));
  }
  return targets.map((t, k) => {
    const a = acc[k];
    const r = {
      name: `${t.name}, uncached`,
      scrapes: a.lat.length,
      spacing_s: COLD_SPACING,
      median_ms: quantile(a.lat, 0.5),
      p95_ms: quantile(a.lat, 0.95),
      p99_ms: quantile(a.lat, 0.99),
      max_ms: Math.max(...a.lat),
      cpu_ms_per_scrape: (a.cpu * 1000) / a.lat.length,
      pg_cpu_ms_per_scrape: (a.pg * 1000) / a.lat.length,
    };
    r.core_pct_at_15s = ((r.cpu_ms_per_scrape + r.pg_cpu_ms_per_scrape) / 1000 / INTERVAL_S) * 100;
    log(
      `${r.name}: ${r.scrapes} scrapes ${COLD_SPACING} s apart, median ${r.median_ms.toFixed(2)} ms, ` +
        `CPU ${r.cpu_ms_per_scrape.toFixed(2)} ms + PostgreSQL ${r.pg_cpu_ms_per_scrape.toFixed(2)} ms per scrape`,
    );
    return r;
  });
}

// ---- processes --------------------------------------------------------------------------------------------------

const work = workDir('pgkeel-bench-observe-');
const cdir = join(work, 'cluster');
let clusterUp = false;
let exporter = null;

async function cleanup() {
  if (exporter?.pid && pidAlive(exporter.pid)) {
    process.kill(exporter.pid, 'SIGTERM');
    for (let i = 0; i < 50 && pidAlive(exporter.pid); i++) await sleep(100);
    if (pidAlive(exporter.pid)) process.kill(exporter.pid, 'SIGKILL');
  }
  if (clusterUp) {
    clusterUp = false;
    await clusterDown(cdir);
  }
  dropWorkDir(work);
}
onInterrupt(cleanup);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const pidOf = (file) => Number(readFileSync(file, 'utf8').split('\n')[0]);

async function healthy() {
  for (let i = 0; i < 240; i++) {
    const r = await sh('node', [PGKEEL, 'status', '--dir', cdir, '--json']).catch(() => ({ out: '{}' }));
    const s = JSON.parse(r.out);
    const ms = s.members ?? [];
    const leader = ms.find((m) => m.role === 'leader' && m.state === 'running');
    const replicas = ms.filter((m) => m.role !== 'leader' && m.state === 'streaming');
    if (leader && replicas.length === ms.length - 1 && ms.length > 1) return { leader, replica: replicas[0] };
    await sleep(500);
  }
  throw new Error('the cluster did not become healthy in 2 minutes');
}

async function startExporter(lc, pgPort) {
  const port = await freePort();
  const { username, password } = lc.superuser;
  const dsn = `postgresql://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/postgres?sslmode=${lc.tls ? 'require' : 'disable'}`;
  exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    env: { ...process.env, DATA_SOURCE_NAME: dsn },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  exporter.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}/metrics`;
  for (let i = 0; i < 100; i++) {
    const r = await scrape(url).catch(() => null);
    if (r && /^pg_up 1$/m.test(r.body)) return url;
    await sleep(200);
  }
  throw new Error(`the exporter did not report pg_up 1 within 20 s: ${err.trim()}`);
}

/** RSS of the agent while the dashboard is open: GET /dashboard/state every 2 s and one SSE /dashboard/events. */
async function dashboardRss(api, pid) {
  const probe = await fetch(`${api}/dashboard/state`, { signal: AbortSignal.timeout(5000) }).catch((e) => e);
  if (probe instanceof Error || probe.status !== 200) {
    await probe.body?.cancel?.();
    return { available: false, why: probe instanceof Error ? probe.message : `HTTP ${probe.status}` };
  }
  await probe.text();
  const ac = new AbortController();
  let events = 0;
  const sse = fetch(`${api}/dashboard/events`, { signal: ac.signal })
    .then(async (res) => {
      if (res.status !== 200) return void (await res.body?.cancel());
      for await (const _ of res.body) events++;
    })
    .catch(() => {});
  const samples = [];
  const t0 = performance.now();
  while (performance.now() - t0 < DASH_SECONDS * 1000) {
    await (await fetch(`${api}/dashboard/state`, { signal: AbortSignal.timeout(5000) })).text();
    samples.push(rssKiB(pid));
    await sleep(2000);
  }
  ac.abort();
  await sse;
  return {
    available: true,
    rss_kib_last: samples[samples.length - 1],
    rss_kib_max: Math.max(...samples),
    sse_chunks: events,
  };
}

// ---- the run ------------------------------------------------------------------------------------------------------

const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

async function main() {
  if (!existsSync(EXPORTER)) throw new Error(`${EXPORTER} is missing: apt-get install -y prometheus-postgres-exporter`);
  log(`pgkeel up (3 nodes) in ${cdir}, port base ${PORT_BASE}`);
  clusterUp = true;
  await sh('node', [PGKEEL, 'up', '--dir', cdir, '--port-base', String(PORT_BASE), '--detach']);
  const { leader, replica } = await healthy();
  const lc = readLocalCluster(cdir);
  const node = (m) => lc.nodes.find((n) => n.pgPort === m.port) ?? lc.nodes.find((n) => n.name === m.name);
  const ln = node(leader);
  const rn = node(replica);
  const scheme = lc.tls ? 'https' : 'http';
  const api = (n) => `${scheme}://127.0.0.1:${n.apiPort}`;
  const agentPid = (n) => pidOf(paths.agentPid(cdir, n.name));
  const pmPid = (n) => pidOf(join(cdir, n.name, 'data', 'postmaster.pid'));
  log(`leader ${ln.name} (pg ${ln.pgPort}), replica ${rn.name} (pg ${rn.pgPort})`);

  await sleep(5000); // let the start-up settle (first HA cycles, checkpoints after bootstrap)
  const rssIdle = rssKiB(agentPid(ln));

  const exporterUrl = await startExporter(lc, ln.pgPort);
  log(`exporter ${exporterUrl} (pid ${exporter.pid})`);

  // Order alternates the agent and the exporter so that drift in the host's load falls on both.
  const results = [];
  results.push(await measure('agent (leader)', `${api(ln)}/metrics`, agentPid(ln), pmPid(ln)));
  results.push(await measure('postgres_exporter', exporterUrl, exporter.pid, pmPid(ln)));
  results.push(await measure('agent (replica)', `${api(rn)}/metrics`, agentPid(rn), pmPid(rn)));
  const cold = await measureCold([
    { name: 'agent (leader)', url: `${api(ln)}/metrics`, pid: agentPid(ln), pgPid: pmPid(ln) },
    { name: 'agent (replica)', url: `${api(rn)}/metrics`, pid: agentPid(rn), pgPid: pmPid(rn) },
    { name: 'postgres_exporter', url: exporterUrl, pid: exporter.pid, pgPid: pmPid(ln) },
  ]);
  const rssAfterScrapes = rssKiB(agentPid(ln));

  const dash = await dashboardRss(api(ln), agentPid(ln));

  // ---- report ----
  const [agent, exp, rep] = results;
  const [agentCold, repCold, expCold] = cold;
  const row = (r, scrapes) =>
    `| ${r.name} | ${scrapes} | ${fmt(r.median_ms)} | ${fmt(r.p95_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.cpu_ms_per_scrape, 3)} | ${fmt(r.pg_cpu_ms_per_scrape, 3)} | ${fmt(r.core_pct_at_15s, 4)} |`;
  const head =
    '| target | scrapes | median ms | p95 ms | p99 ms | CPU ms/scrape (process) | CPU ms/scrape (PostgreSQL) | % of one core at 15 s |\n|---|---:|---:|---:|---:|---:|---:|---:|';
  console.log(`\n## Back to back (keep-alive, ≥ ${SCRAPES} scrapes and ≥ ${MIN_SECONDS} s each, minus idle)\n`);
  console.log(head);
  for (const r of results) console.log(row(r, r.scrapes));
  console.log(`\n## Uncached (${COLD} scrapes per target, ${COLD_SPACING} s apart, CPU read around each scrape)\n`);
  console.log(head);
  for (const r of cold) console.log(row(r, r.scrapes));
  const ratio = (a, b) => (b > 0 ? fmt(a / b) : 'n/a');
  const cpu = (r) => r.cpu_ms_per_scrape + r.pg_cpu_ms_per_scrape;
  console.log(
    `\nagent (leader) / postgres_exporter, uncached: latency median ${ratio(agentCold.median_ms, expCold.median_ms)}×, ` +
      `CPU per scrape (process + PostgreSQL) ${ratio(cpu(agentCold), cpu(expCold))}×; back to back: latency median ` +
      `${ratio(agent.median_ms, exp.median_ms)}×, p99 ${ratio(agent.p99_ms, exp.p99_ms)}×, CPU ${ratio(cpu(agent), cpu(exp))}×`,
  );
  console.log(
    `at a 15 s interval: agent (leader) ${fmt(agentCold.core_pct_at_15s, 4)} % of one core, agent (replica) ` +
      `${fmt(repCold.core_pct_at_15s, 4)} %, postgres_exporter ${fmt(expCold.core_pct_at_15s, 4)} % (process + PostgreSQL)`,
  );
  console.log(
    `series (samples per scrape): agent (leader) ${agent.series}, agent (replica) ${rep.series}, ` +
      `postgres_exporter ${exp.series} (${ratio(agent.series, exp.series)}×)`,
  );

  const ours = new Set([...agent.families, ...rep.families]);
  const lacking = exp.families.filter((f) => !ours.has(f));
  const internal = (f) => /^(go_|process_|promhttp_|pg_exporter_|postgres_exporter_)/.test(f);
  const settings = lacking.filter((f) => f.startsWith('pg_settings_'));
  const pgLacking = lacking.filter((f) => !internal(f) && !f.startsWith('pg_settings_'));
  console.log(
    `\n## postgres_exporter's default metric families pgkeel's /metrics lacks (${lacking.length} of ${exp.families.length})\n`,
  );
  console.log(`PostgreSQL families (${pgLacking.length}):`);
  for (const f of pgLacking) console.log(`- ${f}`);
  console.log(`\npg_settings_* (one family per setting): ${settings.length} lacking`);
  console.log(
    `exporter's own process/Go/HTTP families: ${lacking.filter(internal).length} lacking (${lacking.filter(internal).join(', ')})`,
  );
  const shared = exp.families.filter((f) => ours.has(f));
  console.log(`\nshared families (${shared.length}): ${shared.join(', ') || 'none'}`);

  console.log('\n## Agent RSS (leader, VmRSS)\n');
  console.log(
    `idle after start: ${fmt(rssIdle / 1024, 1)} MiB; after the scrape runs: ${fmt(rssAfterScrapes / 1024, 1)} MiB`,
  );
  if (dash.available)
    console.log(
      `with the dashboard open for ${DASH_SECONDS} s (GET /dashboard/state every 2 s + one SSE /dashboard/events): ` +
        `${fmt(dash.rss_kib_last / 1024, 1)} MiB (max ${fmt(dash.rss_kib_max / 1024, 1)} MiB)`,
    );
  else console.log(`dashboard not available (GET /dashboard/state: ${dash.why})`);

  const out = opt.out ?? join(here, `results-${new Date().toISOString().slice(0, 10)}.json`);
  if (out !== 'none') {
    const summary = results.map(({ families: f, ...r }) => ({ ...r, families: f.length }));
    writeFileSync(
      out,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          scrapes_min: SCRAPES,
          min_seconds: MIN_SECONDS,
          results: summary,
          uncached: cold,
          lacking: { postgres: pgLacking, pg_settings: settings.length, internal: lacking.filter(internal) },
          rss_kib: { idle: rssIdle, after_scrapes: rssAfterScrapes, dashboard: dash },
        },
        null,
        2,
      )}\n`,
    );
    log(`wrote ${out}`);
  }
}

main()
  .catch((err) => {
    console.error(err.stack ?? String(err));
    process.exitCode = 1;
  })
  .finally(cleanup);
