/**
 * The chaos benchmark (issue 13 item 4): every scenario of the multi-host fault catalogue (test/hosts/faults.ts),
 * round-robin, on one 3-host cluster made of network namespaces, until `--trials` trials have run (default 104:
 * 13 of each of the 8 scenarios). A measurement, not a test: it prints a line per trial and the table, and never fails
 * on a timing. Results go to a JSON file so the table can be printed again (`--report`).
 *
 *   node dist/bench/chaos/run.js [--trials N] [--scenarios a,b] [--async] [--out FILE] [--lock FILE|none]
 *   node dist/bench/chaos/run.js --report [--out FILE]
 *
 * Each round of scenarios holds the flock on /tmp/pgkeel-heavy.lock (`--lock none` to skip). A trial whose cluster
 * does not heal is recorded as such (with the agents' last log lines) and the cluster is rebuilt. Needs root.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHostCluster, type HostCluster } from '../../test/hosts/cluster.js';
import { CATALOGUE, problems, runTrial, SCENARIOS, type ScenarioName, type Trial } from '../../test/hosts/faults.js';
import { available } from '../../test/hosts/net.js';
import { repoRoot } from '../../test/helpers/cluster.js';
import { acquireLock } from '../lib/lock.js';

interface Options {
  trials: number;
  scenarios: ScenarioName[];
  sync: boolean;
  out: string;
  lock: string | null;
  report: boolean;
}

interface Record_ {
  readonly trial: Trial | null;
  readonly scenario: ScenarioName;
  /** Set when the cluster did not heal (the trial threw). */
  readonly failure: string | null;
  readonly problems: readonly string[];
}

interface Results {
  readonly started: string;
  readonly sync: boolean;
  readonly records: Record_[];
}

function options(argv: string[]): Options {
  const o: Options = {
    trials: 104,
    scenarios: [...SCENARIOS],
    sync: true,
    out: join(repoRoot, 'bench', 'chaos', `results-${new Date().toISOString().slice(0, 10)}.json`),
    lock: '/tmp/pgkeel-heavy.lock',
    report: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--trials') o.trials = Number(v());
    else if (a === '--scenarios') {
      const names = v().split(',');
      for (const n of names)
        if (!(SCENARIOS as readonly string[]).includes(n))
          throw new Error(`--scenarios: unknown scenario "${n}" (known: ${SCENARIOS.join(', ')})`);
      o.scenarios = names as ScenarioName[];
    } else if (a === '--async') o.sync = false;
    else if (a === '--out') o.out = v();
    else if (a === '--lock') o.lock = v() === 'none' ? null : (argv[i] as string);
    else if (a === '--report') o.report = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.trials) || o.trials < 1) throw new Error('--trials must be a positive integer');
  return o;
}

function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

const sec = (ms: number | null) => (ms === null ? '–' : (ms / 1000).toFixed(1));

/** The markdown table of bench/chaos/README.md. */
export function table(r: Results): string {
  const rows = [
    '| scenario | trials | healed | new leader s median / p95 | outage via proxy s median / p95 | outage via libpq s median / p95 | split-brain intervals | acknowledged writes lost |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const all = r.records;
  for (const name of SCENARIOS) {
    const recs = all.filter((x) => x.scenario === name);
    if (recs.length === 0) continue;
    const ts = recs.flatMap((x) => (x.trial ? [x.trial] : []));
    const nl = ts.flatMap((t) => (t.newLeaderMs === null ? [] : [t.newLeaderMs]));
    const px = ts.map((t) => t.proxyOutageMs);
    const lq = ts.map((t) => t.libpqOutageMs);
    rows.push(
      `| ${name} | ${recs.length} | ${ts.length}/${recs.length} | ${nl.length ? `${sec(pct(nl, 50))} / ${sec(pct(nl, 95))}` : '– (no failover)'} | ${sec(pct(px, 50))} / ${sec(pct(px, 95))} | ${sec(pct(lq, 50))} / ${sec(pct(lq, 95))} | ${ts.reduce((a, t) => a + t.splitBrainRounds, 0)} | ${ts.reduce((a, t) => a + t.lostAcked, 0)} of ${ts.reduce((a, t) => a + t.acked, 0)} |`,
    );
  }
  const ts = all.flatMap((x) => (x.trial ? [x.trial] : []));
  rows.push(
    `| **all** | ${all.length} | ${ts.length}/${all.length} | | | | ${ts.reduce((a, t) => a + t.splitBrainRounds, 0)} | ${ts.reduce((a, t) => a + t.lostAcked, 0)} of ${ts.reduce((a, t) => a + t.acked, 0)} |`,
  );
  const broken = all.filter((x) => x.problems.length > 0 || x.failure);
  const lines = [rows.join('\n'), ''];
  lines.push(
    `Mode: ${r.sync ? 'synchronous_mode on' : 'asynchronous'}; started ${r.started}. Trials with a broken promise: ${broken.length}.`,
  );
  for (const b of broken)
    lines.push(
      `- ${b.scenario}: ${b.failure ?? ''}${b.failure && b.problems.length ? '; ' : ''}${b.problems.join('; ')}`,
    );
  return lines.join('\n');
}

function line(t: Trial): string {
  return `${t.scenario.padEnd(22)} ${t.from}→${t.during}→${t.after}  new leader ${sec(t.newLeaderMs)} s  outage proxy ${sec(t.proxyOutageMs)} s libpq ${sec(t.libpqOutageMs)} s  healed ${sec(t.healedMs)} s  split-brain ${t.splitBrainRounds}  lost ${t.lostAcked}/${t.acked}${t.notes.length ? `  (${t.notes.join('; ')})` : ''}`;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (o.report) {
    if (!existsSync(o.out)) throw new Error(`no results file ${o.out}`);
    console.log(table(JSON.parse(readFileSync(o.out, 'utf8')) as Results));
    return;
  }
  const why = available();
  if (why) throw new Error(`cannot run: ${why}`);
  const results: Results = { started: new Date().toISOString(), sync: o.sync, records: [] };
  const save = () => writeFileSync(o.out, `${JSON.stringify(results, null, 1)}\n`);
  const needsDisk = o.scenarios.some((s) => CATALOGUE[s].needsDisk);
  const build = () => startHostCluster({ sync: o.sync, ...(needsDisk ? { diskMb: 1024 } : {}) });
  let c: HostCluster | null = null;
  let n = 0;
  // Ctrl-C or kill: everything started is killed by pid and the namespaces removed before exiting.
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      save();
      void Promise.resolve(c?.[Symbol.asyncDispose]()).finally(() => process.exit(130));
    });
  try {
    while (n < o.trials) {
      const release = o.lock ? await acquireLock(o.lock) : async () => {};
      try {
        for (const name of o.scenarios) {
          if (n >= o.trials) break;
          n++;
          if (!c) {
            c = await build();
            await c.waitHealthy(180_000);
          }
          try {
            const t = await runTrial(c, name);
            const p = problems(t, o.sync);
            results.records.push({ trial: t, scenario: name, failure: null, problems: p });
            console.log(`${String(n).padStart(3)} ${line(t)}${p.length ? `  BROKEN: ${p.join('; ')}` : ''}`);
          } catch (err) {
            const failure = `did not heal: ${(err as Error).message.slice(0, 1500)}`;
            results.records.push({ trial: null, scenario: name, failure, problems: [] });
            console.log(`${String(n).padStart(3)} ${name.padEnd(22)} ${failure}`);
            await c[Symbol.asyncDispose]();
            c = null;
          }
          save();
        }
      } finally {
        await release();
      }
    }
  } finally {
    if (c) await (c as HostCluster)[Symbol.asyncDispose]();
  }
  console.log(`\n${table(results)}\n\nresults: ${o.out}`);
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
