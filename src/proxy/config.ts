/**
 * proxy.yml: one strict schema (unknown keys rejected with a "did you mean", defaults with units, cross-field
 * rules refused), shared by the YAML file and the quick command-line form. Durations are whole seconds as in
 * pgBouncer; 0 disables a timeout.
 */
import { dirname, resolve } from 'node:path';
import { readYamlFile } from '../config/yaml.js';
import { ConfigError, portProblem, type Problem, type Schema, validate } from '../config/schema.js';
import { TLS_MODES, type TlsMode } from './tls.js';
import { crossField } from './config-rules.js';
import { etcdSecurityFields, resolveEtcdFiles, type EtcdSecurity } from '../config/etcd-section.js';

export const PoolMode = { Session: 'session', Transaction: 'transaction' } as const;
export type PoolMode = (typeof PoolMode)[keyof typeof PoolMode];
export const AuthType = { Trust: 'trust', Md5: 'md5', Scram: 'scram-sha-256' } as const;
export type AuthType = (typeof AuthType)[keyof typeof AuthType];
/** pgBouncer 1.24.1's default (CVE-2025-2291): an expired password (rolvaliduntil) counts as none. */
export const DEFAULT_AUTH_QUERY =
  'SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin';

const HOST_PORT = /^(?:\[[^\]]+\]|[^:\s]+):\d{1,5}$/;
/** A server address (port 1-65535); listeners (`listener`) may also take port 0, any free port. */
const hostPort = (doc: string, required = false, listener = false): Schema => ({
  kind: 'string',
  doc,
  pattern: HOST_PORT,
  expected: 'host:port',
  required,
  check: (v) => portProblem(v, listener),
});
const seconds = (doc: string, dflt: number): Schema => ({ kind: 'int', doc, default: dflt, min: 0, unit: 's' });

const poolOverride: Schema = {
  kind: 'object',
  doc: 'per-database or per-user pool settings',
  fields: {
    pool_mode: { kind: 'enum', doc: 'overrides pool_mode', values: ['session', 'transaction'] },
    pool_size: { kind: 'int', doc: 'overrides default_pool_size', min: 1 },
    reserve_pool: { kind: 'int', doc: 'overrides reserve_pool_size', min: 0 },
  },
};

export const proxySchema: Schema = {
  kind: 'object',
  doc: 'pgkeel proxy',
  fields: {
    listen: hostPort('read-write listener: always routed to the current leader', true, true),
    ro_listen: hostPort('read-only listener: balanced across healthy replicas (optional)', false, true),
    metrics_listen: hostPort(
      'HTTP listener for Prometheus /metrics and /stats (JSON); with etcd, also the DCS registry (optional)',
      false,
      true,
    ),
    workers: {
      kind: 'int',
      doc: 'worker processes sharing the listeners; pool limits and max_client_conn are divided among them',
      default: 1,
      min: 1,
      max: 32,
    },
    pool_mode: {
      kind: 'enum',
      doc: 'when a server connection returns to the pool',
      values: ['session', 'transaction'],
      default: 'transaction',
    },
    default_pool_size: { kind: 'int', doc: 'server connections per (database, user, listener)', default: 20, min: 1 },
    min_pool_size: { kind: 'int', doc: 'server connections kept open per pool once it exists', default: 0, min: 0 },
    reserve_pool_size: {
      kind: 'int',
      doc: 'extra server connections a pool may open once a client has waited reserve_pool_timeout; closed again when they fall idle',
      default: 0,
      min: 0,
    },
    reserve_pool_timeout: seconds(
      'a client waiting this long for a server connection lets its pool use the reserve (0: never)',
      5,
    ),
    max_prepared_statements: {
      kind: 'int',
      default: 200,
      min: 0,
      doc: 'transaction mode: named prepared statements kept per server connection (least recently used closed beyond it); 0: not tracked, named statements pass through unchanged',
    },
    max_client_conn: { kind: 'int', doc: 'client connections accepted in total', default: 100, min: 1 },
    auth_type: {
      kind: 'enum',
      values: ['trust', 'md5', 'scram-sha-256'],
      default: 'scram-sha-256',
      doc: 'how clients authenticate; trust (no password: anyone who can reach the listener gets in as any user the servers accept) only when asked for, with a warning at start',
    },
    auth_file: {
      kind: 'string',
      doc: 'pgBouncer userlist.txt: "user" "password, md5 hash or SCRAM verifier" per line',
    },
    auth_user: {
      kind: 'string',
      doc: 'users not in auth_file are looked up with auth_query, run on the primary as this user (its password from auth_file; none needed if the server trusts it)',
    },
    auth_query: {
      kind: 'string',
      doc: 'returns (user name, password secret) for the user name $1; no row or a NULL: no password is accepted',
      default: DEFAULT_AUTH_QUERY,
      multiline: true,
    },
    auth_dbname: { kind: 'string', doc: 'database auth_query runs in (default: the database the client asks for)' },
    admin_users: {
      kind: 'list',
      doc: 'users allowed every admin console command; empty: every authenticated user',
      of: { kind: 'string', doc: 'user' },
      commaString: true,
    },
    stats_users: {
      kind: 'list',
      doc: 'users allowed SHOW commands only',
      of: { kind: 'string', doc: 'user' },
      commaString: true,
    },
    ignore_startup_parameters: {
      kind: 'list',
      doc: 'start-up parameters accepted and dropped',
      of: { kind: 'string', doc: 'name' },
      commaString: true,
      default: ['extra_float_digits'],
    },
    query_wait_timeout: seconds('a client waiting this long for a server connection is disconnected', 120),
    client_idle_timeout: seconds('close clients idle (not in a transaction) this long', 0),
    client_login_timeout: seconds('close clients that have not logged in after this long', 60),
    server_idle_timeout: seconds('close server connections idle this long (keeping min_pool_size)', 600),
    server_lifetime: seconds('close server connections this old when they are next released', 3600),
    server_connect_timeout: seconds('give up one server connection attempt after this long', 15),
    server_login_retry: {
      kind: 'int',
      doc: 'wait before retrying a failed server connection',
      default: 1000,
      min: 10,
      unit: 'ms',
    },
    server_reset_query: {
      kind: 'string',
      doc: 'run on a server connection when a session-mode client leaves (empty: none)',
      default: 'DISCARD ALL',
      multiline: true,
    },
    server_reset_query_always: {
      kind: 'bool',
      default: false,
      doc: "transaction mode too: run server_reset_query after every transaction before the connection serves anyone else (pgBouncer), so a SET or SET ROLE outside a transaction cannot reach the next client; costs a round trip per transaction and drops the server's prepared statements",
    },
    max_packet_size: {
      kind: 'int',
      default: 1024 * 1024 * 1024,
      min: 65536,
      unit: 'bytes',
      doc: 'largest message a client may send (pgBouncer; PostgreSQL itself accepts up to 1 GiB); messages longer than 64 KiB are streamed to the server as they arrive, not held in memory',
    },
    max_buffered_packet_size: {
      kind: 'int',
      default: 16 * 1024 * 1024,
      min: 65536,
      max: 1024 * 1024 * 1024,
      unit: 'bytes',
      doc: 'largest message the proxy holds whole in memory, per client: those it must read or rewrite (admin console commands; in transaction mode a Parse of a named statement, a Bind whose names do not fit its first 256 bytes); a longer one closes that client with 54000',
    },
    shutdown_timeout: seconds('on SIGTERM/SHUTDOWN, wait this long for transactions to finish', 30),
    databases: {
      kind: 'map',
      doc: 'per-database overrides: name → {pool_mode, pool_size, reserve_pool}',
      values: 'scalar',
    },
    users: { kind: 'map', doc: 'per-user overrides: name → {pool_mode, pool_size, reserve_pool}', values: 'scalar' },
    primary: hostPort('static topology: the primary (instead of etcd)'),
    replicas: { kind: 'list', doc: 'static topology: replicas', of: hostPort('replica') },
    etcd: {
      kind: 'object',
      optional: true,
      doc: 'follow a Patroni-layout cluster in etcd',
      fields: {
        hosts: { kind: 'list', doc: 'etcd client endpoints', of: hostPort('endpoint'), commaString: true },
        scope: { kind: 'string', doc: 'cluster name', required: true },
        namespace: { kind: 'string', doc: 'key namespace', default: 'service' },
        request_timeout: { kind: 'int', doc: 'one etcd request', default: 2000, min: 100, unit: 'ms' },
        ...etcdSecurityFields,
      },
    },
    max_lag: {
      kind: 'int',
      doc: 'replicas further behind the leader are not used for reads',
      default: 16 * 1024 * 1024,
      min: 0,
      unit: 'bytes',
    },
    ro_fallback_to_leader: {
      kind: 'bool',
      doc: 'read-only clients use the leader when no replica is eligible',
      default: true,
    },
    switchover_pause_timeout: seconds('after a failover key appears, queue new transactions at most this long', 30),
    client_tls_sslmode: {
      kind: 'enum',
      values: TLS_MODES,
      default: 'disable',
      doc: 'TLS for client connections (pgBouncer). disable: SSLRequest answered N, plain only; allow, prefer: TLS when the client asks, plain accepted, client certificates not checked; require: TLS only (a plain StartupMessage gets FATAL 28000), client certificates not checked; verify-ca, verify-full: TLS only with a client certificate signed by client_tls_ca_file',
    },
    client_tls_key_file: {
      kind: 'string',
      doc: 'private key the proxy presents to clients (PEM); required unless client_tls_sslmode is disable',
    },
    client_tls_cert_file: {
      kind: 'string',
      doc: 'certificate for client_tls_key_file (PEM); required unless client_tls_sslmode is disable',
    },
    client_tls_ca_file: {
      kind: 'string',
      doc: 'CA certificates client certificates are checked against (PEM); required by client_tls_sslmode verify-ca/verify-full',
    },
    server_tls_sslmode: {
      kind: 'enum',
      values: TLS_MODES,
      default: 'prefer',
      doc: 'TLS for server connections (libpq sslmode meanings). disable: plain, no SSLRequest; allow, prefer: TLS when the server offers it, else plain, certificate not checked; require: TLS only, certificate not checked; verify-ca: TLS only, chain checked against server_tls_ca_file; verify-full: as verify-ca and the certificate must name the host connected to',
    },
    server_tls_ca_file: {
      kind: 'string',
      doc: 'CA certificates server certificates are checked against (PEM); required by server_tls_sslmode verify-ca/verify-full',
    },
    server_tls_key_file: {
      kind: 'string',
      doc: 'private key the proxy presents to servers as its client certificate (PEM; optional, with server_tls_cert_file)',
    },
    server_tls_cert_file: {
      kind: 'string',
      doc: 'certificate for server_tls_key_file (PEM; optional, with server_tls_key_file)',
    },
  },
};

/** Settings that name files: relative paths are taken from the config file's directory. */
const FILE_KEYS = [
  'auth_file',
  'client_tls_key_file',
  'client_tls_cert_file',
  'client_tls_ca_file',
  'server_tls_ca_file',
  'server_tls_key_file',
  'server_tls_cert_file',
] as const;

export interface PoolOverride {
  readonly pool_mode?: PoolMode;
  readonly pool_size?: number;
  readonly reserve_pool?: number;
}

export interface ProxyConfig {
  listen: string;
  ro_listen?: string;
  metrics_listen?: string;
  workers: number;
  pool_mode: PoolMode;
  default_pool_size: number;
  min_pool_size: number;
  reserve_pool_size: number;
  reserve_pool_timeout: number;
  max_prepared_statements: number;
  max_client_conn: number;
  auth_type: AuthType;
  auth_file?: string;
  auth_user?: string;
  auth_query: string;
  auth_dbname?: string;
  admin_users: string[];
  stats_users: string[];
  ignore_startup_parameters: string[];
  query_wait_timeout: number;
  client_idle_timeout: number;
  client_login_timeout: number;
  server_idle_timeout: number;
  server_lifetime: number;
  server_connect_timeout: number;
  server_login_retry: number;
  server_reset_query: string;
  server_reset_query_always: boolean;
  max_packet_size: number;
  max_buffered_packet_size: number;
  shutdown_timeout: number;
  databases: Record<string, PoolOverride>;
  users: Record<string, PoolOverride>;
  primary?: string;
  replicas: string[];
  etcd?: { hosts: string[]; scope: string; namespace: string; request_timeout: number } & EtcdSecurity;
  max_lag: number;
  ro_fallback_to_leader: boolean;
  switchover_pause_timeout: number;
  client_tls_sslmode: TlsMode;
  client_tls_key_file?: string;
  client_tls_cert_file?: string;
  client_tls_ca_file?: string;
  server_tls_sslmode: TlsMode;
  server_tls_ca_file?: string;
  server_tls_key_file?: string;
  server_tls_cert_file?: string;
}

/** The map kind holds scalars only, so {pool_mode, pool_size, reserve_pool} entries are checked here with the same DSL. */
function overrides(raw: unknown, path: string, problems: Problem[]): Record<string, PoolOverride> {
  // Keyed by client-chosen names (a database or user called "constructor" or "__proto__"): no inherited members.
  const out = Object.create(null) as Record<string, PoolOverride>;
  if (raw === undefined || raw === null) return out;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ path, message: 'expected a mapping of names to {pool_mode, pool_size, reserve_pool}' });
    return out;
  }
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const r = validate(poolOverride, v, `${path}.${name}`);
    problems.push(...r.problems);
    out[name] = r.value as PoolOverride;
  }
  return out;
}

/** Validates a parsed document into a ProxyConfig; throws ConfigError listing every problem. */
export function proxyConfigFromObject(raw: unknown, source: string, baseDir = process.cwd()): ProxyConfig {
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError([{ path: '', message: 'expected a mapping of settings at the top level' }], source);
  }
  const doc = { ...((raw ?? {}) as Record<string, unknown>) };
  const problems: Problem[] = [];
  const databases = overrides(doc['databases'], 'databases', problems);
  const users = overrides(doc['users'], 'users', problems);
  delete doc['databases'];
  delete doc['users'];
  const r = validate(proxySchema, doc, '', { secretFiles: { baseDir } }); // `<secret>_file` relative to proxy.yml
  problems.push(...r.problems);
  if (problems.length) throw new ConfigError(problems, source);
  const c = r.value as ProxyConfig;
  c.databases = databases;
  c.users = users;
  for (const k of FILE_KEYS) if (c[k]) c[k] = resolve(baseDir, c[k]);
  if (c.etcd) resolveEtcdFiles(c.etcd, baseDir);
  const cross = crossField(c);
  if (cross.length) throw new ConfigError(cross, source);
  return c;
}

export function loadProxyConfig(file: string): ProxyConfig {
  return proxyConfigFromObject(readYamlFile(file), file, dirname(resolve(file)));
}

/** "host:port" → parts; unlike lib/net's parseHostPort it allows port 0 (bind any free port) for listeners. */
export function listenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) throw new Error(`expected host:port, got "${text}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** pool_mode and pool size for one (database, user): the user's override wins over the database's, as pgBouncer. */
export function poolSettingsFor(c: ProxyConfig, database: string, user: string): { mode: PoolMode; size: number } {
  const d = overrideFor(c.databases, database);
  const u = overrideFor(c.users, user);
  return {
    mode: u?.pool_mode ?? d?.pool_mode ?? c.pool_mode,
    size: u?.pool_size ?? d?.pool_size ?? c.default_pool_size,
  };
}

/** reserve_pool_size for one (database, user): `reserve_pool` of the user, else of the database, else the default. */
export function reservePoolFor(c: ProxyConfig, database: string, user: string): number {
  return (
    overrideFor(c.users, user)?.reserve_pool ?? overrideFor(c.databases, database)?.reserve_pool ?? c.reserve_pool_size
  );
}

/** The override for a client-chosen name: own entries only (a user called "constructor" has none). */
function overrideFor(m: Record<string, PoolOverride>, name: string): PoolOverride | undefined {
  return Object.hasOwn(m, name) ? m[name] : undefined;
}
