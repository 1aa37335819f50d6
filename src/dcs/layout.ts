/**
 * Patroni's DCS layout under `/<namespace>/<scope>/`, so patronictl, vip-manager and HAProxy templates written
 * for Patroni can read a pgkeel cluster. Values are compact JSON or plain strings, exactly as Patroni writes them
 * (see docs/architecture.md, "DCS keys").
 *
 * This module is pure: it turns a prefix snapshot into an immutable `Cluster` value and values back into strings.
 */
import type { KeyValue, LeaseId, PrefixSnapshot } from './store.js';

export interface ClusterKeys {
  readonly prefix: string;
  readonly initialize: string;
  readonly config: string;
  readonly leader: string;
  readonly status: string;
  readonly sync: string;
  readonly failover: string;
  readonly history: string;
  readonly failsafe: string;
  /** Held (with a lease) by the one backup running in the cluster (src/backup/lease.ts); not a Patroni key. */
  readonly backup: string;
  readonly membersPrefix: string;
  member(name: string): string;
}

export function clusterKeys(scope: string, namespace = 'service'): ClusterKeys {
  const prefix = `/${namespace}/${scope}/`.replace(/\/+/g, '/');
  return {
    prefix,
    initialize: `${prefix}initialize`,
    config: `${prefix}config`,
    leader: `${prefix}leader`,
    status: `${prefix}status`,
    sync: `${prefix}sync`,
    failover: `${prefix}failover`,
    history: `${prefix}history`,
    failsafe: `${prefix}failsafe`,
    backup: `${prefix}backup`,
    membersPrefix: `${prefix}members/`,
    member: (name: string) => `${prefix}members/${name}`,
  };
}

/** The JSON a member publishes under `members/<name>` (Patroni's field names). */
export interface MemberRecord {
  conn_url: string;
  api_url: string;
  state: string;
  /** 'primary' | 'master' | 'replica' | 'uninitialized' | 'demoted' | 'promoted' | 'standby_leader' */
  role: string;
  version?: string;
  xlog_location?: number;
  timeline?: number;
  receive_lsn?: number;
  replay_lsn?: number;
  replication_state?: string;
  tags?: Record<string, unknown>;
  pending_restart?: boolean;
  pause?: boolean;
  /** pgkeel extensions (ignored by Patroni tools): the agent's pid and data directory. */
  pid?: number;
  data_dir?: string;
  [extra: string]: unknown;
}

export interface Member {
  readonly name: string;
  readonly record: MemberRecord;
  readonly modRevision: number;
  readonly lease: LeaseId;
}

export interface Leader {
  readonly name: string;
  readonly modRevision: number;
  readonly lease: LeaseId;
}

export interface SyncState {
  readonly leader: string | null;
  /** Comma-separated member names, as Patroni stores it; parsed into `standbys`. */
  readonly standbys: readonly string[];
  readonly modRevision: number;
}

export interface FailoverRequest {
  readonly leader?: string;
  readonly member?: string;
  readonly scheduledAt?: string;
  readonly modRevision: number;
}

/** One `/history` row: [timeline, switch LSN, reason, ISO time, new leader]. */
export type HistoryEntry = readonly [number, number, string, string?, string?];

export interface LeaderStatus {
  readonly optime: number;
  readonly slots: Readonly<Record<string, number>> | null;
  readonly retainSlots: readonly string[];
}

export interface Cluster {
  readonly revision: number;
  /** Database system identifier; '' while the winner of the bootstrap race is still running initdb. */
  readonly initialize: string | undefined;
  readonly config: { readonly value: Record<string, unknown>; readonly modRevision: number } | undefined;
  readonly leader: Leader | undefined;
  readonly members: ReadonlyMap<string, Member>;
  readonly sync: SyncState | undefined;
  readonly failover: FailoverRequest | undefined;
  readonly history: readonly HistoryEntry[];
  readonly status: LeaderStatus | undefined;
  readonly failsafe: Readonly<Record<string, string>> | undefined;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (text === '') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function parseMember(name: string, kv: KeyValue): Member | undefined {
  const obj = parseJsonObject(kv.value);
  if (!obj) return undefined;
  const record: MemberRecord = {
    ...obj,
    conn_url: asString(obj['conn_url']) ?? '',
    api_url: asString(obj['api_url']) ?? '',
    state: asString(obj['state']) ?? 'unknown',
    role: asString(obj['role']) ?? 'uninitialized',
  };
  return { name, record, modRevision: kv.modRevision, lease: kv.lease };
}

function parseHistory(text: string): HistoryEntry[] {
  try {
    const v: unknown = JSON.parse(text);
    if (!Array.isArray(v)) return [];
    const out: HistoryEntry[] = [];
    for (const row of v) {
      if (!Array.isArray(row)) continue;
      const tl = asNumber(row[0]);
      const lsn = asNumber(row[1]);
      if (tl === undefined || lsn === undefined) continue;
      out.push([tl, lsn, asString(row[2]) ?? '', asString(row[3]), asString(row[4])]);
    }
    return out;
  } catch {
    return [];
  }
}

/** Builds the immutable cluster view from one read of the scope's prefix. Unparseable values are skipped, not fatal. */
export function parseCluster(keys: ClusterKeys, snap: PrefixSnapshot): Cluster {
  let initialize: string | undefined;
  let config: Cluster['config'];
  let leader: Leader | undefined;
  let sync: SyncState | undefined;
  let failover: FailoverRequest | undefined;
  let history: HistoryEntry[] = [];
  let status: LeaderStatus | undefined;
  let failsafe: Record<string, string> | undefined;
  const members = new Map<string, Member>();

  for (const kv of snap.kvs) {
    if (kv.key.startsWith(keys.membersPrefix)) {
      const name = kv.key.slice(keys.membersPrefix.length);
      const m = name && !name.includes('/') ? parseMember(name, kv) : undefined;
      if (m) members.set(name, m);
      continue;
    }
    switch (kv.key) {
      case keys.initialize:
        initialize = kv.value;
        break;
      case keys.config: {
        const value = parseJsonObject(kv.value);
        if (value) config = { value, modRevision: kv.modRevision };
        break;
      }
      case keys.leader:
        if (kv.value !== '') leader = { name: kv.value, modRevision: kv.modRevision, lease: kv.lease };
        break;
      case keys.sync: {
        const o = parseJsonObject(kv.value);
        if (o) {
          const s = asString(o['sync_standby']);
          sync = {
            leader: asString(o['leader']) ?? null,
            standbys: s
              ? s
                  .split(',')
                  .map((x) => x.trim())
                  .filter(Boolean)
              : [],
            modRevision: kv.modRevision,
          };
        }
        break;
      }
      case keys.failover: {
        const o = parseJsonObject(kv.value);
        if (o && (o['leader'] !== undefined || o['member'] !== undefined)) {
          const f: { -readonly [K in keyof FailoverRequest]: FailoverRequest[K] } = { modRevision: kv.modRevision };
          const l = asString(o['leader']);
          const m = asString(o['member']);
          const at = asString(o['scheduled_at']);
          if (l) f.leader = l;
          if (m) f.member = m;
          if (at) f.scheduledAt = at;
          failover = f;
        }
        break;
      }
      case keys.history:
        history = parseHistory(kv.value);
        break;
      case keys.status: {
        const o = parseJsonObject(kv.value);
        const optime = o ? asNumber(o['optime']) : undefined;
        if (o && optime !== undefined) {
          const slotsRaw = o['slots'];
          let slots: Record<string, number> | null = null;
          if (slotsRaw && typeof slotsRaw === 'object' && !Array.isArray(slotsRaw)) {
            slots = {};
            for (const [k, v] of Object.entries(slotsRaw)) {
              const n = asNumber(v);
              if (n !== undefined) slots[k] = n;
            }
          }
          const retain = Array.isArray(o['retain_slots'])
            ? (o['retain_slots'] as unknown[]).filter((x): x is string => typeof x === 'string')
            : [];
          status = { optime, slots, retainSlots: retain };
        }
        break;
      }
      case keys.failsafe: {
        const o = parseJsonObject(kv.value);
        if (o) {
          failsafe = {};
          for (const [k, v] of Object.entries(o)) if (typeof v === 'string') failsafe[k] = v;
        }
        break;
      }
      default:
        break;
    }
  }
  return { revision: snap.revision, initialize, config, leader, members, sync, failover, history, status, failsafe };
}

/** Compact JSON, as Patroni writes (`separators=(',',':')`). */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

export function encodeSync(leader: string, standbys: readonly string[]): string {
  return encodeJson({ leader, sync_standby: standbys.length ? standbys.join(',') : null });
}

export function encodeStatus(
  optime: number,
  slots: Record<string, number> | null,
  retainSlots: readonly string[],
): string {
  return encodeJson({ optime, slots, retain_slots: retainSlots });
}
