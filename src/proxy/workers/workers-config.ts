/**
 * `workers: N`: every worker process runs a whole proxy (listeners shared through node:cluster, its own pools and
 * topology watch), so the limits that are totals — pool sizes, min_pool_size, reserve pools, max_client_conn — are
 * divided among the workers. Worker i gets floor(total / N), plus one while i < total mod N: the shares add up to
 * the configured total exactly. A share is never below the key's own minimum (a pool of 0 could serve nobody), so a
 * total smaller than N (pool_size 2 on 4 workers) becomes 1 per worker and the sum exceeds it; config validation
 * warns about that case instead of refusing it.
 */
import type { ProxyConfig } from '../config.js';
import type { WorkerLink } from './worker-link.js';

/** Largest `workers`: the cancel key's process id carries the worker index in its low 5 bits. */
export const MAX_WORKERS = 32;
export const WORKER_BITS = 5;

/** Worker `index`'s share of `total` among `count` workers, at least `min`. */
export function workerShare(total: number, index: number, count: number, min = 0): number {
  if (count <= 1) return total;
  const share = Math.floor(total / count) + (index < total % count ? 1 : 0);
  return Math.max(min, share);
}

/** Keys holding totals, with the smallest value a share may take. */
const DIVIDED: Readonly<Record<string, number>> = {
  default_pool_size: 1,
  min_pool_size: 0,
  max_client_conn: 1,
  reserve_pool_size: 0,
};
/** Keys inside the `databases` / `users` overrides holding totals. */
const DIVIDED_OVERRIDES: Readonly<Record<string, number>> = {
  pool_size: 1,
  reserve_pool: 0,
  reserve_pool_size: 0,
  min_pool_size: 0,
};

function divideOverrides<T extends object>(m: Record<string, T>, index: number, count: number): Record<string, T> {
  const out = Object.create(null) as Record<string, T>; // names are client-chosen ("__proto__" is a valid database name)
  for (const [name, o] of Object.entries(m)) {
    const copy = { ...o } as Record<string, unknown>;
    for (const [k, min] of Object.entries(DIVIDED_OVERRIDES)) {
      const v = copy[k];
      if (typeof v === 'number') copy[k] = workerShare(v, index, count, min);
    }
    out[name] = copy as T;
  }
  return out;
}

/** The configuration worker `index` of `count` runs with (a copy; `config` is not changed). */
export function workerConfig(config: ProxyConfig, index: number, count: number): ProxyConfig {
  if (count <= 1) return config;
  const c: Record<string, unknown> = { ...config };
  for (const [k, min] of Object.entries(DIVIDED)) {
    const v = c[k];
    if (typeof v === 'number') c[k] = workerShare(v, index, count, min);
  }
  const out = c as unknown as ProxyConfig;
  out.databases = divideOverrides(config.databases, index, count);
  out.users = divideOverrides(config.users, index, count);
  // min_pool_size may not exceed the pool size (a rule config validation enforces on the totals).
  if (out.min_pool_size > out.default_pool_size) out.min_pool_size = out.default_pool_size;
  return out;
}

/** What a worker process runs with: its share of the limits, and no /metrics (the supervisor serves that). */
export function forWorker(config: ProxyConfig, w: Pick<WorkerLink, 'index' | 'count'>): ProxyConfig {
  const c = workerConfig(config, w.index, w.count);
  if (w.count <= 1) return c;
  const { metrics_listen: _served, ...rest } = c;
  return rest;
}

/** Cancel-key process ids: a sequence number with the worker index in the low WORKER_BITS bits. */
export function encodePid(seq: number, index: number): number {
  return ((seq % (1 << (31 - WORKER_BITS))) << WORKER_BITS) | index;
}

export function workerOfPid(pid: number): number {
  return pid & ((1 << WORKER_BITS) - 1);
}
