/**
 * Results: the raw trials in bench/failover/results-<date>.json (a re-run block replaces that system × scenario,
 * so blocks can be run one at a time), and the side-by-side table printed from them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { SCENARIOS, type BlockResult, type TrialResult } from './scenarios.js';

export interface ResultsFile {
  updated: string;
  host: { cpus: number; node: string };
  method: string;
  blocks: BlockResult[];
}

export const METHOD =
  'one INSERT every 20 ms through HAProxy (OPTIONS /primary, inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1); ' +
  'outage = largest gap between consecutive acknowledged INSERTs around the fault; failed attempts counted from the fault; ' +
  'lost = acknowledged ids missing on the leader afterwards';

export function loadResults(file: string): ResultsFile {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
  return { updated: '', host: { cpus: cpus().length, node: process.version }, method: METHOD, blocks: [] };
}

/** Replaces the block of the same system × scenario (or adds it) and writes the file. */
export function saveBlock(file: string, results: ResultsFile, block: BlockResult): void {
  results.blocks = results.blocks.filter((b) => !(b.system === block.system && b.scenario === block.scenario));
  results.blocks.push(block);
  results.updated = new Date().toISOString();
  results.host = { cpus: cpus().length, node: process.version };
  results.method = METHOD;
  writeFileSync(file, formatResults(results));
}

/** JSON with one line per trial: small, and diffs of a re-run block stay readable. */
function formatResults(r: ResultsFile): string {
  const block = (b: BlockResult) => {
    const { trials, ...head } = b;
    const headText = JSON.stringify(head).slice(0, -1);
    return ` ${headText},"trials":[\n${trials.map((t) => `  ${JSON.stringify(t)}`).join(',\n')}\n ]}`;
  };
  const { blocks, ...top } = r;
  return `${JSON.stringify(top).slice(0, -1)},"blocks":[\n${blocks.map(block).join(',\n')}\n]}\n`;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * When HAProxy first saw the member that leads afterwards UP after the fault (seconds after it): the server-side
 * part of the outage. Null when HAProxy never marked it down and up (a PostgreSQL restart it did not notice).
 */
export function routedAfter(t: TrialResult): number | null {
  for (const e of t.haproxy) {
    const m = /^(-?[\d.]+)s (\S+) UP$/.exec(e);
    if (m && m[2] === t.leader_after && Number(m[1]) >= 0) return Number(m[1]);
  }
  return null;
}

interface Cell {
  n: number;
  routed: number | null;
  outage: number | null;
  min: number | null;
  max: number | null;
  unrecovered: number;
  failed: number | null;
  lost: number;
  skipped?: string;
}

function cell(block: BlockResult | undefined): Cell | null {
  if (!block) return null;
  const outages = block.trials.map((t) => t.outage_s).filter((x): x is number => x !== null);
  return {
    n: block.trials.length,
    routed: median(block.trials.map(routedAfter).filter((x): x is number => x !== null)),
    outage: median(outages),
    min: outages.length ? Math.min(...outages) : null,
    max: outages.length ? Math.max(...outages) : null,
    unrecovered: block.trials.filter((t) => t.outage_s === null).length,
    failed: median(block.trials.map((t) => t.failed_attempts)),
    lost: block.trials.reduce((sum, t: TrialResult) => sum + t.lost_acked, 0),
    ...(block.skipped ? { skipped: block.skipped } : {}),
  };
}

const f = (x: number | null, digits = 2) => (x === null ? '–' : x.toFixed(digits));

function outageText(c: Cell | null): string {
  if (!c) return 'not run';
  if (c.n === 0) return `— (${c.skipped ?? 'no trial'})`;
  const un = c.unrecovered ? `, ${c.unrecovered} never recovered` : '';
  return `${f(c.outage)} [${f(c.min)}–${f(c.max)}] n=${c.n}${un}`;
}

const pair = (a: Cell | null, b: Cell | null, pick: (c: Cell) => string) =>
  `${a && a.n ? pick(a) : '–'} / ${b && b.n ? pick(b) : '–'}`;

export function table(results: ResultsFile): string {
  const find = (system: string, scenario: string) =>
    results.blocks.find((b) => b.system === system && b.scenario === scenario);
  const rows: string[][] = [];
  const row = (label: string, k: Cell | null, p: Cell | null) => {
    const ratio = k?.outage && p?.outage ? `${(p.outage / k.outage).toFixed(1)}×` : '–';
    rows.push([
      label,
      outageText(k),
      outageText(p),
      ratio,
      pair(k, p, (c) => f(c.routed)),
      pair(k, p, (c) => f(c.failed, 0)),
      pair(k, p, (c) => String(c.lost)),
    ]);
  };
  for (const s of SCENARIOS) {
    const [k, p] = [cell(find('pgkeel', s)), cell(find('patroni', s))];
    if (k || p) row(s, k, p);
  }
  const ref = cell(find('patroni-defaults', 'node-crash'));
  if (ref) row('node-crash, Patroni ttl 30/loop 10/retry 10', cell(find('pgkeel', 'node-crash')), ref);
  const head = [
    'scenario',
    'pgkeel outage s median [min–max]',
    'Patroni outage s median [min–max]',
    'ratio Patroni/pgkeel',
    'leader UP in HAProxy s median pgkeel / Patroni',
    'failed attempts median pgkeel / Patroni',
    'lost acked ids total pgkeel / Patroni',
  ];
  const lines = [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`);
  const timers = [
    ...new Set(
      results.blocks.map(
        (b) =>
          `${b.system}: ttl ${b.timers.ttl} / loop_wait ${b.timers.loop_wait} / retry_timeout ${b.timers.retry_timeout}`,
      ),
    ),
  ];
  return [...lines, '', `timers — ${timers.sort().join('; ')}`].join('\n');
}
