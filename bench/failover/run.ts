/**
 * Failover benchmark, pgkeel beside Patroni 3.0.2 (issue 3 item 8). A benchmark, not a test: it prints figures
 * and never fails on a timing.
 *
 *   node dist/bench/failover/run.js [--trials N] [--scenarios node-crash,pg-crash,switchover,sync-node-crash]
 *                                   [--systems pgkeel,patroni,patroni-defaults] [--out FILE] [--lock FILE|none]
 *   node dist/bench/failover/run.js --report [--out FILE]      (print the table from a results file)
 *
 * Each block (one system × one scenario × its trials, on a fresh cluster) runs while holding an flock on
 * /tmp/pgkeel-heavy.lock, so the measurements do not share the CPU with other heavy jobs on the machine.
 * `patroni-defaults` (Patroni's own timers, for reference) runs the node-crash scenario only; `node-freeze` runs
 * only when named in --scenarios.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../test/helpers/cluster.js';
import { acquireLock } from '../lib/lock.js';
import { SYSTEMS, type BenchCluster, type SystemName, type Timers } from './cluster.js';
import { HAPROXY_BIN } from './haproxy.js';
import { PATRONI_BIN, startPatroni } from './patroni-cluster.js';
import { startPgkeel } from './pgkeel-cluster.js';
import { loadResults, saveBlock, table } from './report.js';
import { DEFAULT_SCENARIOS, runBlock, SCENARIOS, type ScenarioName } from './scenarios.js';

const USAGE = `usage: node dist/bench/failover/run.js [--trials N] [--scenarios ${SCENARIOS.join(',')}] [--systems ${SYSTEMS.join(',')}] [--out FILE] [--lock FILE|none] [--report]`;

interface Options {
  trials: number;
  scenarios: ScenarioName[];
  systems: SystemName[];
  out: string;
  lock: string | null;
  reportOnly: boolean;
}

function listOf<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (bad.length || items.length === 0)
    throw new Error(`unknown ${what} "${bad.join(',')}"; expected some of ${allowed.join(',')}`);
  return items as T[];
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    trials: 3,
    scenarios: [...DEFAULT_SCENARIOS],
    systems: [...SYSTEMS],
    out: join(repoRoot, 'bench', 'failover', `results-${new Date().toISOString().slice(0, 10)}.json`),
    lock: '/tmp/pgkeel-heavy.lock',
    reportOnly: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--trials') o.trials = Number(value());
    else if (a === '--scenarios') o.scenarios = listOf(value(), SCENARIOS, 'scenario');
    else if (a === '--systems') o.systems = listOf(value(), SYSTEMS, 'system');
    else if (a === '--out') o.out = value();
    else if (a === '--lock') o.lock = value() === 'none' ? null : (argv[i] as string);
    else if (a === '--report') o.reportOnly = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.trials) || o.trials < 1) throw new Error('--trials must be a positive integer');
  return o;
}

/** pgkeel's defaults (src/config/node.ts) for pgkeel and the matched Patroni; Patroni's own for the reference. */
const TIMERS: Record<SystemName, Timers> = {
  pgkeel: { ttl: 10, loop_wait: 1, retry_timeout: 3 },
  patroni: { ttl: 10, loop_wait: 1, retry_timeout: 3 },
  'patroni-defaults': { ttl: 30, loop_wait: 10, retry_timeout: 10 },
};

function starter(system: SystemName): () => Promise<BenchCluster> {
  if (system === 'pgkeel') return startPgkeel;
  if (system === 'patroni') return () => startPatroni(TIMERS.patroni);
  return () => startPatroni(null);
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const results = loadResults(o.out);
  if (o.reportOnly) {
    console.log(table(results));
    return 0;
  }
  for (const bin of [HAPROXY_BIN, ...(o.systems.some((s) => s.startsWith('patroni')) ? [PATRONI_BIN] : [])]) {
    if (!existsSync(bin)) {
      console.error(`${bin} is missing: apt-get install -y haproxy patroni (see bench/failover/README.md)`);
      return 2;
    }
  }
  const log = (l: string) => console.log(l);
  // Interrupted (Ctrl-C, timeout): dispose of what the current block started — clusters and HAProxy are killed
  // by pid — before exiting, so nothing is left running.
  const live: AsyncDisposable[] = [];
  let release = async () => {};
  const track = <T extends AsyncDisposable>(r: T): T => (live.push(r), r);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void (async () => {
        for (const r of live.reverse()) await Promise.resolve(r[Symbol.asyncDispose]()).catch(() => {});
        await release();
        process.exit(130);
      })();
    });
  }
  // Scenario by scenario, the systems one after the other: both columns of a row are measured close in time.
  for (const scenario of o.scenarios) {
    for (const system of o.systems) {
      if (system === 'patroni-defaults' && scenario !== 'node-crash') continue;
      release = o.lock ? await acquireLock(o.lock) : async () => {};
      try {
        const block = await runBlock(starter(system), system, scenario, o.trials, log, track);
        saveBlock(o.out, results, block);
      } catch (err) {
        log(`${system} / ${scenario}: block failed: ${(err as Error).stack ?? String(err)}`);
        saveBlock(o.out, results, {
          system,
          scenario,
          timers: TIMERS[system],
          trials: [],
          skipped: `setup failed: ${(err as Error).message.split('\n')[0]}`,
        });
      } finally {
        live.length = 0;
        await release();
        release = async () => {};
      }
    }
  }
  console.log(`\nresults: ${o.out}\n`);
  console.log(table(results));
  return 0;
}

process.exitCode = await main();
