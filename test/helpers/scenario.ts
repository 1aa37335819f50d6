/**
 * Helpers for failover stories on a real cluster: who leads, killing a node's processes by pid, the DCS as the
 * agents see it, a REST call, and a write probe that records every acknowledged id.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { EtcdStore } from '../../src/dcs/etcd.js';
import { clusterKeys, parseCluster, type Cluster } from '../../src/dcs/layout.js';
import { pidAlive } from '../../src/lib/proc.js';
import type { StatusJson } from '../../src/local/status.js';
import type { TestCluster } from './cluster.js';
import { sleep } from './wait.js';

export function agentPid(c: TestCluster, node: string): number | null {
  try {
    const pid = Number(readFileSync(join(c.dir, node, 'agent.pid'), 'utf8').split('\n')[0]);
    return pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export function postmasterPid(c: TestCluster, node: string): number | null {
  try {
    const pid = Number(readFileSync(join(c.dir, node, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export function kill9(...pids: Array<number | null>): void {
  for (const p of pids) if (p !== null) process.kill(p, 'SIGKILL');
}

/**
 * A store on a local cluster's etcd with the cluster's etcd user (DIR/etcd/auth.json; DIR is the folder of the
 * status's passfile), as the agents use it: etcd authentication is on for every `pgkeel up` cluster.
 */
export function storeFor(s: Pick<StatusJson, 'etcd' | 'passfile'>): EtcdStore {
  let creds: { username?: string; password?: string } = {};
  try {
    const a = JSON.parse(readFileSync(join(dirname(s.passfile), 'etcd', 'auth.json'), 'utf8')) as {
      username: string;
      password: string;
    };
    creds = { username: a.username, password: a.password };
  } catch {
    // a cluster without etcd authentication
  }
  return new EtcdStore({ hosts: [s.etcd], requestTimeoutMs: 3000, ...creds });
}

export async function readCluster(s: StatusJson, scope = s.scope): Promise<Cluster> {
  const store = storeFor(s);
  try {
    const keys = clusterKeys(scope);
    return parseCluster(keys, await store.getPrefix(keys.prefix));
  } finally {
    await store.close();
  }
}

/** Merges `patch` into the DCS `config` key (null deletes a key), as `ctl edit-config` does. */
export async function patchDcsConfig(s: StatusJson, patch: Record<string, unknown>): Promise<void> {
  const store = storeFor(s);
  try {
    const keys = clusterKeys(s.scope);
    const cur = await store.get(keys.config);
    const value = { ...(cur ? (JSON.parse(cur.value) as Record<string, unknown>) : {}), ...patch };
    for (const [k, v] of Object.entries(value)) if (v === null) delete value[k];
    if (!(await store.compareAndPut(keys.config, JSON.stringify(value), { modRevision: cur?.modRevision ?? 0 })))
      throw new Error('config changed concurrently');
  } finally {
    await store.close();
  }
}

export async function rest(url: string, method = 'GET'): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { code: res.status, body };
}

/**
 * Inserts ids 1, 2, 3… one at a time into `probe(id)` through whichever member is writable, reconnecting on error;
 * every id whose INSERT returned is recorded as acknowledged. Bounded: stops when `stop()` is called or after maxMs.
 */
export class WriteProbe {
  readonly acked: number[] = [];
  failures = 0;
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(
    private readonly ports: readonly number[],
    private readonly password: string,
    private readonly intervalMs = 20,
  ) {}

  start(maxMs = 120_000): void {
    this.done = this.loop(Date.now() + maxMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** node-postgres has no multi-host connection strings: try each member, keep the first that is writable. */
  private async connect(): Promise<pg.Client> {
    for (const port of this.ports) {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        password: this.password,
        database: 'postgres',
        connectionTimeoutMillis: 1000,
        query_timeout: 3000,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        const r = await client.query('SELECT pg_is_in_recovery() AS rec');
        if (r.rows[0]?.rec === false) return client;
      } catch {
        // not reachable or not ready: try the next member
      }
      await client.end().catch(() => {});
    }
    throw new Error('no writable member');
  }

  private async loop(deadline: number): Promise<void> {
    let id = 0;
    let client: pg.Client | null = null;
    while (!this.stopped && Date.now() < deadline) {
      const next = id + 1;
      try {
        client ??= await this.connect();
        await client.query('INSERT INTO probe (id) VALUES ($1)', [next]);
        this.acked.push(next);
        id = next;
      } catch {
        this.failures++;
        id = next; // an id whose INSERT failed is never reused: it may or may not have been committed
        await client?.end().catch(() => {});
        client = null;
      }
      await sleep(this.intervalMs);
    }
    await client?.end().catch(() => {});
  }
}

export function superuserPassword(c: TestCluster): string {
  return (JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as { superuser: { password: string } })
    .superuser.password;
}
