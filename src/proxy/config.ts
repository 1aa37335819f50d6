/**
 * proxy.yml: one strict schema (unknown keys rejected with a "did you mean", defaults with units, cross-field
 * rules refused), shared by the YAML file and the quick command-line form. Durations are whole seconds as in
 * pgBouncer; 0 disables a timeout.
 */
import { dirname, resolve } from 'node:path';
import { readYamlFile } from '../config/yaml.js';
import { ConfigError, type Problem, type Schema, validate } from '../config/schema.js';

export const PoolMode = { Session: 'session', Transaction: 'transaction' } as const;
export type PoolMode = (typeof PoolMode)[keyof typeof PoolMode];
export const AuthType = { Trust: 'trust', Md5: 'md5', Scram: 'scram-sha-256' } as const;
export type AuthType = (typeof AuthType)[keyof typeof AuthType];

const HOST_PORT = /^(?:\[[^\]]+\]|[^:\s]+):\d{1,5}$/;
const hostPort = (doc: string, required = false): Schema => ({ kind: 'string', doc, pattern: HOST_PORT, expected: 'host:port', required });
const seconds = (doc: string, dflt: number): Schema => ({ kind: 'int', doc, default: dflt, min: 0, unit: 's' });

const poolOverride: Schema = {
  kind: 'object',
  doc: 'per-database or per-user pool settings',
  fields: {
    pool_mode: { kind: 'enum', doc: 'overrides pool_mode', values: ['session', 'transaction'] },
    pool_size: { kind: 'int', doc: 'overrides default_pool_size', min: 1 },
  },
};

export const proxySchema: Schema = {
  kind: 'object',
  doc: 'pgkeel proxy',
  fields: {
    listen: hostPort('read-write listener: always routed to the current leader', true),
    ro_listen: hostPort('read-only listener: balanced across healthy replicas (optional)'),
    metrics_listen: hostPort('Prometheus /metrics HTTP listener (optional)'),
    workers: { kind: 'int', doc: 'worker processes (only 1 is supported so far)', default: 1, min: 1, max: 1 },
    pool_mode: { kind: 'enum', doc: 'when a server connection returns to the pool', values: ['session', 'transaction'], default: 'transaction' },
    default_pool_size: { kind: 'int', doc: 'server connections per (database, user, listener)', default: 20, min: 1 },
    min_pool_size: { kind: 'int', doc: 'server connections kept open per pool once it exists', default: 0, min: 0 },
    max_client_conn: { kind: 'int', doc: 'client connections accepted in total', default: 100, min: 1 },
    auth_type: { kind: 'enum', doc: 'how clients authenticate', values: ['trust', 'md5', 'scram-sha-256'], default: 'trust' },
    auth_file: { kind: 'string', doc: 'pgBouncer userlist.txt: "user" "password, md5 hash or SCRAM verifier" per line' },
    admin_users: { kind: 'list', doc: 'users allowed every admin console command; empty: every authenticated user', of: { kind: 'string', doc: 'user' }, commaString: true },
    stats_users: { kind: 'list', doc: 'users allowed SHOW commands only', of: { kind: 'string', doc: 'user' }, commaString: true },
    ignore_startup_parameters: {
      kind: 'list', doc: 'start-up parameters accepted and dropped', of: { kind: 'string', doc: 'name' }, commaString: true, default: ['extra_float_digits'],
    },
    query_wait_timeout: seconds('a client waiting this long for a server connection is disconnected', 120),
    client_idle_timeout: seconds('close clients idle (not in a transaction) this long', 0),
    client_login_timeout: seconds('close clients that have not logged in after this long', 60),
    server_idle_timeout: seconds('close server connections idle this long (keeping min_pool_size)', 600),
    server_lifetime: seconds('close server connections this old when they are next released', 3600),
    server_connect_timeout: seconds('give up one server connection attempt after this long', 15),
    server_login_retry: { kind: 'int', doc: 'wait before retrying a failed server connection', default: 1000, min: 10, unit: 'ms' },
    server_reset_query: { kind: 'string', doc: 'run on a server connection when a session-mode client leaves', default: 'DISCARD ALL' },
    max_packet_size: { kind: 'int', doc: 'largest message a client may send', default: 1024 * 1024 * 1024, min: 65536, unit: 'bytes' },
    shutdown_timeout: seconds('on SIGTERM/SHUTDOWN, wait this long for transactions to finish', 30),
    databases: { kind: 'map', doc: 'per-database overrides: name → {pool_mode, pool_size}', values: 'scalar' },
    users: { kind: 'map', doc: 'per-user overrides: name → {pool_mode, pool_size}', values: 'scalar' },
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
      },
    },
    max_lag: { kind: 'int', doc: 'replicas further behind the leader are not used for reads', default: 16 * 1024 * 1024, min: 0, unit: 'bytes' },
    ro_fallback_to_leader: { kind: 'bool', doc: 'read-only clients use the leader when no replica is eligible', default: true },
    switchover_pause_timeout: seconds('after a failover key appears, queue new transactions at most this long', 30),
  },
};

export interface PoolOverride {
  readonly pool_mode?: PoolMode;
  readonly pool_size?: number;
}

export interface ProxyConfig {
  listen: string;
  ro_listen?: string;
  metrics_listen?: string;
  workers: number;
  pool_mode: PoolMode;
  default_pool_size: number;
  min_pool_size: number;
  max_client_conn: number;
  auth_type: AuthType;
  auth_file?: string;
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
  max_packet_size: number;
  shutdown_timeout: number;
  databases: Record<string, PoolOverride>;
  users: Record<string, PoolOverride>;
  primary?: string;
  replicas: string[];
  etcd?: { hosts: string[]; scope: string; namespace: string; request_timeout: number };
  max_lag: number;
  ro_fallback_to_leader: boolean;
  switchover_pause_timeout: number;
}

/** The map kind holds scalars only, so {pool_mode, pool_size} entries are checked here with the same DSL. */
function overrides(raw: unknown, path: string, problems: Problem[]): Record<string, PoolOverride> {
  const out: Record<string, PoolOverride> = {};
  if (raw === undefined || raw === null) return out;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ path, message: 'expected a mapping of names to {pool_mode, pool_size}' });
    return out;
  }
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const r = validate(poolOverride, v, `${path}.${name}`);
    problems.push(...r.problems);
    out[name] = r.value as PoolOverride;
  }
  return out;
}

function crossField(c: ProxyConfig): Problem[] {
  const out: Problem[] = [];
  if (c.primary && c.etcd) out.push({ path: 'primary', message: 'give either a static topology (primary/replicas) or etcd, not both' });
  if (!c.primary && !c.etcd) out.push({ path: 'primary', message: 'is required unless etcd is given: the proxy needs a topology' });
  if (c.replicas.length && !c.primary) out.push({ path: 'replicas', message: 'needs primary (static topology)' });
  if (c.etcd && c.etcd.hosts.length === 0) out.push({ path: 'etcd.hosts', message: 'expected at least one host:port' });
  if (c.auth_type !== 'trust' && !c.auth_file) out.push({ path: 'auth_file', message: `is required with auth_type ${c.auth_type}` });
  if (c.min_pool_size > c.default_pool_size) out.push({ path: 'min_pool_size', message: `must be at most default_pool_size (${c.default_pool_size}), got ${c.min_pool_size}` });
  const addrs = [['listen', c.listen], ['ro_listen', c.ro_listen], ['metrics_listen', c.metrics_listen]].filter(([, v]) => v);
  for (let i = 0; i < addrs.length; i++) {
    for (let j = i + 1; j < addrs.length; j++) {
      const [a, av] = addrs[i] as [string, string];
      const [b, bv] = addrs[j] as [string, string];
      if (av === bv && listenAddress(av).port !== 0) out.push({ path: b, message: `must differ from ${a} (${av})` });
    }
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
  const r = validate(proxySchema, doc);
  problems.push(...r.problems);
  if (problems.length) throw new ConfigError(problems, source);
  const c = r.value as ProxyConfig;
  c.databases = databases;
  c.users = users;
  if (c.auth_file) c.auth_file = resolve(baseDir, c.auth_file);
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
  const d = c.databases[database];
  const u = c.users[user];
  return {
    mode: u?.pool_mode ?? d?.pool_mode ?? c.pool_mode,
    size: u?.pool_size ?? d?.pool_size ?? c.default_pool_size,
  };
}
