/**
 * The members' PostgreSQL as backup sources: a replication connection (the node config's replication credentials
 * and TLS settings) running IDENTIFY_SYSTEM and BASE_BACKUP, and the superuser's `pg_switch_wal()` on the leader.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { NodeConfig, SslClient } from '../config/node.js';
import { runBaseBackup } from './base-backup-stream.js';
import type { BaseBackupSource } from './full-backup.js';
import { connectPostgres } from './replication-conn.js';

export interface Endpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export async function connectSource(
  cfg: NodeConfig,
  m: Endpoint,
  signal?: AbortSignal,
): Promise<BaseBackupSource & { close(): Promise<void> }> {
  const a = cfg.postgresql.authentication.replication;
  const conn = await connectPostgres({
    host: m.host,
    port: m.port,
    user: a.username,
    password: a.password,
    replication: 'true',
    applicationName: 'pgkeel_backup',
    sslmode: a.sslmode ?? 'prefer',
    sslrootcert: a.sslrootcert,
    sslcert: a.sslcert,
    sslkey: a.sslkey,
    signal,
  });
  return {
    member: m.name,
    async identify() {
      const [res] = await conn.query('IDENTIFY_SYSTEM');
      const row = res?.rows[0];
      if (!row) throw new Error(`IDENTIFY_SYSTEM on ${m.name} returned no row`);
      return { systemId: String(row[0]), timeline: Number(row[1]) };
    },
    async serverVersion() {
      // server_version is reported at login, e.g. "15.18 (Debian 15.18-0+deb12u1)".
      const v = /^(\d+)(?:\.(\d+))?/.exec(conn.parameters.get('server_version') ?? '');
      return v ? Number(v[1]) * 10000 + Number(v[2] ?? 0) : 0;
    },
    async baseBackup(opts, sink) {
      await runBaseBackup(
        conn,
        {
          label: opts.label,
          checkpoint: 'fast',
          wal: false,
          wait: false,
          compression: opts.compression,
          level: opts.compression === 'none' ? undefined : opts.level,
          manifest: true,
          signal: opts.signal,
        },
        sink,
      );
    },
    async close() {
      conn.close();
    },
  };
}

/** A superuser session on a member (over TCP, or its socket directory when `host` is a path). */
export async function superuserSession(cfg: NodeConfig, m: Endpoint): Promise<pg.Client> {
  const su = cfg.postgresql.authentication.superuser;
  const connect = async (ssl: pg.ClientConfig['ssl']) => {
    const c = new pg.Client({
      host: m.host,
      port: m.port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      application_name: 'pgkeel_backup',
      connectionTimeoutMillis: 5000,
      ssl,
    });
    c.on('error', () => {});
    try {
      await c.connect();
      return c;
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
  };
  if (m.host.startsWith('/')) return connect(undefined);
  const mode = su.sslmode ?? 'prefer';
  if (mode !== 'prefer' && mode !== 'allow') return connect(pgSsl(su));
  // libpq's prefer: TLS (unverified) when the server offers it, plain otherwise.
  try {
    return await connect({ rejectUnauthorized: false });
  } catch (err) {
    if (!/does not support SSL/i.test((err as Error).message)) throw err;
    return connect(undefined);
  }
}

/**
 * `select pg_switch_wal()` as the superuser (only reachable where pg_hba lets the superuser in over TCP); returns the
 * name of the segment it closed (the newest one the archive must receive).
 */
export async function switchWal(cfg: NodeConfig, m: Endpoint, restorePoint?: string): Promise<string> {
  const c = await superuserSession(cfg, m);
  try {
    if (restorePoint) await c.query('select pg_create_restore_point($1)', [restorePoint]);
    const r = await c.query<{ seg: string }>('select pg_walfile_name(pg_switch_wal()) as seg');
    return r.rows[0]?.seg ?? '';
  } finally {
    await c.end().catch(() => {});
  }
}

/** node-postgres TLS options for a role's libpq ssl settings (require: encrypted; verify-ca/-full: checked). */
function pgSsl(a: SslClient): pg.ClientConfig['ssl'] {
  const mode = a.sslmode ?? 'prefer';
  if (mode === 'disable' || mode === 'allow' || mode === 'prefer') return undefined;
  const read = (f?: string) => (f ? readFileSync(f) : undefined);
  return {
    ca: read(a.sslrootcert),
    cert: read(a.sslcert),
    key: read(a.sslkey),
    rejectUnauthorized: mode !== 'require',
    ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
  };
}
