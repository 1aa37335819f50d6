/**
 * Loads a node config: YAML file → environment overrides → schema validation → derived defaults → cross-field rules.
 * Every problem is reported at once with its key path; nothing starts on an invalid config (the CLI exits 2).
 */
import { compressionLevelProblem } from '../backup/config.js';
import { dirname, join, resolve } from 'node:path';
import { readYamlFile } from './yaml.js';
import { ConfigError, describe, type Problem, schemaAt, validate } from './schema.js';
import { nodeSchema, type NodeConfig } from './node.js';
import { restapiProblems, resolveRestFiles } from './restapi-rules.js';
import { localOnlyProblems } from './pg-params.js';
import { etcdSecurityProblems, resolveEtcdFiles } from './etcd-section.js';
import { bootstrapRestoreProblems } from './bootstrap-restore.js';
import { formatHostPort, parseListen } from '../lib/net.js';

/** Short names Patroni users know, mapped to config paths (besides the derived PGKEEL_<PATH> names). */
export const ENV_ALIASES: Readonly<Record<string, string>> = {
  PGKEEL_SUPERUSER_USERNAME: 'postgresql.authentication.superuser.username',
  PGKEEL_SUPERUSER_PASSWORD: 'postgresql.authentication.superuser.password',
  PGKEEL_REPLICATION_USERNAME: 'postgresql.authentication.replication.username',
  PGKEEL_REPLICATION_PASSWORD: 'postgresql.authentication.replication.password',
  PGKEEL_RESTAPI_USERNAME: 'restapi.authentication.username',
  PGKEEL_RESTAPI_PASSWORD: 'restapi.authentication.password',
};

/** `postgresql.data_dir` → `PGKEEL_POSTGRESQL_DATA_DIR`. */
export function envNameFor(path: string): string {
  return 'PGKEEL_' + path.replace(/\./g, '_').toUpperCase();
}

/** Every environment variable that overrides a setting, with the setting's path. */
export function envOverrides(): Array<{ env: string; path: string }> {
  const rows = describe(nodeSchema)
    .filter((d) => !d.type.startsWith('a mapping'))
    .map((d) => ({ env: envNameFor(d.path), path: d.path }));
  for (const [env, path] of Object.entries(ENV_ALIASES)) rows.push({ env, path });
  return rows;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const { env: name, path } of envOverrides()) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const s = schemaAt(nodeSchema, path.split('.'));
    setPath(
      raw,
      path,
      s?.kind === 'list'
        ? v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : v,
    );
  }
}

/** Unix socket paths are limited to 107 bytes; ".s.PGSQL.NNNNN" is appended to the directory. */
const MAX_SOCKET_DIR = 107 - '/.s.PGSQL.65535'.length;

export function crossFieldProblems(c: NodeConfig): Problem[] {
  const out: Problem[] = [];
  const d = c.bootstrap.dcs;
  if (d.loop_wait + 2 * d.retry_timeout > d.ttl) {
    out.push({
      path: 'bootstrap.dcs.ttl',
      message: `must be at least loop_wait + 2*retry_timeout (${d.loop_wait} + 2*${d.retry_timeout} = ${d.loop_wait + 2 * d.retry_timeout}), got ${d.ttl}: a leader must be able to notice it lost the DCS and demote before its key expires`,
    });
  }
  if (Buffer.byteLength(c.postgresql.socket_dir) > MAX_SOCKET_DIR) {
    out.push({
      path: 'postgresql.socket_dir',
      message: `must be at most ${MAX_SOCKET_DIR} bytes long (unix socket path limit), got ${Buffer.byteLength(c.postgresql.socket_dir)}; set a shorter postgresql.socket_dir`,
    });
  }
  out.push(...etcdSecurityProblems(c.etcd3, 'etcd3'));
  if (c.restapi.listen === c.postgresql.listen)
    out.push({ path: 'restapi.listen', message: `must differ from postgresql.listen (${c.postgresql.listen})` });
  out.push(...restapiProblems(c));
  if (c.postgresql.authentication.superuser.username === c.postgresql.authentication.replication.username) {
    out.push({
      path: 'postgresql.authentication.replication.username',
      message: 'must differ from the superuser name',
    });
  }
  out.push(...sslClientProblems(c));
  if (d.backup) {
    const level = compressionLevelProblem(d.backup);
    if (level) out.push({ path: 'bootstrap.dcs.backup.compression_level', message: level.replace(/^[^:]*: /, '') });
  }
  const methods = c.postgresql.create_replica_methods;
  if (methods.length === 0 || new Set(methods).size !== methods.length)
    out.push({
      path: 'postgresql.create_replica_methods',
      message: `expected each method at most once and at least one, got ${JSON.stringify(methods)}`,
    });
  out.push(...bootstrapRestoreProblems(c.bootstrap.restore, [c.backup?.repo, d.backup?.repo]));
  // bootstrap.dcs becomes the shared DCS config: the same rule as for PATCH /config, so a node cannot seed it with
  // what its peers would refuse (their own local files still decide what they apply).
  out.push(
    ...localOnlyProblems(
      c.bootstrap.dcs.postgresql.parameters,
      'bootstrap.dcs.postgresql.parameters',
      c.postgresql.allow_dynamic_parameters,
    ),
  );
  return out;
}

const SSL_FILE_KEYS = ['sslrootcert', 'sslcert', 'sslkey', 'sslcrl'] as const;

/** libpq would fall back to ~postgres/.postgresql/root.crt and fail only when a replica connects: refuse it here. */
function sslClientProblems(c: NodeConfig): Problem[] {
  const out: Problem[] = [];
  for (const role of ['superuser', 'replication'] as const) {
    const a = c.postgresql.authentication[role];
    const path = `postgresql.authentication.${role}`;
    if ((a.sslmode === 'verify-ca' || a.sslmode === 'verify-full') && !a.sslrootcert)
      out.push({
        path: `${path}.sslrootcert`,
        message: `is required with sslmode ${a.sslmode}: expected the path of the CA certificate that signed the members' server certificates`,
      });
    if (!a.sslcert !== !a.sslkey)
      out.push({
        path: `${path}.${a.sslcert ? 'sslkey' : 'sslcert'}`,
        message: `is required with ${a.sslcert ? 'sslcert' : 'sslkey'}: expected a path`,
      });
  }
  return out;
}

/** postgresql.connect_address when not given: listen's first host ("*" as 0.0.0.0, as before) and its port. */
function defaultConnectAddress(listen: string): string {
  const { hosts, port } = parseListen(listen);
  const host = hosts[0] === '*' ? '0.0.0.0' : (hosts[0] as string);
  return formatHostPort(host, port);
}

/** Validates a parsed document (plus env) into a NodeConfig; throws ConfigError listing every problem. */
export function configFromObject(
  raw: unknown,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  baseDir = process.cwd(),
): NodeConfig {
  const doc: Record<string, unknown> =
    raw && typeof raw === 'object' && !Array.isArray(raw) ? structuredClone(raw as Record<string, unknown>) : {};
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError([{ path: '', message: 'expected a mapping of settings at the top level' }], source);
  }
  applyEnv(doc, env);
  const { value, problems } = validate(nodeSchema, doc, '', { secretFiles: { baseDir } });
  if (problems.length) throw new ConfigError(problems, source);
  const c = value as NodeConfig;
  c.restapi.connect_address ??= c.restapi.listen;
  c.postgresql.connect_address ??= defaultConnectAddress(c.postgresql.listen);
  c.namespace = c.namespace.replace(/\//g, '');
  // Relative paths are relative to the config file's directory, so a cluster directory can be moved whole.
  c.postgresql.data_dir = resolve(baseDir, c.postgresql.data_dir);
  c.postgresql.socket_dir = c.postgresql.socket_dir
    ? resolve(baseDir, c.postgresql.socket_dir)
    : join(dirname(c.postgresql.data_dir), 'run');
  c.postgresql.pgpass = c.postgresql.pgpass
    ? resolve(baseDir, c.postgresql.pgpass)
    : join(dirname(c.postgresql.data_dir), 'pgpass');
  resolveRestFiles(c, baseDir);
  for (const role of ['superuser', 'replication'] as const) {
    const a = c.postgresql.authentication[role];
    for (const k of SSL_FILE_KEYS) if (a[k]) a[k] = resolve(baseDir, a[k]);
  }
  resolveEtcdFiles(c.etcd3, baseDir);
  const cross = crossFieldProblems(c);
  if (cross.length) throw new ConfigError(cross, source);
  return c;
}

/** Reads and validates a YAML node config file. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  return configFromObject(readYamlFile(file), file, env, dirname(resolve(file)));
}
