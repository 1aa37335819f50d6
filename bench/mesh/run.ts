/**
 * The mesh benchmark (issue 14): what a pglogical mesh costs and how it behaves, measured on local sites made by
 * `pgkeel up --mesh`. A measurement, not a test: it prints figures and never fails on a timing.
 *
 *   node dist/bench/mesh/run.js [--seconds S] [--clients C] [--phases alone,mesh2,mesh3,conflicts,failover]
 *                               [--out FILE] [--lock FILE|none]
 *
 * Phases (each on fresh local clusters in a temp dir, torn down after; ports from a free range):
 *   alone      one 1-node cluster, no mesh: pgbench single-row INSERTs → the anchor TPS
 *   mesh2/3    a 2-/3-site mesh (1 node per site): the same INSERTs on site1 only, then on every site at once; time
 *              from the end of the load until every site holds every row (polled every 50 ms)
 *   conflicts  a 3-site mesh, every site incrementing the same 50 rows (`n = n + 1`): conflicts per second counted in
 *              the sites' server logs (pglogical's CONFLICT lines), and the increments lost (committed − final sum)
 *   failover   a 2-site mesh with 2 nodes per site: writers on both sites every 20 ms, site1's leader SIGKILLed
 *              (agent and postmaster); the longest gap between two acknowledged writes on site2 (goal: no outage)
 *              and on site1 (its failover), and whether `mesh check` converges afterwards
 *
 * The anchor is the same site alone: every TPS is printed beside it with the ratio.
 * Each phase holds the flock on /tmp/pgkeel-heavy.lock (`--lock none` to skip).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { cli, freePortBase, repoRoot } from '../../test/helpers/cluster.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { acquireLock } from '../lib/lock.js';

const PHASES = ['alone', 'mesh2', 'mesh3', 'conflicts', 'failover'] as const;
type Phase = (typeof PHASES)[number];
const SITE_SPAN = 40;
const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';

interface Options {
  seconds: number;
  clients: number;
  phases: Phase[];
  out: string;
  lock: string | null;
}

function options(argv: string[]): Options {
  const o: Options = {
    seconds: 15,
    clients: 4,
    phases: [...PHASES],
    out: join(repoRoot, 'bench', 'mesh', `results-${new Date().toISOString().slice(0, 10)}.json`),
    lock: '/tmp/pgkeel-heavy.lock',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--clients') o.clients = Number(v());
    else if (a === '--phases') {
      const names = v().split(',');
      for (const n of names)
        if (!(PHASES as readonly string[]).includes(n))
          throw new Error(`--phases: unknown phase "${n}" (known: ${PHASES.join(', ')})`);
      o.phases = names as Phase[];
    } else if (a === '--out') o.out = v();
    else if (a === '--lock') o.lock = v() === 'none' ? null : (argv[i] as string);
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.seconds > 0)) throw new Error('--seconds must be positive');
  if (!Number.isInteger(o.clients) || o.clients < 1) throw new Error('--clients must be a positive integer');
  return o;
}

/** One database endpoint: a site's leader (or a plain cluster's node). */
interface Endpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly password: string;
}

interface Saved {
  superuser: { password: string };
  portBase: number;
}

function endpointOf(clusterDir: string, name: string, node = 1): Endpoint {
  const saved = JSON.parse(readFileSync(join(clusterDir, 'cluster.json'), 'utf8')) as Saved;
  return { name, host: '127.0.0.1', port: saved.portBase + 10 + node, password: saved.superuser.password };
}

/** The member of a site (cluster directory) that takes writes now. */
async function leaderEndpoint(clusterDir: string, nodes: number): Promise<Endpoint> {
  const site = clusterDir.split('/').pop() as string;
  for (let n = 1; n <= nodes; n++) {
    const e = endpointOf(clusterDir, site, n);
    const r = await query(e, 'SELECT pg_is_in_recovery() AS r').catch(() => null);
    if (r?.[0]?.['r'] === false) return e;
  }
  throw new Error(`${clusterDir}: no member takes writes`);
}

async function query(e: Endpoint, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({
    host: e.host,
    port: e.port,
    user: 'postgres',
    password: e.password,
    database: 'postgres',
    connectionTimeoutMillis: 5000,
  });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end().catch(() => {});
  }
}

/** Runs pgbench with `script` on `e` for `seconds`; returns committed transactions and TPS. */
function pgbench(
  e: Endpoint,
  script: string,
  seconds: number,
  clients: number,
  vars: Record<string, number>,
): Promise<{ tps: number; transactions: number }> {
  const file = join('/tmp', `pgkeel-bench-mesh-${process.pid}-${e.port}-${Math.random().toString(36).slice(2)}.sql`);
  writeFileSync(file, script);
  const args = [
    '-n',
    '-f',
    file,
    '-c',
    String(clients),
    '-j',
    String(Math.min(2, clients)),
    '-T',
    String(seconds),
    '-h',
    e.host,
    '-p',
    String(e.port),
    '-U',
    'postgres',
    ...Object.entries(vars).flatMap(([k, v]) => ['-D', `${k}=${v}`]),
    'postgres',
  ];
  return new Promise((res, rej) => {
    const p = spawn(PGBENCH, args, {
      env: { ...process.env, PGPASSWORD: e.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('error', rej);
    p.on('exit', (code) => {
      rmSync(file, { force: true });
      const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
      const tx = /number of transactions actually processed: (\d+)/.exec(out);
      if (code !== 0 || !tps || !tx) rej(new Error(`pgbench on ${e.name} exited ${code}:\n${out.slice(-1500)}`));
      else res({ tps: Number(tps[1]), transactions: Number(tx[1]) });
    });
  });
}

const INSERT_SCRIPT = `INSERT INTO bench_rows (id, site, v) VALUES (nextval('bench_seq'), :site, md5(random()::text));\n`;
const HOT_SCRIPT = `\\set id random(1, 50)\nUPDATE bench_hot SET n = n + 1 WHERE id = :id;\n`;

/** The bench tables on every endpoint; site k's ids are ≡ k (mod 10), so sites never collide. */
async function makeTables(eps: readonly Endpoint[]): Promise<void> {
  for (const [i, e] of eps.entries()) {
    await query(e, 'CREATE TABLE IF NOT EXISTS bench_rows (id bigint PRIMARY KEY, site int NOT NULL, v text)');
    await query(e, 'CREATE TABLE IF NOT EXISTS bench_hot (id int PRIMARY KEY, n bigint NOT NULL)');
    await query(e, `CREATE SEQUENCE IF NOT EXISTS bench_seq INCREMENT BY 10 START WITH ${i + 1}`);
  }
}

interface Mesh extends AsyncDisposable {
  readonly dir: string;
  readonly sites: Endpoint[];
}

function pidsUnder(dir: string, sites: number, nodes: number): number[] {
  const files = (k: number) =>
    [
      'etcd/etcd.pid',
      'proxy.pid',
      ...Array.from({ length: nodes }, (_, n) => [`node${n + 1}/agent.pid`, `node${n + 1}/data/postmaster.pid`]).flat(),
    ].map((f) => join(dir, sites > 0 ? `site${k}` : '', f));
  const out: number[] = [];
  for (let k = 1; k <= Math.max(1, sites); k++)
    for (const f of files(k)) {
      try {
        const pid = Number(readFileSync(f, 'utf8').split('\n')[0]);
        if (pid > 0 && pidAlive(pid)) out.push(pid);
      } catch {
        // not there
      }
    }
  return out;
}

async function teardown(dir: string, sites: number, nodes: number): Promise<void> {
  await cli(['down', '--dir', dir], 120_000).catch(() => undefined);
  for (const pid of pidsUnder(dir, sites, nodes)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** `up --mesh N` (or a plain 1-node cluster when sites = 0), the bench tables, and `mesh create` to add them. */
async function startMesh(sites: number, nodes = 1): Promise<Mesh> {
  const tmp = await tempDir('bench-mesh');
  const dir = join(tmp.path, 'm');
  const base = await freePortBase(SITE_SPAN * Math.max(1, sites) + 30);
  const args =
    sites > 0
      ? ['up', '--dir', dir, '--mesh', String(sites), '--nodes', String(nodes), '--port-base', String(base)]
      : ['up', '--detach', '--dir', dir, '--nodes', '1', '--port-base', String(base)];
  const up = await cli([...args, '--timeout', '180'], 600_000);
  const dispose = async () => {
    await teardown(dir, sites, nodes);
    await tmp[Symbol.asyncDispose]();
  };
  if (up.code !== 0) {
    await dispose();
    throw new Error(`${args.join(' ')} failed:\n${up.stdout.slice(-2000)}\n${up.stderr.slice(-2000)}`);
  }
  try {
    return await meshReady(dir, sites, nodes, dispose);
  } catch (err) {
    await dispose();
    throw err;
  }
}

async function meshReady(dir: string, sites: number, nodes: number, dispose: () => Promise<void>): Promise<Mesh> {
  const eps =
    sites > 0
      ? await Promise.all(Array.from({ length: sites }, (_, i) => leaderEndpoint(join(dir, `site${i + 1}`), nodes)))
      : [endpointOf(dir, 'alone')];
  await makeTables(eps);
  if (sites > 0) {
    const mc = await cli(['mesh', 'create', '--dir', dir], 300_000);
    if (mc.code !== 0) throw new Error(`mesh create failed:\n${mc.stdout}\n${mc.stderr}`);
  }
  return { dir, sites: eps, [Symbol.asyncDispose]: dispose };
}

/** Seconds from now until every endpoint holds `expected` rows of bench_rows (polled every 50 ms, at most 120 s). */
async function convergence(eps: readonly Endpoint[], expected: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < 120_000) {
    const counts = await Promise.all(
      eps.map(async (e) => Number((await query(e, 'SELECT count(*) AS n FROM bench_rows'))[0]?.['n'])),
    );
    if (counts.every((n) => n === expected)) return (performance.now() - t0) / 1000;
    await sleep(50);
  }
  return null;
}

interface LoadResult {
  /** TPS per writing site, in site order. */
  readonly tps: number[];
  readonly converged_s: number | null;
}

async function insertLoad(m: Mesh, writers: readonly Endpoint[], o: Options): Promise<LoadResult> {
  const before = Number((await query(m.sites[0] as Endpoint, 'SELECT count(*) AS n FROM bench_rows'))[0]?.['n']);
  const runs = await Promise.all(
    writers.map((e) => pgbench(e, INSERT_SCRIPT, o.seconds, o.clients, { site: m.sites.indexOf(e) + 1 })),
  );
  const total = before + runs.reduce((a, r) => a + r.transactions, 0);
  const converged = m.sites.length > 1 ? await convergence(m.sites, total) : 0;
  return { tps: runs.map((r) => r.tps), converged_s: converged };
}

async function conflictLines(m: Mesh): Promise<number> {
  let n = 0;
  for (let k = 1; k <= m.sites.length; k++) {
    try {
      const log = readFileSync(join(m.dir, `site${k}`, 'node1', 'postgresql.log'), 'utf8');
      n += log.split('\n').filter((l) => l.includes('CONFLICT:')).length;
    } catch {
      // no log
    }
  }
  return n;
}

/** The first of `hosts` that takes writes (as libpq's target_session_attrs=read-write picks one; node-postgres has
 *  no multi-host connection strings). */
async function connectWritable(hosts: readonly Endpoint[]): Promise<pg.Client> {
  for (const h of hosts) {
    const c = new pg.Client({
      host: h.host,
      port: h.port,
      user: 'postgres',
      password: h.password,
      database: 'postgres',
      connectionTimeoutMillis: 2000,
      query_timeout: 5000,
    });
    c.on('error', () => {});
    try {
      await c.connect();
      if ((await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === false) return c;
    } catch {
      // try the next host
    }
    await c.end().catch(() => {});
  }
  throw new Error(`no writable host among ${hosts.map((h) => h.port).join(', ')}`);
}

/** A writer inserting one row every 20 ms into whichever of `hosts` takes writes, noting every ack. */
function writer(name: string, hosts: Endpoint[], site: number) {
  let stop = false;
  const acks: number[] = [];
  /** The port of the host that acknowledged each write. */
  const ports: number[] = [];
  let longestGap = 0;
  let errors = 0;
  const run = (async () => {
    let c: pg.Client | null = null;
    let last = performance.now();
    let id = 0;
    while (!stop) {
      try {
        if (!c) c = await connectWritable(hosts);
        const key = site * 1_000_000_000 + ++id;
        await c.query('INSERT INTO bench_rows (id, site, v) VALUES ($1, $2, $3)', [key, site, name]);
        acks.push(key);
        ports.push(c.port as number);
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
      } catch {
        errors++;
        await c?.end().catch(() => {});
        c = null;
      }
      await sleep(20);
    }
    await c?.end().catch(() => {});
    longestGap = Math.max(longestGap, performance.now() - last);
  })();
  return {
    acks,
    ports,
    async stop() {
      stop = true;
      await run;
      return { longestGapS: longestGap / 1000, errors };
    },
  };
}

async function failoverPhase(o: Options): Promise<Record<string, unknown>> {
  await using m = await startMesh(2, 2);
  // Synchronous replication inside site1, so its failover loses no acknowledged write of its own (issue 13).
  const sync = await cli(
    ['ctl', '--dir', join(m.dir, 'site1'), 'edit-config', '--set', 'synchronous_mode=true', '--force'],
    60_000,
  );
  if (sync.code !== 0) throw new Error(`synchronous_mode on site1: ${sync.stderr}`);
  await sleep(5000);
  const site1Members = [1, 2].map((n) => endpointOf(join(m.dir, 'site1'), `site1/node${n}`, n));
  const site2Members = [1, 2].map((n) => endpointOf(join(m.dir, 'site2'), `site2/node${n}`, n));
  const w1 = writer('w1', site1Members, 1);
  const w2 = writer('w2', site2Members, 2);
  await sleep(5000);
  // site1's leader: the member whose PostgreSQL is not in recovery.
  let leaderNode = 1;
  for (const [i, e] of site1Members.entries())
    if ((await query(e, 'SELECT pg_is_in_recovery() AS r'))[0]?.['r'] === false) leaderNode = i + 1;
  const nodeDir = join(m.dir, 'site1', `node${leaderNode}`);
  const t0 = performance.now();
  for (const f of ['agent.pid', 'data/postmaster.pid']) {
    const pid = Number(readFileSync(join(nodeDir, f), 'utf8').split('\n')[0]);
    if (pid > 0 && pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  // Back when a write is acknowledged by another member (an orphaned backend of the killed postmaster may still
  // commit for a moment: its commit waited for the synchronous standby, so the row is safe, but it is not a failover).
  const killedPort = site1Members[leaderNode - 1]?.port;
  const from = w1.ports.length;
  while (!w1.ports.slice(from).some((p) => p !== killedPort) && performance.now() - t0 < 90_000) await sleep(50);
  const site1Back = (performance.now() - t0) / 1000;
  await sleep(Math.max(5, o.seconds) * 1000);
  const r1 = await w1.stop();
  const r2 = await w2.stop();
  const check = await cli(['mesh', 'check', '--dir', m.dir, '--timeout', '60'], 180_000);
  const survivor = site1Members[2 - leaderNode] as Endpoint;
  const missing = async (e: Endpoint, keys: number[]) => {
    const have = new Set(
      (await query(e, 'SELECT id FROM bench_rows WHERE id = ANY($1::bigint[])', [keys])).map((r) => Number(r['id'])),
    );
    return keys.filter((k) => !have.has(k)).length;
  };
  const all = [...w1.acks, ...w2.acks];
  return {
    killed: `site1/node${leaderNode}`,
    site1_writes_back_s: site1Back,
    site1_longest_gap_s: r1.longestGapS,
    site2_longest_gap_s: r2.longestGapS,
    site2_errors: r2.errors,
    acknowledged: all.length,
    missing_on_site1: await missing(survivor, all),
    missing_on_site2: await missing(site2Members[0] as Endpoint, all).catch(() => null),
    mesh_check_exit: check.code,
    mesh_check: `${check.stdout}${check.stderr}`.trim().split('\n').slice(0, 4).join(' | '),
  };
}

const fmt = (n: number | null | undefined, d = 0) => (n === null || n === undefined ? '–' : n.toFixed(d));

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const results: Record<string, unknown> = {
    started: new Date().toISOString(),
    seconds: o.seconds,
    clients: o.clients,
  };
  const save = () => writeFileSync(o.out, `${JSON.stringify(results, null, 2)}\n`);
  const phase = async <T>(name: Phase, fn: () => Promise<T>) => {
    if (!o.phases.includes(name)) return;
    const release = o.lock ? await acquireLock(o.lock) : async () => {};
    try {
      process.stdout.write(`${name}: running\n`);
      const r = await fn();
      results[name] = r;
      process.stdout.write(`${name}: ${JSON.stringify(r)}\n`);
    } catch (err) {
      results[name] = { error: (err as Error).message };
      process.stdout.write(`${name}: FAILED ${(err as Error).message}\n`);
    } finally {
      await release();
      save();
    }
  };
  await phase('alone', async () => {
    await using m = await startMesh(0);
    return { tps: (await insertLoad(m, m.sites, o)).tps[0] };
  });
  for (const [name, n] of [
    ['mesh2', 2],
    ['mesh3', 3],
  ] as const)
    await phase(name, async () => {
      await using m = await startMesh(n);
      const one = await insertLoad(m, [m.sites[0] as Endpoint], o);
      const every = await insertLoad(m, m.sites, o);
      return {
        site1_only_tps: one.tps[0],
        site1_only_converged_s: one.converged_s,
        all_sites_tps: every.tps,
        all_sites_converged_s: every.converged_s,
      };
    });
  await phase('conflicts', async () => {
    await using m = await startMesh(3);
    await query(m.sites[0] as Endpoint, 'INSERT INTO bench_hot SELECT g, 0 FROM generate_series(1, 50) g');
    await sleep(2000);
    const before = await conflictLines(m);
    const runs = await Promise.all(m.sites.map((e) => pgbench(e, HOT_SCRIPT, o.seconds, o.clients, {})));
    const committed = runs.reduce((a, r) => a + r.transactions, 0);
    // Converged when every site has the same sum (polled, at most 120 s).
    const t0 = performance.now();
    let sums: number[] = [];
    while (performance.now() - t0 < 120_000) {
      sums = await Promise.all(
        m.sites.map(async (e) => Number((await query(e, 'SELECT sum(n) AS s FROM bench_hot'))[0]?.['s'])),
      );
      if (sums.every((s) => s === sums[0])) break;
      await sleep(100);
    }
    const conflicts = (await conflictLines(m)) - before;
    return {
      committed_increments: committed,
      final_sums: sums,
      lost_increments: committed - (sums[0] ?? 0),
      conflicts_logged: conflicts,
      conflicts_per_s: conflicts / o.seconds,
      tps: runs.map((r) => r.tps),
    };
  });
  await phase('failover', () => failoverPhase(o));

  const alone = (results['alone'] as { tps?: number } | undefined)?.tps ?? null;
  const ratio = (t: number | undefined) => (alone && t ? `${((100 * t) / alone).toFixed(0)} %` : '–');
  process.stdout.write(`\nmesh benchmark: ${o.seconds} s per load, ${o.clients} pgbench clients per site\n`);
  process.stdout.write(`  anchor: one site alone, single-row INSERTs: ${fmt(alone)} tps\n`);
  for (const name of ['mesh2', 'mesh3'] as const) {
    const r = results[name] as
      | {
          site1_only_tps?: number;
          site1_only_converged_s?: number | null;
          all_sites_tps?: number[];
          all_sites_converged_s?: number | null;
        }
      | undefined;
    if (!r?.site1_only_tps) continue;
    process.stdout.write(
      `  ${name}: site1 only ${fmt(r.site1_only_tps)} tps (${ratio(r.site1_only_tps)} of alone), converged ${fmt(r.site1_only_converged_s, 2)} s after load;` +
        ` every site at once ${r.all_sites_tps?.map((t) => fmt(t)).join(' / ')} tps (site1 ${ratio(r.all_sites_tps?.[0])} of alone), converged ${fmt(r.all_sites_converged_s, 2)} s after\n`,
    );
  }
  const c = results['conflicts'] as Record<string, number> | undefined;
  if (c && c['committed_increments'] !== undefined)
    process.stdout.write(
      `  conflicts: 3 sites incrementing 50 shared rows: ${fmt(c['conflicts_per_s'], 1)} conflicts/s logged, ${c['lost_increments']} of ${c['committed_increments']} committed increments lost\n`,
    );
  const f = results['failover'] as Record<string, number | string> | undefined;
  if (f && f['killed'] !== undefined)
    process.stdout.write(
      `  failover of site1 (${f['killed']} SIGKILLed): site2's longest write gap ${fmt(f['site2_longest_gap_s'] as number, 2)} s (${f['site2_errors']} errors); site1 writes back after ${fmt(f['site1_writes_back_s'] as number, 1)} s; acknowledged rows missing: site1 ${f['missing_on_site1']}, site2 ${f['missing_on_site2']}; mesh check exit ${f['mesh_check_exit']}\n`,
    );
  process.stdout.write(`results: ${o.out}\n`);
}

await main();
