/**
 * The multi-host fault catalogue (issue 13 item 4), shared by the namespace test suite (test/scenarios/faults.test.ts)
 * and the chaos benchmark (bench/chaos): each scenario injects one fault into a healthy HostCluster and returns how to
 * heal it; `runTrial` runs one scenario under three clients and reports what they saw.
 *
 * During every trial, from the root namespace:
 * - a `SplitBrainChecker` writes to every node directly every 100 ms (two acknowledgements in one round = split brain);
 * - a `ProxyWriter` writes through the proxy every 20 ms;
 * - a `LibpqWriter` writes every 20 ms through libpq's multi-host failover (`target_session_attrs=read-write`).
 * After the heal the trial waits for one leader with both replicas streaming, then counts the acknowledged writes of
 * both clients that the leader does not have (0 is the promise in synchronous mode).
 */
import { sleep } from '../../src/lib/proc.js';
import { LibpqWriter, ProxyWriter, SplitBrainChecker } from './checker.js';
import { ETCDS, NODES, type HostCluster } from './cluster.js';
import { DelayRelay } from './delay.js';

export const SCENARIOS = [
  'leader-vanishes',
  'leader-loses-etcd',
  'leader-loses-replicas',
  'asymmetric-partition',
  'etcd-quorum-loss',
  'etcd-and-leader-die',
  'slow-replication-link',
  'replica-disk-full',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

interface Ctx {
  readonly c: HostCluster;
  readonly leader: string;
  readonly replicas: readonly string[];
  /** Extra facts a scenario reports (e.g. which replica's disk filled). */
  readonly notes: string[];
}

interface Scenario {
  readonly summary: string;
  /** Must another node lead while the fault lasts (true), must the leader stay (false), or is either correct (null)? */
  readonly failover: boolean | null;
  /** How long the fault is held when no failover is awaited, ms. */
  readonly holdMs: number;
  /** Needs `startHostCluster({ diskMb })`. */
  readonly needsDisk?: boolean;
  inject(ctx: Ctx): Promise<() => Promise<void>>;
}

const PG_PORT = 5432;

export const CATALOGUE: Record<ScenarioName, Scenario> = {
  'leader-vanishes': {
    summary: "the leader's host vanishes (its link goes down: packets vanish, nothing refuses)",
    failover: true,
    holdMs: 0,
    async inject({ c, leader }) {
      c.net.linkDown(leader);
      return async () => c.net.linkUp(leader);
    },
  },
  'leader-loses-etcd': {
    summary: 'the leader loses all three etcd members but still reaches its replicas and the clients',
    failover: true,
    holdMs: 0,
    async inject({ c, leader }) {
      c.net.partition(leader, ETCDS);
      return async () => c.net.heal(leader, ETCDS);
    },
  },
  'leader-loses-replicas': {
    summary: 'the leader loses both replicas but still reaches etcd and the clients (held 15 s)',
    failover: false,
    holdMs: 15_000,
    async inject({ c, leader, replicas }) {
      c.net.partition(leader, replicas);
      return async () => c.net.heal(leader, replicas);
    },
  },
  'asymmetric-partition': {
    summary:
      "one direction only: the leader's packets to etcd member e1 and one replica's packets to the leader vanish (held 15 s)",
    failover: false,
    holdMs: 15_000,
    async inject({ c, leader, replicas, notes }) {
      const r = replicas[0] as string;
      notes.push(`${leader}→e1 and ${r}→${leader} dropped`);
      c.net.dropOneWay(leader, ['e1']);
      c.net.dropOneWay(r, [leader]);
      return async () => {
        c.net.healOneWay(leader, ['e1']);
        c.net.healOneWay(r, [leader]);
      };
    },
  },
  'etcd-quorum-loss': {
    summary: 'two of the three etcd members vanish (quorum lost) for 15 s, longer than the leader TTL, then return',
    failover: null,
    holdMs: 15_000,
    async inject({ c }) {
      c.net.linkDown('e2');
      c.net.linkDown('e3');
      return async () => {
        c.net.linkUp('e2');
        c.net.linkUp('e3');
      };
    },
  },
  'etcd-and-leader-die': {
    summary: 'an etcd member and the leader vanish together (one host running both)',
    failover: true,
    holdMs: 0,
    async inject({ c, leader }) {
      c.net.linkDown(leader);
      c.net.linkDown('e1');
      return async () => {
        c.net.linkUp('e1');
        c.net.linkUp(leader);
      };
    },
  },
  'slow-replication-link': {
    summary: 'the replication link gets 200 ms of round-trip latency (100 ms each way) and 5 % packet loss for 20 s',
    failover: false,
    holdMs: 20_000,
    async inject({ c, leader, replicas, notes }) {
      const target = `${c.pgAddr(leader).host}:${PG_PORT}`;
      const relays: DelayRelay[] = [];
      try {
        for (const r of replicas) {
          const relay = await DelayRelay.start(c.net.gateway, target, 100);
          relays.push(relay);
          c.net.redirect(r, target, relay.address);
          c.net.loss(r, relay.port, 5);
        }
        // Established walreceiver connections keep their route: make them reconnect through the relays.
        await c.query(leader, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE state <> 'startup'");
      } catch (err) {
        for (const [i, relay] of relays.entries()) await unrelay(c, replicas[i] as string, target, relay);
        throw err;
      }
      return async () => {
        notes.push(`relayed ${Math.round(relays.reduce((a, r) => a + r.bytes, 0) / 1024)} KiB of replication traffic`);
        for (const [i, relay] of relays.entries()) await unrelay(c, replicas[i] as string, target, relay);
      };
    },
  },
  'replica-disk-full': {
    summary: "a replica's disk fills up (4 MiB left) while the leader writes 100 MB of WAL; freed after 15 s",
    failover: false,
    holdMs: 15_000,
    needsDisk: true,
    async inject({ c, leader, replicas, notes }) {
      // In synchronous mode fill the synchronous standby's disk: the harder case.
      const sync = c.sync ? ((await c.dcs()).sync?.standbys[0] ?? null) : null;
      const r = sync && replicas.includes(sync) ? sync : (replicas[0] as string);
      notes.push(`${r}'s disk filled${sync === r ? ' (the synchronous standby)' : ''}`);
      c.fillDisk(r, 4);
      await c.query(
        leader,
        'CREATE TABLE IF NOT EXISTS disk_ballast (b text); INSERT INTO disk_ballast SELECT repeat(md5(g::text), 32) FROM generate_series(1, 100000) g; TRUNCATE disk_ballast',
        [],
        30_000,
      );
      return async () => c.freeDisk(r);
    },
  },
};

async function unrelay(c: HostCluster, r: string, target: string, relay: DelayRelay): Promise<void> {
  c.net.redirect(r, target, relay.address, true);
  c.net.loss(r, relay.port, null);
  await relay.close();
}

export interface Trial {
  readonly scenario: ScenarioName;
  readonly from: string;
  /** Who led while the fault lasted (after the failover, if any). */
  readonly during: string;
  /** Who leads after the heal. */
  readonly after: string;
  /** From the fault to a new writable leader, ms (failover scenarios). */
  readonly newLeaderMs: number | null;
  /** Longest wait between two acknowledged writes: through the proxy, through libpq multi-host, ms. */
  readonly proxyOutageMs: number;
  readonly libpqOutageMs: number;
  readonly proxyErrors: Record<string, number>;
  readonly libpqErrors: Record<string, number>;
  readonly splitBrainRounds: number;
  /** Acknowledged writes (proxy + libpq) the leader lacks after the heal. */
  readonly lostAcked: number;
  readonly acked: number;
  /** From the heal to one leader with both replicas streaming, ms. */
  readonly healedMs: number;
  readonly notes: readonly string[];
}

async function until(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(100);
  }
  return false;
}

/**
 * One trial: waits for a healthy cluster, starts the three clients, injects the fault, waits for the new leader (or
 * holds the fault), heals, waits for health again and for both clients to write, then stops everything and counts.
 * Throws (with the agents' last log lines) when the cluster does not heal: the caller's cluster is then suspect.
 */
export async function runTrial(c: HostCluster, name: ScenarioName): Promise<Trial> {
  const scenario = CATALOGUE[name];
  const from = await c.waitHealthy(180_000);
  const replicas = NODES.filter((n) => n !== from);
  const notes: string[] = [];
  const checker = new SplitBrainChecker(NODES, c.pgAddr, c.password);
  await checker.start((sql) => c.query(from, sql));
  const [host, port] = c.proxy.rwAddress.split(':') as [string, string];
  const proxyWriter = new ProxyWriter({ host, port: Number(port) });
  const libpqWriter = new LibpqWriter(NODES.map(c.pgAddr), c.password);
  let heal: (() => Promise<void>) | null = null;
  try {
    await proxyWriter.start();
    await libpqWriter.start();
    await sleep(1500);
    const t0 = Date.now();
    heal = await scenario.inject({ c, leader: from, replicas, notes });
    let during = from;
    let newLeaderMs: number | null = null;
    if (scenario.failover === true) {
      during = await c.waitForLeader(90_000, from);
      newLeaderMs = Date.now() - t0;
      const [p, l] = [proxyWriter.acked.length, libpqWriter.acked.length];
      await until(() => proxyWriter.acked.length > p + 5 && libpqWriter.acked.length > l + 5, 30_000);
    } else {
      await sleep(scenario.holdMs);
      const dcs = await c.dcs().catch(() => null);
      during = dcs?.leader?.name ?? '(none)';
      const streaming = await c
        .query(
          during,
          "SELECT string_agg(application_name, ',') AS s FROM pg_stat_replication WHERE state = 'streaming'",
        )
        .then((r) => String(r[0]?.['s'] ?? 'none'))
        .catch(() => 'unknown');
      notes.push(
        `at the end of the fault: leader ${during}, streaming to it ${streaming}, sync ${dcs?.sync?.standbys.join(',') || 'none'}`,
      );
      if (scenario.failover === false && during !== from)
        notes.push(`the leader changed to ${during} although it should have stayed`);
    }
    const h = heal;
    heal = null;
    await h();
    const healStart = Date.now();
    const after = await c.waitHealthy(180_000);
    const healedMs = Date.now() - healStart;
    const [p, l] = [proxyWriter.acked.length, libpqWriter.acked.length];
    await until(() => proxyWriter.acked.length > p + 10 && libpqWriter.acked.length > l + 10, 60_000);
    await Promise.all([proxyWriter.stop(), libpqWriter.stop(), checker.stop()]);
    const q = (sql: string, params: unknown[]) => c.query(after, sql, params, 10_000);
    const lostAcked = (await proxyWriter.lostOn(q)) + (await libpqWriter.lostOn(q));
    return {
      scenario: name,
      from,
      during,
      after,
      newLeaderMs,
      proxyOutageMs: proxyWriter.maxGapMs,
      libpqOutageMs: libpqWriter.maxGapMs,
      proxyErrors: Object.fromEntries(proxyWriter.errors),
      libpqErrors: Object.fromEntries(libpqWriter.errors),
      splitBrainRounds: checker.splitBrainRounds().length,
      lostAcked,
      acked: proxyWriter.acked.length + libpqWriter.acked.length,
      healedMs,
      notes,
    };
  } finally {
    await Promise.all([proxyWriter.stop(), libpqWriter.stop(), checker.stop()]);
    if (heal) await heal().catch(() => undefined);
  }
}

/** What must hold after every trial; returns the broken promises in words (empty = fine). */
export function problems(t: Trial, sync: boolean): string[] {
  const out: string[] = [];
  const scenario = CATALOGUE[t.scenario];
  if (t.splitBrainRounds > 0) out.push(`${t.splitBrainRounds} rounds in which two nodes acknowledged a write`);
  if ((t.proxyErrors['25006'] ?? 0) > 0)
    out.push(`the proxy sent ${t.proxyErrors['25006']} writes to a read-only node`);
  if (sync && t.lostAcked > 0) out.push(`${t.lostAcked} acknowledged writes lost in synchronous mode`);
  if (scenario.failover === true && t.during === t.from) out.push('no other node took over');
  if (scenario.failover === false && t.during !== t.from) out.push(`the leader changed (${t.from} → ${t.during})`);
  return out;
}
