/**
 * `pgkeel drill`'s rounds on a running cluster (docs/drill.md): wait until the cluster is healthy, write with the
 * probe for 2 s, inject the fault through the members' REST APIs (the ctl client's DCS reads and REST calls), wait
 * until it heals, then read back what the leader kept. Measurements are measure.ts's pure functions; printing is
 * the CLI's.
 */
import type { CtlClient } from '../ctl/client.js';
import { switchover } from '../ctl/commands.js';
import type { Cluster, Member } from '../dcs/layout.js';
import { DrillError } from './errors.js';
import {
  healVerdict,
  measureRound,
  memberHealth,
  type HealVerdict,
  type MemberHealth,
  type RoundResult,
} from './measure.js';
import type { Probe } from './probe.js';

export const SCENARIOS = ['kill-leader', 'switchover', 'partition-leader'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface DrillOptions {
  readonly scenario: Scenario;
  readonly rounds: number;
  readonly healTimeoutMs: number;
  /** How long a killed or isolated leader stays down; null: ttl + 10 s (the lease expires while it is down). */
  readonly faultSeconds: number | null;
}

export interface DrillIo {
  /** A finished round (the CLI prints it). */
  round(r: RoundResult, of: number): void;
  /** Progress, for a human watching (stderr). */
  progress(line: string): void;
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface DrillRun {
  readonly members: readonly string[];
  readonly synchronous: boolean;
  readonly faultSeconds: number | null;
  readonly rounds: readonly RoundResult[];
}

/** Writes before the fault: the probe must have shown the cluster takes writes. */
const WRITE_BEFORE_FAULT_MS = 2000;
const POLL_MS = 500;

/** Every member with a REST address, as recorded at the drill's start (a crashed member's record expires). */
function membersOf(c: Cluster): Map<string, Member> {
  return new Map([...c.members].filter(([, m]) => m.record.api_url));
}

async function healthOf(client: CtlClient, m: Member): Promise<MemberHealth | null> {
  try {
    const a = await client.rest(m, 'GET', '/patroni', undefined, 2000);
    return a.code === 200 || a.code === 503 ? memberHealth(a.text) : null;
  } catch {
    return null;
  }
}

async function verdictNow(
  client: CtlClient,
  members: ReadonlyMap<string, Member>,
): Promise<HealVerdict & { leader?: string }> {
  let c: Cluster;
  try {
    c = await client.cluster();
  } catch (err) {
    return { healed: false, why: (err as Error).message };
  }
  const health = new Map<string, MemberHealth | null>();
  await Promise.all([...members.values()].map(async (m) => health.set(m.name, await healthOf(client, m))));
  const leader = c.leader?.name;
  return { ...healVerdict([...members.keys()], leader, health), ...(leader ? { leader } : {}) };
}

/** Polls until healed and `ready()`; the verdict, with when it came (null: the deadline passed first). */
async function waitHealed(
  client: CtlClient,
  members: ReadonlyMap<string, Member>,
  io: DrillIo,
  deadline: number,
  ready: () => boolean = () => true,
): Promise<{ at: number | null; leader?: string; why: string }> {
  let said = '';
  for (;;) {
    const v = ready() ? await verdictNow(client, members) : { healed: false, why: 'the fault is still in force' };
    if (v.healed) return { at: io.now(), ...(v.leader ? { leader: v.leader } : {}), why: '' };
    if (v.why !== said) io.progress(`waiting: ${v.why}`);
    said = v.why;
    if (io.now() >= deadline) return { at: null, why: v.why };
    await io.sleep(POLL_MS);
  }
}

async function inject(
  client: CtlClient,
  scenario: Scenario,
  leader: string,
  seconds: number,
  io: DrillIo,
): Promise<string> {
  if (scenario === 'switchover') {
    await switchover(
      client,
      // ctl prints the member table before and after; the drill keeps only its timestamped result line.
      {
        out: (l) => (/^\d{4}-\d\d-\d\d /.test(l) ? io.progress(l) : undefined),
        confirm: async () => true,
        now: io.now,
        sleep: io.sleep,
      },
      { leader, force: true },
    );
    return `switchover from ${leader}`;
  }
  const fault = scenario === 'kill-leader' ? 'crash' : 'isolate';
  const m = (await client.cluster()).members.get(leader);
  if (!m) throw new DrillError('DRILL_FAULT_REFUSED', `the leader ${leader} has no member record to reach it by`);
  const a = await client.rest(m, 'POST', '/drill', { fault, seconds }, 30_000);
  if (a.code !== 200)
    throw new DrillError(
      'DRILL_FAULT_REFUSED',
      `member ${leader} refused POST /drill (${fault}): HTTP ${a.code}: ${a.text.trim()}`,
    );
  return a.text.trim();
}

async function oneRound(
  client: CtlClient,
  probe: Probe,
  o: DrillOptions,
  members: ReadonlyMap<string, Member>,
  seconds: number,
  round: number,
  io: DrillIo,
): Promise<RoundResult> {
  const before = await waitHealed(client, members, io, io.now() + o.healTimeoutMs);
  if (before.at === null || !before.leader)
    throw new DrillError('DRILL_NOT_HEALTHY', `the cluster is not healthy before round ${round}: ${before.why}`);
  const oldLeader = before.leader;
  probe.start(round);
  let faultAt = 0;
  let healed: { at: number | null; leader?: string; why: string };
  let what: string;
  try {
    await io.sleep(WRITE_BEFORE_FAULT_MS);
    if (probe.acked().length === 0)
      throw new DrillError(
        'DRILL_NO_WRITES',
        `the probe could not write in ${WRITE_BEFORE_FAULT_MS / 1000} s before the fault (${probe.failures} failed attempts)`,
      );
    faultAt = io.now();
    what = await inject(client, o.scenario, oldLeader, seconds, io);
    io.progress(`round ${round}: ${what}`);
    const faultEnd = o.scenario === 'switchover' ? io.now() : faultAt + seconds * 1000;
    const recovered = () => io.now() >= faultEnd && probe.acked().some((a) => a.at > faultAt);
    healed = await waitHealed(client, members, io, faultEnd + o.healTimeoutMs, recovered);
  } finally {
    await probe.stop();
  }
  const acks = probe.acked();
  const present = await probe.present(round);
  const m = measureRound(acks, faultAt, present);
  return {
    round,
    scenario: o.scenario,
    oldLeader,
    newLeader: healed.leader ?? null,
    healed: healed.at !== null,
    healMs: healed.at === null ? null : healed.at - faultAt,
    note: healed.at === null ? `not healed within ${o.healTimeoutMs / 1000} s: ${healed.why}` : '',
    ...m,
  };
}

/** Runs the rounds; stops early after a round that did not heal (the next would start on a broken cluster). */
export async function runDrill(client: CtlClient, probe: Probe, o: DrillOptions, io: DrillIo): Promise<DrillRun> {
  const c = await client.cluster();
  const members = membersOf(c);
  const cfg = (c.config?.value ?? {}) as Record<string, unknown>;
  const ttl = typeof cfg['ttl'] === 'number' ? cfg['ttl'] : 30;
  const synchronous = cfg['synchronous_mode'] === true || cfg['synchronous_mode'] === 'quorum';
  const seconds = o.faultSeconds ?? ttl + 10;
  if (members.size < 2)
    throw new DrillError(
      'DRILL_NOT_HEALTHY',
      `cluster ${client.target.scope} has ${members.size} member(s); a drill needs a replica to fail over to`,
    );
  await probe.prepare();
  const rounds: RoundResult[] = [];
  try {
    for (let r = 1; r <= o.rounds; r++) {
      const res = await oneRound(client, probe, o, members, seconds, r, io);
      rounds.push(res);
      io.round(res, o.rounds);
      if (!res.healed) break;
    }
  } finally {
    await probe.cleanup().catch((err: Error) => io.progress(`could not delete the drill's rows: ${err.message}`));
  }
  return {
    members: [...members.keys()].sort(),
    synchronous,
    faultSeconds: o.scenario === 'switchover' ? null : seconds,
    rounds,
  };
}
