/**
 * One measurement block: a fresh cluster of one system, HAProxy in front, then N trials of one scenario. A trial
 * waits for a healthy cluster and writes flowing through HAProxy, injects the fault at t0, waits until writes have
 * flowed again without a failure for 3 s (at least 5 s after t0, at most RECOVERY_LIMIT_MS), then reads the
 * acknowledged ids back from whichever member leads. Between trials the crashed node is brought back.
 *
 *   node-crash       SIGKILL of the leader's agent and its postmaster together
 *   pg-crash         SIGKILL of the leader's postmaster only
 *   switchover       POST /switchover {leader, candidate} to the leader's REST API; the candidate is a replica that
 *                    did not lead in the previous trial (switching straight back measures something else: see README)
 *   sync-node-crash  node-crash with synchronous_mode: true in the DCS config
 *   node-freeze      (opt-in) SIGSTOP of the leader's agent and PostgreSQL processes; once writes flow again on
 *                    a new leader, SIGCONT while the probe keeps writing (a resumed old primary must not take writes)
 *
 * Nothing here fails on a timing: whatever happened is recorded, with a note when it looks wrong.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kill9 } from '../../test/helpers/scenario.js';
import { leaderByRest, query, waitFor, waitHealthy, type BenchCluster } from './cluster.js';
import { freeze } from './freeze.js';
import { Haproxy, type Backend } from './haproxy.js';
import { HaproxyProbe, now, PROBE_DDL, PROBE_TABLE } from './probe.js';

export const SCENARIOS = ['node-crash', 'pg-crash', 'switchover', 'sync-node-crash', 'node-freeze'] as const;
/** What runs without --scenarios: node-freeze is an extra, asked for by name. */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = ['node-crash', 'pg-crash', 'switchover', 'sync-node-crash'];
export type ScenarioName = (typeof SCENARIOS)[number];

const RECOVERY_LIMIT_MS = 120_000;
const WARMUP_LIMIT_MS = 60_000;

export interface TrialResult {
  system: string;
  scenario: ScenarioName;
  trial: number;
  /** Longest gap between two acknowledged writes around the fault; null when writes never came back. */
  outage_s: number | null;
  failed_attempts: number;
  acked: number;
  lost_acked: number;
  lost_ids: number[];
  leader_before: string;
  leader_after: string | null;
  /** HAProxy's view during the trial: "+0.51s node1 DOWN", "+2.80s node2 UP" (relative to the fault). */
  haproxy: string[];
  switchover?: { code: number | null; body: string };
  note?: string;
}

export interface BlockResult {
  system: string;
  scenario: ScenarioName;
  timers: BenchCluster['timers'];
  trials: TrialResult[];
  /** Set when the block could not run its trials (the system does not support the scenario, or setup failed). */
  skipped?: string;
}

interface SwitchoverAnswer {
  code: number | null;
  body: string;
}

/** Basic auth for a `pgkeel up` cluster's REST API (its cluster.json holds the generated credentials); none for Patroni. */
function restAuthHeaders(dir: string): Record<string, string> {
  const file = join(dir, 'cluster.json');
  if (!existsSync(file)) return {};
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { restapi?: { username: string; password: string } };
  if (!saved.restapi?.password) return {};
  const token = Buffer.from(`${saved.restapi.username}:${saved.restapi.password}`).toString('base64');
  return { authorization: `Basic ${token}` };
}

async function postSwitchover(
  apiPort: number,
  leader: string,
  candidate: string,
  auth: Record<string, string>,
): Promise<SwitchoverAnswer> {
  try {
    const res = await fetch(`http://127.0.0.1:${apiPort}/switchover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ leader, candidate }),
      signal: AbortSignal.timeout(60_000),
    });
    return { code: res.status, body: (await res.text()).trim().slice(0, 200) };
  } catch (err) {
    return { code: null, body: (err as Error).message };
  }
}

const seconds = (ms: number) => Math.round(ms) / 1000;

/** Waits until writes have flowed for 3 s without a failure, at least `minMs` after `from`. */
async function flowingAgain(probe: HaproxyProbe, from: number, minMs: number, notes: string[]): Promise<void> {
  await waitFor(
    'writes flowing again',
    async () => (now() - from >= minMs && probe.flowing(3000)) || undefined,
    RECOVERY_LIMIT_MS,
  ).catch(() => notes.push(`writes not flowing again within ${RECOVERY_LIMIT_MS / 1000} s`));
}

interface Injected {
  /** Lets frozen processes run again (a no-op for the other scenarios). */
  readonly thaw: () => void;
  readonly switchover?: SwitchoverAnswer;
  readonly note?: string;
}

/** Injects the fault into the current leader. */
async function inject(
  c: BenchCluster,
  scenario: ScenarioName,
  leader: Backend,
  previousLeader: string | undefined,
): Promise<Injected> {
  const noop = () => {};
  if (scenario === 'switchover') {
    const replicas = c.nodes.filter((n) => n !== leader);
    const candidate = (replicas.find((n) => n.name !== previousLeader) ?? replicas[0])?.name ?? '';
    return {
      thaw: noop,
      switchover: await postSwitchover(leader.apiPort, leader.name, candidate, restAuthHeaders(c.dir)),
    };
  }
  if (scenario === 'node-freeze') return { thaw: freeze(c.agentPid(leader.name), c.postmasterPid(leader.name)) };
  // Both pids are read before either is killed: "together" means in the same tick.
  const pids =
    scenario === 'pg-crash' ? [c.postmasterPid(leader.name)] : [c.agentPid(leader.name), c.postmasterPid(leader.name)];
  kill9(...pids);
  return { thaw: noop, ...(pids.includes(null) ? { note: `missing pid to kill: ${pids.join(',')}` } : {}) };
}

async function runTrial(
  c: BenchCluster,
  haproxy: Haproxy,
  scenario: ScenarioName,
  trial: number,
  previousLeader: string | undefined,
  log: (l: string) => void,
): Promise<TrialResult> {
  const sync = scenario === 'sync-node-crash';
  const before = await waitHealthy(c, sync, 180_000);
  const leader = before.leader;
  const probe = new HaproxyProbe(
    { port: haproxy.port, user: c.user, password: c.password },
    `${c.system}/${scenario}/${trial}`,
  );
  const notes: string[] = [];
  let injected: Injected | undefined;
  let t0 = 0;
  let after: Backend | undefined;
  let ids: Set<number> | null = null;
  probe.start(WARMUP_LIMIT_MS + RECOVERY_LIMIT_MS + 90_000);
  try {
    try {
      await waitFor('writes flowing through HAProxy', async () => probe.flowing(2000) || undefined, WARMUP_LIMIT_MS);
      t0 = now();
      injected = await inject(c, scenario, leader, previousLeader);
      if (injected.note) notes.push(injected.note);
      await flowingAgain(probe, t0, 5000, notes);
      if (scenario === 'node-freeze') {
        // The frozen leader wakes up while clients write: it must not accept writes again (they would be lost).
        injected.thaw();
        await flowingAgain(probe, now(), 8000, notes);
      }
    } finally {
      await probe.stop();
    }
    after = await waitFor('a leader after the fault', () => leaderByRest(c), 60_000).catch(() => undefined);
    if (after)
      ids = new Set(
        (await query(c, after.pgPort, `SELECT id FROM ${PROBE_TABLE} WHERE trial = $1`, [probe.trial])).map(
          (r) => r['id'] as number,
        ),
      );
  } finally {
    injected?.thaw();
  }
  const lost = ids ? probe.acks.filter((a) => !ids?.has(a.id)).map((a) => a.id) : [];
  const outage = probe.outageMs(t0);
  const moves = scenario !== 'pg-crash';
  if (after && moves && after.name === leader.name) notes.push(`${leader.name} still leads after the ${scenario}`);
  if (after && !moves && after.name !== leader.name)
    notes.push(`a postgres crash moved the leader from ${leader.name} to ${after.name}`);
  if (sync && before.syncStandby && after && after.name !== before.syncStandby)
    notes.push(`promoted ${after.name}, not the sync standby ${before.syncStandby}`);
  const result: TrialResult = {
    system: c.system,
    scenario,
    trial,
    outage_s: outage === null ? null : seconds(outage),
    failed_attempts: probe.failures.filter((t) => t >= t0).length,
    acked: probe.acks.length,
    lost_acked: lost.length,
    lost_ids: lost.slice(0, 10),
    leader_before: leader.name,
    leader_after: after?.name ?? null,
    haproxy: haproxy.eventsBetween(t0 - 1000, now(), t0).slice(0, 12),
    ...(injected?.switchover ? { switchover: injected.switchover } : {}),
    ...(notes.length ? { note: notes.join('; ') } : {}),
  };
  log(
    `  trial ${trial}: outage ${result.outage_s ?? '∞'} s, ${result.failed_attempts} failed, ${result.lost_acked} lost of ${result.acked}, ${leader.name} → ${after?.name ?? '?'}${result.note ? ` (${result.note})` : ''}`,
  );
  log(`    haproxy: ${result.haproxy.join(', ') || '(no change)'}`);
  return result;
}

/** Brings a crashed node back and waits until the cluster is whole again. */
async function recover(c: BenchCluster, scenario: ScenarioName, log: (l: string) => void): Promise<void> {
  const t = now();
  if (scenario !== 'switchover' && scenario !== 'pg-crash') await c.restartStopped();
  const h = await waitHealthy(c, scenario === 'sync-node-crash', 180_000);
  log(
    `  healthy again after ${seconds(now() - t)} s (leader ${h.leader.name}${h.syncStandby ? `, sync ${h.syncStandby}` : ''})`,
  );
}

/** Registers a resource so that run.ts can dispose of it if the process is interrupted; returns it. */
export type Track = <T extends AsyncDisposable>(resource: T) => T;

export async function runBlock(
  start: () => Promise<BenchCluster>,
  system: string,
  scenario: ScenarioName,
  trials: number,
  log: (l: string) => void,
  track: Track,
): Promise<BlockResult> {
  const t = now();
  await using c = track(await start());
  log(`${system} / ${scenario}: cluster up in ${seconds(now() - t)} s (${c.dir})`);
  const block: BlockResult = { system, scenario, timers: c.timers, trials: [] };
  const h = await waitHealthy(c, false);
  await query(c, h.leader.pgPort, PROBE_DDL);
  if (scenario === 'sync-node-crash') {
    await c.patchConfig({ synchronous_mode: true });
    const s = await waitHealthy(c, true, 60_000);
    log(`  synchronous mode on: ${s.leader.name} with sync standby ${s.syncStandby}`);
  }
  await using haproxy = track(await Haproxy.start(c.dir, c.nodes));
  for (let i = 1; i <= trials; i++) {
    let r: TrialResult;
    try {
      r = await runTrial(c, haproxy, scenario, i, block.trials.at(-1)?.leader_before, log);
    } catch (err) {
      log(`  trial ${i} failed to run: ${(err as Error).message}`);
      for (const n of c.nodes) log(`--- ${n.name} log tail\n${c.logTail(n.name, 25)}`);
      block.skipped = `trial ${i} could not run: ${(err as Error).message.split('\n')[0]}`;
      break;
    }
    if (r.switchover?.code === 501) {
      block.skipped = `POST /switchover answered 501: ${r.switchover.body}`;
      break;
    }
    block.trials.push(r);
    if (r.note)
      for (const n of c.nodes) log(`--- ${n.name} log tail (trial ${i}: ${r.note})\n${c.logTail(n.name, 25)}`);
    if (i < trials) await recover(c, scenario, log);
  }
  return block;
}
