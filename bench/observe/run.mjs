#!/usr/bin/env node
// Observability benchmark (issue 12): the agent's /metrics beside Debian's prometheus-postgres-exporter 0.11 on one
// `pgkeel up` cluster, same run. Prints scrape latency (median/p95/p99), CPU per scrape (the scraped process, and the
// PostgreSQL instance behind it, each minus an idle baseline), the CPU share of one core at a 15 s scrape interval,
// series counts, which of the exporter's default metric families pgkeel lacks, and the agent's RSS idle vs with the
// dashboard open. Not a test: nothing fails on a figure.
//
//   npm run build && flock /tmp/pgkeel-heavy.lock node bench/observe/run.mjs      (bench/observe/run.sh does this)
//   options: --scrapes N (at least N scrapes per target, 200) --min-seconds S (and at least S seconds, 10)
//            --cold N (uncached scrapes per target, 10) --cold-spacing S (5.5; past metrics.cache_seconds)
//            --dashboard-seconds S (60) --port-base P (27700) --out FILE (default bench/observe/results-<date>.json;
//            "none" to skip)
//
// Needs a build (dist/), PostgreSQL 15 and etcd (Debian paths) and /usr/bin/prometheus-postgres-exporter. Runs as root.
// Everything started is stopped by PID (`pgkeel down --dir`, the exporter's child PID) and the temp directory removed,
// also on Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
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
    'dashboard-seconds': { type: 'string', default: '60' },
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
/** The issue's budget per scrape. */
const BUDGET_MS = 50;

const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
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

/** The exporter's own families (Go runtime, process, HTTP handler, exporter bookkeeping), not PostgreSQL's. */
const internal = (f) => /^(go_|process_|promhttp_|pg_exporter_|postgres_exporter_)/.test(f);
const kindOf = (n) =>
  n.startsWith('pg_settings_') ? 'pg_settings' : internal(n) ? 'internal' : n.startsWith('pg_') ? 'postgres' : 'other';

/**
 * Metric family names (from # TYPE lines; sample names for untyped samples), the number of samples, and the samples
 * by kind: pg_settings_*, the exporter's internal families, other pg_* (PostgreSQL), the rest (patroni_*, pgkeel_*).
 */
function families(text) {
  const names = new Set();
  const typed = [];
  const kinds = { postgres: 0, pg_settings: 0, internal: 0, other: 0 };
  let samples = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const n = line.split(' ')[2];
      names.add(n);
      typed.push(n);
    } else if (line && !line.startsWith('#')) {
      samples++;
      const n = line.split(/[{ ]/)[0];
      kinds[kindOf(n)]++;
      const base = n.replace(/_(bucket|sum|count|total|created)$/, '');
      if (!names.has(n) && !names.has(base)) names.add(n);
    }
  }
  return { names, samples, kinds };
}

/** The value of the first sample of `name` (labelled or not: the agent adds its scope and member), or NaN. */
function sampleValue(body, name) {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * What one scrape body says about the PostgreSQL behind it: pg_up, and the agent's round counter
 * (pg_exporter_scrapes_total: rounds of PostgreSQL queries; it moves only when the scrape was not served from the cache).
 */
const probe = (body) => ({
  up: sampleValue(body, 'pg_up'),
  rounds: sampleValue(body, 'pg_exporter_scrapes_total'),
  roundSeconds: sampleValue(body, 'pg_exporter_last_scrape_duration_seconds'),
});

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
  let pgDown = 0;
  let first = null;
  const c0 = cpuSeconds(pid);
  const g0 = treeCpu(pgPid);
  const t0 = performance.now();
  let body = '';
  while (lat.length < SCRAPES || performance.now() - t0 < MIN_SECONDS * 1000) {
    const r = await scrape(url);
    lat.push(r.ms);
    body = r.body;
    const p = probe(body);
    first ??= p;
    if (p.up !== 1) pgDown++;
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
    max_ms: Math.max(...lat),
    over_budget: lat.filter((x) => x > BUDGET_MS).length,
    pg_up_not_1: pgDown,
    pg_rounds: probe(body).rounds - first.rounds + 1,
    cpu_ms_per_scrape: (Math.max(0, busy - idle) * 1000) / n,
    pg_cpu_ms_per_scrape: (Math.max(0, treeDelta(g0, g1) - treeDelta(g1, g2)) * 1000) / n,
    raw: { busy_s: busy, idle_s: idle, pg_busy_s: treeDelta(g0, g1), pg_idle_s: treeDelta(g1, g2) },
    series: fam.samples,
    series_by_kind: fam.kinds,
    families: [...fam.names].sort(),
  };
  r.core_pct_at_15s = ((r.cpu_ms_per_scrape + r.pg_cpu_ms_per_scrape) / 1000 / INTERVAL_S) * 100;
  log(
    `${name}: ${n} scrapes in ${wall.toFixed(1)} s, median ${r.median_ms.toFixed(2)} ms, ` +
      `CPU ${r.cpu_ms_per_scrape.toFixed(3)} ms + PostgreSQL ${r.pg_cpu_ms_per_scrape.toFixed(3)} ms per scrape, ` +
      `${r.pg_rounds} rounds of PostgreSQL queries, pg_up≠1 in ${pgDown}, over ${BUDGET_MS} ms: ${r.over_budget}`,
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
  const acc = targets.map(() => ({ lat: [], cpu: 0, pg: 0, down: 0, fresh: 0, rounds: Number.NaN, roundSeconds: [] }));
  // One scrape each first (a target not scraped before opens its PostgreSQL session and warms up here), then a pause
  // past the cache period.
  const warmup = [];
  for (const [k, t] of targets.entries()) {
    const r = await scrape(t.url);
    warmup.push(r.ms);
    acc[k].rounds = probe(r.body).rounds;
  }
  await sleep(COLD_SPACING * 1000);
  for (let i = 0; i < COLD; i++) {
    const start = performance.now();
    for (const [k, t] of targets.entries()) {
      const a = acc[k];
      const c0 = cpuSeconds(t.pid);
      const g0 = treeCpu(t.pgPid);
      const r = await scrape(t.url);
      a.cpu += cpuSeconds(t.pid) - c0;
      a.pg += treeDelta(g0, treeCpu(t.pgPid));
      a.lat.push(r.ms);
      const p = probe(r.body);
      if (p.up !== 1) a.down++;
      // A round counter that moved since this target's last scrape: not served from the cache.
      if (p.rounds > a.rounds) a.fresh++;
      a.rounds = p.rounds;
      a.roundSeconds.push(p.roundSeconds);
    }
    if (i < COLD - 1) await sleep(Math.max(0, COLD_SPACING * 1000 - (performance.now() - start)));
  }
  return targets.map((t, k) => {
    const a = acc[k];
    const r = {
      name: `${t.name}, uncached`,
      scrapes: a.lat.length,
      spacing_s: COLD_SPACING,
      warmup_ms: warmup[k],
      median_ms: quantile(a.lat, 0.5),
      p95_ms: quantile(a.lat, 0.95),
      p99_ms: quantile(a.lat, 0.99),
      max_ms: Math.max(...a.lat),
      over_budget: a.lat.filter((x) => x > BUDGET_MS).length,
      pg_up_not_1: a.down,
      fresh_rounds: a.fresh,
      round_ms_median: quantile(a.roundSeconds, 0.5) * 1000,
      cpu_ms_per_scrape: (a.cpu * 1000) / a.lat.length,
      pg_cpu_ms_per_scrape: (a.pg * 1000) / a.lat.length,
    };
    r.core_pct_at_15s = ((r.cpu_ms_per_scrape + r.pg_cpu_ms_per_scrape) / 1000 / INTERVAL_S) * 100;
    log(
      `${r.name}: ${r.scrapes} scrapes ${COLD_SPACING} s apart, median ${r.median_ms.toFixed(2)} ms, ` +
        `CPU ${r.cpu_ms_per_scrape.toFixed(2)} ms + PostgreSQL ${r.pg_cpu_ms_per_scrape.toFixed(2)} ms per scrape, ` +
        `fresh rounds ${a.fresh}/${r.scrapes}, pg_up≠1 in ${a.down}, over ${BUDGET_MS} ms: ${r.over_budget}`,
    );
    return r;
  });
}

// ---- processes --------------------------------------------------------------------------------------------------

const work = workDir('pgkeel-bench-observe-');
const cdir = join(work, 'cluster');
let clusterUp = false;
/** The exporters started (children of this process), stopped by PID. */
const exporters = [];

async function cleanup() {
  for (const { pid } of exporters.splice(0)) {
    if (!pid || !pidAlive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
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
    if (leader && replicas.length === ms.length - 1 && ms.length > 1) return { leader, replicas };
    await sleep(500);
  }
  throw new Error('the cluster did not become healthy in 2 minutes');
}

/** postgres_exporter with its default flags against one node's PostgreSQL; { url, pid } once it reports pg_up 1. */
async function startExporter(lc, pgPort) {
  const port = await freePort();
  const { username, password } = lc.superuser;
  const dsn = `postgresql://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/postgres?sslmode=${lc.tls ? 'require' : 'disable'}`;
  const exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    env: { ...process.env, DATA_SOURCE_NAME: dsn },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  exporters.push(exporter);
  exporter.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}/metrics`;
  for (let i = 0; i < 100; i++) {
    const r = await scrape(url).catch(() => null);
    if (r && /^pg_up 1$/m.test(r.body)) return { url, pid: exporter.pid };
    await sleep(200);
  }
  throw new Error(`the exporter did not report pg_up 1 within 20 s: ${err.trim()}`);
}

/** RSS samples (KiB) and CPU share of one core of a process over `seconds`, sampled every 2 s while `during` runs. */
async function watch(pid, seconds, during = async () => {}) {
  const rss = [];
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await during();
    rss.push(rssKiB(pid));
    await sleep(2000);
  }
  const core_pct = ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
  return { rss_kib_median: quantile(rss, 0.5), rss_kib_max: Math.max(...rss), core_pct };
}

/**
 * The agent with the dashboard open as a browser keeps it: one SSE connection to /dashboard/events and
 * GET /dashboard/state every 2 s, for DASH_SECONDS; RSS and CPU against an idle period of DASH_SECONDS / 3 just before.
 */
async function dashboardLoad(api, pid) {
  const first = await fetch(`${api}/dashboard/state`, { signal: AbortSignal.timeout(5000) }).catch((e) => e);
  if (first instanceof Error || first.status !== 200) {
    await first.body?.cancel?.();
    return { available: false, why: first instanceof Error ? first.message : `HTTP ${first.status}` };
  }
  await first.text();
  const idle = await watch(pid, DASH_SECONDS / 3);
  const ac = new AbortController();
  const sse = { status: null, events: 0, bytes: 0 };
  const stream = fetch(`${api}/dashboard/events`, { signal: ac.signal })
    .then(async (res) => {
      sse.status = res.status;
      if (res.status !== 200) return void (await res.body?.cancel());
      const dec = new TextDecoder();
      for await (const chunk of res.body) {
        sse.bytes += chunk.length;
        sse.events += (dec.decode(chunk, { stream: true }).match(/^data:/gm) ?? []).length;
      }
    })
    .catch(() => {});
  const stateMs = [];
  const open = await watch(pid, DASH_SECONDS, async () => {
    const t = performance.now();
    const res = await fetch(`${api}/dashboard/state`, { signal: AbortSignal.timeout(5000) });
    await res.text();
    if (res.status === 200) stateMs.push(performance.now() - t);
  });
  ac.abort();
  await stream;
  const r = {
    available: true,
    seconds: DASH_SECONDS,
    idle,
    open,
    sse,
    state_polls: stateMs.length,
    state_ms_median: quantile(stateMs, 0.5),
    state_ms_max: Math.max(...stateMs),
  };
  log(
    `dashboard open ${DASH_SECONDS} s: RSS ${fmt(open.rss_kib_median / 1024, 1)} MiB (idle ${fmt(idle.rss_kib_median / 1024, 1)}), ` +
      `CPU ${fmt(open.core_pct, 2)} % of a core (idle ${fmt(idle.core_pct, 2)}), SSE ${sse.status} ${sse.events} events`,
  );
  return r;
}

// ---- the run ------------------------------------------------------------------------------------------------------

const ratio = (a, b) => (b > 0 ? fmt(a / b) : 'n/a');
const cpuOf = (r) => r.cpu_ms_per_scrape + r.pg_cpu_ms_per_scrape;
const byName = (rs, name) => rs.find((r) => r.name.startsWith(name));

function printTables(results, cold) {
  const row = (r) =>
    `| ${r.name} | ${r.scrapes} | ${fmt(r.median_ms)} | ${fmt(r.p95_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.max_ms)} | ` +
    `${r.over_budget} | ${fmt(r.cpu_ms_per_scrape, 3)} | ${fmt(r.pg_cpu_ms_per_scrape, 3)} | ${fmt(r.core_pct_at_15s, 4)} | ` +
    `${r.pg_up_not_1} | ${r.fresh_rounds ?? r.pg_rounds} |`;
  const head =
    `| target | scrapes | median ms | p95 ms | p99 ms | max ms | > ${BUDGET_MS} ms | CPU ms/scrape (process) | ` +
    'CPU ms/scrape (PostgreSQL) | % of one core at 15 s | pg_up ≠ 1 | rounds of PostgreSQL queries |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  console.log(`\n## Cached: back to back (keep-alive, ≥ ${SCRAPES} scrapes and ≥ ${MIN_SECONDS} s each, minus idle)\n`);
  console.log(head);
  for (const r of results) console.log(row(r));
  console.log(`\n## Uncached (${COLD} scrapes per target, ${COLD_SPACING} s apart, CPU read around each scrape)\n`);
  console.log(head);
  for (const r of cold) console.log(row(r));
  for (const role of ['leader', 'replica']) {
    const a = byName(cold, `agent (${role})`);
    const e = byName(cold, `postgres_exporter (${role})`);
    const ab = byName(results, `agent (${role})`);
    const eb = byName(results, `postgres_exporter (${role})`);
    console.log(
      `\nagent / postgres_exporter on the ${role}, uncached: latency median ${ratio(a.median_ms, e.median_ms)}×, ` +
        `CPU per scrape (process + PostgreSQL) ${ratio(cpuOf(a), cpuOf(e))}×; cached (back to back): latency median ` +
        `${ratio(ab.median_ms, eb.median_ms)}×, p99 ${ratio(ab.p99_ms, eb.p99_ms)}×, CPU ${ratio(cpuOf(ab), cpuOf(eb))}×`,
    );
  }
}

/** The exporter's families the agents lack, split into PostgreSQL families, pg_settings_* and its own. */
function lackingFamilies(results) {
  const ours = new Set(results.filter((r) => r.name.startsWith('agent')).flatMap((r) => r.families));
  const theirs = [...new Set(results.filter((r) => !r.name.startsWith('agent')).flatMap((r) => r.families))].sort();
  const lacking = theirs.filter((f) => !ours.has(f));
  const out = {
    exporter_families: theirs.length,
    shared: theirs.filter((f) => ours.has(f)),
    postgres: lacking.filter((f) => kindOf(f) === 'postgres'),
    pg_settings: lacking.filter((f) => kindOf(f) === 'pg_settings').length,
    internal: lacking.filter(internal),
    agent_only_pg: [...ours].filter((f) => f.startsWith('pg_') && !theirs.includes(f)).sort(),
  };
  console.log(
    `\n## postgres_exporter's default metric families pgkeel's /metrics lacks (${lacking.length} of ${theirs.length})\n`,
  );
  console.log(`PostgreSQL families (${out.postgres.length}):`);
  for (const f of out.postgres) console.log(`- ${f}`);
  console.log(`\npg_settings_* (one family per setting): ${out.pg_settings} lacking`);
  console.log(`exporter's own process/Go/HTTP families: ${out.internal.length} lacking (${out.internal.join(', ')})`);
  console.log(`\nshared families (${out.shared.length}): ${out.shared.join(', ') || 'none'}`);
  console.log(
    `pg_* families only the agent has (${out.agent_only_pg.length}): ${out.agent_only_pg.join(', ') || 'none'}`,
  );
  return out;
}

async function main() {
  if (!existsSync(EXPORTER)) throw new Error(`${EXPORTER} is missing: apt-get install -y prometheus-postgres-exporter`);
  log(`pgkeel up (3 nodes) in ${cdir}, port base ${PORT_BASE}`);
  clusterUp = true;
  await sh('node', [PGKEEL, 'up', '--dir', cdir, '--port-base', String(PORT_BASE), '--detach']);
  const { leader, replicas } = await healthy();
  const lc = readLocalCluster(cdir);
  const node = (m) => lc.nodes.find((n) => n.pgPort === m.port) ?? lc.nodes.find((n) => n.name === m.name);
  const ln = node(leader);
  const [rn, rn2] = replicas.map(node);
  const scheme = lc.tls ? 'https' : 'http';
  const agent = (name, n) => ({
    name,
    url: `${scheme}://127.0.0.1:${n.apiPort}/metrics`,
    pid: pidOf(paths.agentPid(cdir, n.name)),
    pgPid: pidOf(join(cdir, n.name, 'data', 'postmaster.pid')),
  });
  log(`leader ${ln.name} (pg ${ln.pgPort}), replicas ${rn.name} (pg ${rn.pgPort}), ${rn2?.name} (pg ${rn2?.pgPort})`);

  await sleep(5000); // let the start-up settle (first HA cycles, checkpoints after bootstrap)
  const rssStart = rssKiB(agent('', ln).pid);

  const exporterOn = async (name, n) => {
    const e = await startExporter(lc, n.pgPort);
    log(`${name}: ${e.url} (pid ${e.pid})`);
    return { ...agent(name, n), url: e.url, pid: e.pid };
  };
  const agentL = agent('agent (leader)', ln);
  const agentR = agent('agent (replica)', rn);
  const expL = await exporterOn('postgres_exporter (leader)', ln);
  const expR = await exporterOn('postgres_exporter (replica)', rn);

  // Order alternates the agent and the exporter so that drift in the host's load falls on both.
  const results = [];
  for (const t of [agentL, expL, agentR, expR]) results.push(await measure(t.name, t.url, t.pid, t.pgPid));
  const cold = await measureCold([agentL, agentR, ...(rn2 ? [agent('agent (second replica)', rn2)] : []), expL, expR]);
  const rssAfterScrapes = rssKiB(agentL.pid);
  const dash = await dashboardLoad(`${scheme}://127.0.0.1:${ln.apiPort}`, agentL.pid);

  // ---- report ----
  printTables(results, cold);
  const agents = cold.filter((r) => r.name.startsWith('agent'));
  const clusterPct = agents.reduce((a, r) => a + r.core_pct_at_15s, 0);
  const worst = Math.max(...agents.map((r) => r.max_ms));
  console.log(
    `\n3-node cluster, one scrape per agent every ${INTERVAL_S} s (uncached): ${fmt(clusterPct, 4)} % of one core ` +
      `(agents + their PostgreSQL); slowest uncached agent scrape ${fmt(worst)} ms — issue 12's goal: ≤ ${BUDGET_MS} ms ` +
      `per scrape and ≤ 1 % of one core: ${worst <= BUDGET_MS && clusterPct <= 1 ? 'met' : 'NOT met'}`,
  );
  const series = Object.fromEntries(results.map((r) => [r.name, { samples: r.series, ...r.series_by_kind }]));
  console.log('\nseries (samples per scrape):');
  for (const [k, v] of Object.entries(series)) console.log(`- ${k}: ${JSON.stringify(v)}`);
  const lacking = lackingFamilies(results);
  const down = [...results, ...cold].filter((r) => r.pg_up_not_1 > 0);
  const slow = [...results, ...cold].filter((r) => r.name.startsWith('agent') && r.over_budget > 0);
  if (down.length)
    console.log(`\nWARNING: pg_up ≠ 1 seen: ${down.map((r) => `${r.name} ${r.pg_up_not_1}×`).join(', ')}`);
  if (slow.length)
    console.log(
      `WARNING: agent scrapes over ${BUDGET_MS} ms: ${slow.map((r) => `${r.name} ${r.over_budget}×`).join(', ')}`,
    );

  console.log('\n## Agent RSS (leader, VmRSS)\n');
  console.log(
    `after start: ${fmt(rssStart / 1024, 1)} MiB; after the scrape runs: ${fmt(rssAfterScrapes / 1024, 1)} MiB`,
  );
  if (dash.available)
    console.log(
      `idle ${fmt(DASH_SECONDS / 3, 0)} s: ${fmt(dash.idle.rss_kib_median / 1024, 1)} MiB (max ${fmt(dash.idle.rss_kib_max / 1024, 1)}), ` +
        `${fmt(dash.idle.core_pct, 2)} % of a core; dashboard open ${DASH_SECONDS} s (GET /dashboard/state every 2 s + ` +
        `one SSE /dashboard/events, ${dash.sse.events} events): ${fmt(dash.open.rss_kib_median / 1024, 1)} MiB ` +
        `(max ${fmt(dash.open.rss_kib_max / 1024, 1)}), ${fmt(dash.open.core_pct, 2)} % of a core; ` +
        `/dashboard/state median ${fmt(dash.state_ms_median)} ms`,
    );
  else console.log(`dashboard not available (GET /dashboard/state: ${dash.why})`);

  const out = opt.out ?? join(here, `results-${new Date().toISOString().slice(0, 10)}.json`);
  if (out !== 'none') {
    const summary = results.map(({ families: f, ...r }) => ({ ...r, families: f.length }));
    const data = {
      date: new Date().toISOString(),
      host: { cpus: availableParallelism(), loadavg: loadavg() },
      options: { scrapes_min: SCRAPES, min_seconds: MIN_SECONDS, cold: COLD, cold_spacing_s: COLD_SPACING },
      results: summary,
      uncached: cold,
      cluster_core_pct_at_15s: clusterPct,
      series,
      lacking,
      rss_kib: { start: rssStart, after_scrapes: rssAfterScrapes, dashboard: dash },
    };
    writeFileSync(out, `${JSON.stringify(data, null, 2)}\n`);
    log(`wrote ${out}`);
  }
}

main()
  .catch((err) => {
    console.error(err.stack ?? String(err));
    process.exitCode = 1;
  })
  .finally(cleanup);
