/**
 * Integration-test fixture for the proxy: ONE standalone PostgreSQL 15 (no agent, no replication) in a temp
 * directory on a free loopback port, with users for every authentication method the proxy speaks to servers:
 *
 *   postgres      superuser, trust over TCP
 *   scram_user    password "scram-pw", SCRAM-SHA-256
 *   md5_user      password "md5-pw", stored as md5, md5 in pg_hba
 *
 * Always torn down by PID (pg_ctl stop -m immediate, then SIGKILL of the postmaster) — also when the test failed.
 */
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/lib/net.js';
import { chownForPostgres, ensureDirFor, pidAlive, run, sleep } from '../../src/lib/proc.js';

const BIN = '/usr/lib/postgresql/15/bin';

export const USERS = {
  superuser: { user: 'postgres', password: '' },
  scram: { user: 'scram_user', password: 'scram-pw' },
  md5: { user: 'md5_user', password: 'md5-pw' },
} as const;

export interface RunningPostgres extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Runs SQL as the superuser over TCP (a fresh connection per call). */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  readonly maxConnections?: number;
  readonly conf?: Readonly<Record<string, string | number>>;
  /** ssl = on with this certificate and key (PEM; copied into the data directory as server.crt/server.key). */
  readonly ssl?: { readonly certFile: string; readonly keyFile: string };
  /** pg_hba.conf lines placed before the default ones (e.g. `host replication scram_user 127.0.0.1/32 scram-sha-256`). */
  readonly hba?: readonly string[];
}

export async function startPostgres(dir: string, opts: PostgresOptions = {}): Promise<RunningPostgres> {
  const host = '127.0.0.1';
  const port = await freePort(host);
  const dataDir = join(dir, 'pgdata');
  const runDir = join(dir, 'pgrun');
  ensureDirFor(dataDir);
  ensureDirFor(runDir, 0o755);
  const init = await run(
    join(BIN, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
    { timeoutMs: 120_000 },
  );
  if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  if (opts.ssl) installServerCert(dataDir, 'server', opts.ssl.certFile, opts.ssl.keyFile);
  const conf: Record<string, string | number> = {
    listen_addresses: `'${host}'`,
    port,
    unix_socket_directories: `'${runDir}'`,
    max_connections: opts.maxConnections ?? 30,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: "'32MB'",
    logging_collector: 'off',
    log_min_messages: 'warning',
    ...(opts.ssl ? { ssl: 'on' } : {}),
    ...opts.conf,
  };
  const confPath = join(dataDir, 'postgresql.conf');
  writeFileSync(
    confPath,
    readFileSync(confPath, 'utf8') +
      '\n' +
      Object.entries(conf)
        .map(([k, v]) => `${k} = ${v}`)
        .join('\n') +
      '\n',
  );
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    [
      ...(opts.hba ?? []),
      'local all all trust',
      `host all ${USERS.md5.user} 127.0.0.1/32 md5`,
      `host all ${USERS.scram.user} 127.0.0.1/32 scram-sha-256`,
      'host all all 127.0.0.1/32 trust',
    ].join('\n') + '\n',
  );
  const start = await run(
    join(BIN, 'pg_ctl'),
    ['-D', dataDir, '-l', join(runDir, 'postgresql.log'), '-w', '-t', '60', 'start'],
    { timeoutMs: 90_000 },
  );
  const pidOf = (): number => Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let pid = 0;
  try {
    pid = pidOf();
  } catch {
    // not started: reported below
  }
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await run(join(BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop'], {
      timeoutMs: 20_000,
    }).catch(() => undefined);
    if (pid > 0 && pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      for (let i = 0; i < 100 && pidAlive(pid); i++) await sleep(20);
    }
  };
  if (start.code !== 0 || pid <= 0) {
    await stop();
    let log = '';
    try {
      log = readFileSync(join(runDir, 'postgresql.log'), 'utf8').slice(-2000);
    } catch {
      // no log
    }
    throw new Error(`PostgreSQL did not start: ${start.stderr}\n${log}`);
  }
  const sql = async (text: string, params?: unknown[]): Promise<Record<string, unknown>[]> => {
    const c = new pg.Client({ host, port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  try {
    await sql(
      `SET password_encryption = 'scram-sha-256'; CREATE ROLE ${USERS.scram.user} LOGIN PASSWORD '${USERS.scram.password}'`,
    );
    await sql(`SET password_encryption = 'md5'; CREATE ROLE ${USERS.md5.user} LOGIN PASSWORD '${USERS.md5.password}'`);
    await sql(`GRANT ALL ON SCHEMA public TO PUBLIC`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, port, dataDir, pid, sql, stop, [Symbol.asyncDispose]: stop };
}

/**
 * Copies a certificate and key into the data directory as NAME.crt/NAME.key, readable by PostgreSQL only (it refuses
 * a key others can read). Point ssl_cert_file/ssl_key_file at them (relative to the data directory) and reload.
 */
export function installServerCert(dataDir: string, name: string, certFile: string, keyFile: string): void {
  const crt = join(dataDir, `${name}.crt`);
  const key = join(dataDir, `${name}.key`);
  copyFileSync(certFile, crt);
  copyFileSync(keyFile, key);
  chmodSync(key, 0o600);
  chownForPostgres(crt);
  chownForPostgres(key);
}
