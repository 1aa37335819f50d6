/**
 * Reaching one site of a mesh: its DCS (through `pgkeel ctl`'s client: topology, config, member REST calls), the
 * mesh record under `/<namespace>/<scope>/mesh`, and a superuser connection to its leader's mesh database.
 * A site is named on the command line by a local cluster directory (`pgkeel up`) or a member's node config.
 */
import { existsSync, statSync } from 'node:fs';
import pg from 'pg';
import { clusterView } from '../cluster/view.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import { loadConfig } from '../config/load.js';
import { clusterKeys } from '../dcs/layout.js';
import { EtcdStore } from '../dcs/etcd.js';
import { CtlClient } from '../ctl/client.js';
import { targetFromConfig, targetFromDir, type CtlTarget } from '../ctl/target.js';
import { paths, readLocalCluster } from '../local/layout.js';
import type { Sql } from './engine.js';
import { MeshError } from './errors.js';
import type { MeshRecord, SiteTopology } from './plan.js';

export interface SiteAccess {
  readonly target: CtlTarget;
  readonly superuser: { readonly username: string; readonly password: string };
}

/** `--site X`: a directory holding a local cluster (cluster.json), or a member's node config file. */
export function siteFrom(spec: string): SiteAccess {
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    const lc = readLocalCluster(spec);
    if (!lc)
      throw new MeshError('MESH_USAGE', `--site ${spec}: no local cluster there (no ${paths.clusterFile(spec)})`);
    return { target: targetFromDir(spec, {}), superuser: lc.superuser };
  }
  if (!existsSync(spec)) throw new MeshError('MESH_USAGE', `--site ${spec}: no such directory or node config file`);
  const cfg = loadConfig(spec);
  return { target: targetFromConfig(spec), superuser: cfg.postgresql.authentication.superuser };
}

/** One open site: its ctl client, and (once opened) the leader's database. Dispose to close both. */
export class Site implements AsyncDisposable {
  readonly client: CtlClient;
  private db: pg.Client | null = null;

  constructor(
    readonly access: SiteAccess,
    readonly database: string,
  ) {
    this.client = new CtlClient(access.target);
  }

  get scope(): string {
    return this.access.target.scope;
  }

  async topology(): Promise<SiteTopology> {
    const view = clusterView(this.scope, await this.client.cluster());
    return {
      scope: this.scope,
      leader: view.leader,
      members: view.members.filter((m) => m.host && m.port).map((m) => ({ name: m.name, host: m.host, port: m.port })),
    };
  }

  /** The leader's address, or MESH_NO_LEADER. */
  async leaderAddress(): Promise<{ host: string; port: number }> {
    const t = await this.topology();
    const m = t.members.find((x) => x.name === t.leader);
    if (!m)
      throw new MeshError('MESH_NO_LEADER', `site ${this.scope} has no leader in its DCS right now`, {
        site: this.scope,
      });
    return m;
  }

  /** A superuser connection to the leader's mesh database (opened once, reused). */
  async sql(): Promise<Sql> {
    if (!this.db) {
      const { host, port } = await this.leaderAddress();
      const c = new pg.Client({
        host,
        port,
        user: this.access.superuser.username,
        password: this.access.superuser.password,
        database: this.database,
        application_name: 'pgkeel_mesh',
        connectionTimeoutMillis: 10_000,
      });
      c.on('error', () => {
        this.db = null;
      });
      await c.connect();
      this.db = c;
    }
    const c = this.db;
    return {
      // statement_timeout stops the server side (pglogical's waits check for interrupts); query_timeout is the
      // client's backstop when the server does not answer at all.
      query: async <R extends Record<string, unknown>>(
        text: string,
        params: readonly unknown[] = [],
        timeoutMs = 60_000,
      ) => {
        await c.query(`SELECT set_config('statement_timeout', $1, false)`, [`${timeoutMs}ms`]);
        const cfg = { text, values: [...params], query_timeout: timeoutMs + 5000 } as pg.QueryConfig;
        return (await c.query<R>(cfg)).rows;
      },
    };
  }

  /** Drops the leader connection (after a restart), so the next `sql()` reconnects. */
  async reconnect(): Promise<void> {
    const c = this.db;
    this.db = null;
    await c?.end().catch(() => undefined);
  }

  private store(): EtcdStore {
    const t = this.access.target;
    return new EtcdStore(etcdStoreOptions({ ...t.etcd, hosts: t.hosts }, 5000, 'etcd3', t.source));
  }

  private recordKey(): string {
    return `${clusterKeys(this.scope, this.access.target.namespace).prefix}mesh`;
  }

  async readRecord(): Promise<MeshRecord | null> {
    const s = this.store();
    try {
      const kv = await s.get(this.recordKey());
      return kv ? (JSON.parse(kv.value) as MeshRecord) : null;
    } finally {
      await s.close();
    }
  }

  async writeRecord(r: MeshRecord): Promise<void> {
    const s = this.store();
    try {
      await s.put(this.recordKey(), JSON.stringify(r));
    } finally {
      await s.close();
    }
  }

  /** Removes the mesh record (the site left the mesh: `mesh remove-site`). */
  async deleteRecord(): Promise<void> {
    const s = this.store();
    try {
      await s.delete(this.recordKey());
    } finally {
      await s.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.reconnect();
    await this.client[Symbol.asyncDispose]();
  }
}
