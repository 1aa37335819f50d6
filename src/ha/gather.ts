/**
 * The observe step of a cycle, in two parts around the lease step (decide-lease.ts, run by the loop): read the DCS
 * once (`readDcs`); then look at the local PostgreSQL and — only while the leader key is free — ask the other
 * members' REST APIs how far they are (`gather`). Reads only: no write to the store. Produces the immutable
 * `Observed` value `decide` works on, plus the raw pieces the executor and the REST API report.
 */
import { connect } from 'node:net';
import { parseCluster, type Cluster } from '../dcs/layout.js';
import type { DynamicConfig } from '../config/node.js';
import {
  memberApiUrl,
  NO_TLS_OPTIONS,
  restClientFor,
  restRequest,
  type RestClientOptions,
} from '../cluster/rest-client.js';
import { lastProblem, readLogTail } from '../postgres/log-problems.js';
import type { PgStatus } from '../postgres/instance.js';
import { effectiveDynamic, haSettings, tagsOf } from './settings.js';
import { onUnexpectedStop, settled } from './crash-loop.js';
import type { AgentContext } from './state.js';
import type { LeaseOutcome } from './decide-lease.js';
import type { DcsView, HaSettings, LocalPostgres, Observed, OperatorRequest, PeerStatus } from './view.js';

export interface Gathered {
  readonly observed: Observed;
  readonly cluster: Cluster | undefined;
  readonly pgStatus: PgStatus | null;
  readonly dynamic: DynamicConfig;
  readonly configProblems: readonly string[];
}

const PEER_TIMEOUT_MS = 2000;

/** GET <api_url> (Patroni's /patroni) of one member; unreachable on any failure. */
export async function fetchPeer(
  apiUrl: string,
  client: RestClientOptions = NO_TLS_OPTIONS,
  timeoutMs = PEER_TIMEOUT_MS,
): Promise<PeerStatus> {
  try {
    const res = await restRequest(new URL(apiUrl), 'GET', client, undefined, timeoutMs);
    const body = JSON.parse(res.text) as Record<string, unknown>;
    const xlog = (body['xlog'] ?? {}) as Record<string, unknown>;
    const role =
      body['role'] === 'primary' || body['role'] === 'master'
        ? 'primary'
        : body['role'] === 'replica'
          ? 'replica'
          : 'unknown';
    const num = (v: unknown) => (typeof v === 'number' ? v : null);
    const wal =
      role === 'primary'
        ? num(xlog['location'])
        : Math.max(num(xlog['received_location']) ?? 0, num(xlog['replayed_location']) ?? 0) || null;
    const tags = (body['tags'] ?? {}) as Record<string, unknown>;
    return {
      reachable: true,
      role,
      state: String(body['state'] ?? 'unknown'),
      walPosition: wal,
      timeline: num(body['timeline']),
      nofailover: tags['nofailover'] === true,
      ...(body['watchdog_failed'] === true ? { watchdogFailed: true } : {}),
    };
  } catch {
    return { reachable: false };
  }
}

/** true only when a TCP connection is actively refused (the host answered, nothing listens); a timeout or any
 *  other error is not proof of anything. */
export function connectionRefused(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (refused: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(refused);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(false));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}

function urlHostPort(url: string | undefined, defaultPort: number): { host: string; port: number } | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || defaultPort) };
  } catch {
    return null;
  }
}

/** The member names in a synchronous_standby_names value the agent wrote: '' → [], '*' → ['*'], 'FIRST n ("a","b")' → [a, b]. */
export function ssnMembers(ssn: string): string[] {
  if (ssn.trim() === '') return [];
  if (ssn.trim() === '*') return ['*'];
  const inner = /\((.*)\)/.exec(ssn)?.[1] ?? ssn;
  return inner
    .split(',')
    .map((x) => x.trim().replace(/^"|"$/g, ''))
    .filter(Boolean);
}

/**
 * failsafe_mode with the DCS unreachable (Patroni's check_failsafe_topology): the primary may stay primary only if
 * every other member listed in `/failsafe` answers our POST /failsafe with 200 — none of them can then be promoting.
 */
export async function confirmFailsafe(
  last: Cluster,
  me: string,
  myApiUrl: string,
  lsn: number | null,
  client: RestClientOptions = NO_TLS_OPTIONS,
  timeoutMs = PEER_TIMEOUT_MS,
): Promise<boolean> {
  const members = Object.entries(last.failsafe ?? {}).filter(([name]) => name !== me);
  if (!last.failsafe || !Object.hasOwn(last.failsafe, me)) return false; // a member named "toString" is not listed by inheritance
  const body = { name: me, api_url: myApiUrl, lsn };
  const answers = await Promise.all(
    members.map(async ([, url]) => {
      try {
        const target = new URL(url.replace(/\/patroni$/, '') + '/failsafe');
        const res = await restRequest(target, 'POST', client, body, timeoutMs);
        return res.code === 200;
      } catch {
        return false;
      }
    }),
  );
  return answers.every(Boolean);
}

/** The leader-down shortcut (docs/failover.md): probe only when our stream from the leader broke. */
async function probeLeaderDown(cluster: Cluster, me: string, status: PgStatus | null): Promise<boolean> {
  const leader = cluster.leader;
  if (!leader || leader.name === me || !status?.inRecovery || status.streaming) return false;
  const rec = cluster.members.get(leader.name)?.record;
  const api = urlHostPort(rec?.api_url, 8008);
  const pg = urlHostPort(rec?.conn_url, 5432);
  if (!api || !pg) return false;
  const [a, p] = await Promise.all([connectionRefused(api.host, api.port), connectionRefused(pg.host, pg.port)]);
  return a && p;
}

async function readLocal(
  ctx: AgentContext,
  timeoutMs: number,
): Promise<{ local: Omit<LocalPostgres, 'shouldRun' | 'downSince' | 'following'>; status: PgStatus | null }> {
  const { pg, mem } = ctx;
  const dataDir = pg.dataDirState();
  if (dataDir === 'ready' && mem.sysid === null) mem.sysid = (await pg.controlData())?.sysid ?? null;
  if (dataDir === 'empty') mem.sysid = null;
  const running = dataDir === 'ready' && pg.isRunning();
  let status: PgStatus | null = null;
  if (running) {
    try {
      status = await pg.status(timeoutMs);
    } catch (err) {
      ctx.log.debug('PostgreSQL status query failed', { err });
    }
  }
  let timeline = status?.timeline ?? null;
  if (!status && dataDir === 'ready' && !running) timeline = (await pg.controlData())?.timeline ?? null;
  return {
    status,
    local: {
      dataDir,
      sysid: mem.sysid,
      running,
      accepting: status !== null,
      inRecovery: status ? status.inRecovery : null,
      timeline,
      walPosition: status?.walPosition ?? null,
      receivedLsn: status?.receivedLsn ?? null,
      replayedLsn: status?.replayedLsn ?? null,
      streaming: status?.streaming ?? false,
      streamProblem:
        (status?.inRecovery && !status.streaming) || (running && !status)
          ? lastProblem(readLogTail(pg.logFile), ctx.now())
          : null,
      syncStandbys: status
        ? status.replication
            .filter((r) => r.syncState === 'sync' || r.syncState === 'quorum')
            .map((r) => r.applicationName)
        : [],
      streamingStandbys: status
        ? status.replication.filter((r) => r.state === 'streaming').map((r) => r.applicationName)
        : [],
    },
  };
}

/** PostgreSQL stopped although it should run: a crash loop backs off, with PostgreSQL's own reason (crash-loop.ts). */
function noteUnexpectedStop(ctx: AgentContext, now: number): void {
  const { mem, log, pg } = ctx;
  const problem = lastProblem(readLogTail(pg.logFile), now);
  const r = onUnexpectedStop(mem, now, problem);
  mem.crashes = r.crashes;
  log.warn(`PostgreSQL is not running although it should${problem ? `: ${problem.message}` : ''}`, {
    crashes: r.crashes,
  });
  if (r.error) {
    mem.retryAfter = Math.max(mem.retryAfter, r.retryAfter);
    mem.lastError = r.error;
    log.error(r.error, { crashes: r.crashes });
  }
}

/** The DCS as read at the start of a cycle, before the lease step (decide-lease.ts). */
export interface DcsRead {
  readonly now: number;
  readonly dcs: DcsView;
  readonly settings: HaSettings;
  readonly dynamic: DynamicConfig;
  readonly configProblems: readonly string[];
}

/** The first read of a cycle: the whole cluster prefix, once, and the settings in force. */
export async function readDcs(ctx: AgentContext): Promise<DcsRead> {
  const { cfg, keys, store, mem } = ctx;
  const now = ctx.now();
  let cluster: Cluster | undefined;
  let dcsError: string | null = null;
  try {
    cluster = parseCluster(keys, await store.getPrefix(keys.prefix));
    mem.dcsLastSeen = now;
    mem.lastCluster = cluster;
  } catch (err) {
    dcsError = (err as Error).message;
  }
  // While the DCS is down, the last configuration read from it still applies (failsafe_mode lives there).
  const { config: dynamic, problems } = effectiveDynamic(cfg, cluster ?? mem.lastCluster);
  const dcs: DcsView = cluster
    ? { ok: true, cluster }
    : { ok: false, error: dcsError ?? 'unknown DCS error', lastSeen: mem.dcsLastSeen };
  return { now, dcs, settings: haSettings(dynamic), dynamic, configProblems: problems };
}

/**
 * The rest of the observe step, after the lease step: the local PostgreSQL, the peers (only while the leader key is
 * free), the leader-down probe, failsafe confirmation. Reads only; the snapshot it returns is what `decide` sees.
 */
export async function gather(
  ctx: AgentContext,
  read: DcsRead,
  lease: LeaseOutcome,
  loop: { readonly shuttingDown: boolean; readonly request: OperatorRequest | null },
): Promise<Gathered> {
  const { cfg, mem } = ctx;
  const { now, settings, dynamic } = read;
  const { dcs } = lease; // after a store error in the lease step: not accessible, as after a failed read
  const cluster = dcs.ok ? dcs.cluster : undefined;
  let holdsLock = lease.holdsLock;

  const timeoutMs = settings.retryTimeout * 1000;
  const { local, status } = await readLocal(ctx, timeoutMs);
  if (local.running || !mem.shouldRun) mem.downSince = null;
  else if (mem.downSince === null && local.dataDir === 'ready') {
    mem.downSince = now;
    if (mem.busy === null) noteUnexpectedStop(ctx, now);
  }
  if (settled(mem, now, local.accepting)) mem.crashes = 0;

  const peers = new Map<string, PeerStatus>();
  if (cluster && !cluster.leader && local.dataDir === 'ready') {
    const others = [...cluster.members.values()].filter((m) => m.name !== cfg.name && m.record.api_url);
    const results = await Promise.all(others.map((m) => fetchPeer(m.record.api_url, restClientFor(cfg))));
    for (const [i, m] of others.entries()) peers.set(m.name, results[i] as PeerStatus);
  }

  const leaderDown = cluster ? await probeLeaderDown(cluster, cfg.name, status) : false;
  let failsafeConfirmed = false;
  if (!cluster && settings.failsafeMode && mem.lastCluster?.leader?.name === cfg.name && status?.inRecovery === false) {
    holdsLock = true; // as far as anyone can know: we held it when the DCS was last seen
    failsafeConfirmed = await confirmFailsafe(
      mem.lastCluster,
      cfg.name,
      memberApiUrl(cfg),
      status.walPosition,
      restClientFor(cfg),
    );
    // Every member vouched for us: that stands in for the lease renewal the DCS cannot give (REST /primary stays 200).
    if (failsafeConfirmed) mem.lastRenew = { ok: true, at: now };
  }

  const observed: Observed = {
    now,
    me: cfg.name,
    tags: tagsOf(cfg),
    settings,
    dcs,
    holdsLock,
    lastRenew: mem.lastRenew,
    releasedLockAt: mem.releasedLockAt,
    pg: {
      ...local,
      following: mem.following,
      shouldRun: mem.shouldRun,
      downSince: mem.downSince,
      synchronousStandbyNames: ssnMembers(mem.synchronousStandbyNames),
    },
    peers,
    failsafeConfirmed,
    shuttingDown: loop.shuttingDown,
    busy: mem.busy,
    rewindFailed: mem.rewindFailed,
    leaderDown,
    request: loop.request,
    retry: { after: mem.retryAfter, lastError: mem.lastError },
    lastRole: mem.role,
  };
  return { observed, cluster, pgStatus: status, dynamic, configProblems: read.configProblems };
}
