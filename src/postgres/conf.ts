/**
 * The configuration pgkeel manages for its PostgreSQL: generated as text from the node config and the cluster's
 * dynamic config, written whole each time (so what is on disk is always what pgkeel meant). Pure functions.
 */
import type { NodeConfig } from '../config/node.js';
import { GUC_NAME } from '../config/pg-params.js';
import { hasControlChar } from '../config/schema.js';
import { listenAddresses, parseListen } from '../lib/net.js';
import { clientSslPairs, isOn, serverFileParameters, type Parameters, type Role, type TlsFiles } from './tls.js';

export const MANAGED_CONF = 'postgresql.pgkeel.conf';
export const INCLUDE_LINE = `include_if_exists '${MANAGED_CONF}'`;

/** Parameters every member must have for streaming replication, failover and pg_rewind; the user cannot lower them. */
export const REQUIRED_PARAMETERS: Readonly<Record<string, string | number>> = {
  wal_level: 'replica',
  hot_standby: 'on',
  wal_log_hints: 'on',
};

/** Defaults a user may change (through bootstrap.dcs.postgresql.parameters or postgresql.parameters). */
export const DEFAULT_PARAMETERS: Readonly<Record<string, string | number>> = {
  max_connections: 100,
  max_wal_senders: 10,
  max_replication_slots: 10,
  wal_keep_size: '128MB',
  // A replica that stops consuming (full disk, long outage) must not fill the leader's disk through its slot:
  // past this the slot is invalidated and the replica re-cloned (decide-follower.ts, docs/failover.md).
  max_slot_wal_keep_size: '4GB',
  hot_standby_feedback: 'on',
  wal_receiver_status_interval: '1s',
  // A stream whose connection stalls (a healed partition leaves it in TCP retransmission, nothing refuses) must be
  // noticed in seconds, not PostgreSQL's default minute: the receiver pings after half of wal_receiver_timeout of
  // silence and gives up at the full value, then reconnects; the sender likewise (it hears a status every 1 s).
  wal_receiver_timeout: '10s',
  wal_sender_timeout: '10s',
  password_encryption: 'scram-sha-256',
  // Logs pgBadger can read (docs/observe.md, `pgkeel report`): stderr to DIR/<node>/postgresql.log (pg_ctl -l), a
  // prefix pgBadger parses (time with ms, pid, user@db for session lines), and the events its report is made of.
  logging_collector: 'off',
  log_line_prefix: '%m [%p] %q%u@%d ',
  // Every member's log in one zone, so lines from several hosts merge in order and `report --since` means the same.
  log_timezone: 'UTC',
  log_min_duration_statement: '1s',
  log_checkpoints: 'on',
  log_lock_waits: 'on',
  log_temp_files: 0,
  // 10s, not 0: every autovacuum of a small table would be a line; the slow ones are the ones worth reading.
  log_autovacuum_min_duration: '10s',
  // One line per connection is noise at pooler churn rates and the proxy already counts logins.
  log_connections: 'off',
  log_disconnections: 'off',
};

export interface Upstream {
  readonly host: string;
  readonly port: number;
  /** Replication slot on the upstream; null when slots are off. */
  readonly slot: string | null;
}

/** Patroni's slot naming: lower case, anything but [a-z0-9_] becomes '_'. */
export function slotNameFor(member: string): string {
  return member
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63);
}

/**
 * A setting the renderer will not write: a name PostgreSQL would not read as one identifier, or a value with a
 * control character (a newline would start a line of the attacker's choosing). Config validation refuses these
 * first, with the key path; this is the last line of defence for any value that reaches the renderer another way.
 */
export class ConfRefusedError extends Error {
  readonly code = 'PG_CONF_REFUSED';
  constructor(
    readonly file: string,
    readonly key: string,
    why: string,
  ) {
    super(`refusing to write ${file}: ${key} ${why}`);
    this.name = 'ConfRefusedError';
  }
}

/**
 * A postgresql.conf value: numbers and booleans bare, strings single-quoted with `\` and `'` escaped as
 * PostgreSQL's GUC_scanstr reads them back (a quoted string cannot span lines, hence no control characters).
 */
function quote(name: string, v: string | number | boolean): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v))
      throw new ConfRefusedError(MANAGED_CONF, name, `has the value ${v}, expected a finite number`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (hasControlChar(v))
    throw new ConfRefusedError(MANAGED_CONF, name, `has a value with a control character: ${JSON.stringify(v)}`);
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** libpq conninfo value quoting. */
function cq(v: string): string {
  return /^[A-Za-z0-9_.\-/:]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A libpq connection string from key/value pairs. */
export function conninfo(pairs: ReadonlyArray<readonly [string, string | number]>): string {
  return pairs.map(([k, v]) => `${k}=${typeof v === 'number' ? v : cq(v)}`).join(' ');
}

/** A connection to another member as `role`, TLS settings included (pg_basebackup, pg_rewind, primary_conninfo). */
export function memberConninfo(
  cfg: NodeConfig,
  role: Role,
  to: { host: string; port: number },
  files: TlsFiles,
  extra: ReadonlyArray<readonly [string, string | number]> = [],
): string {
  const a = cfg.postgresql.authentication[role];
  return conninfo([
    ['host', to.host],
    ['port', to.port],
    ['user', a.username],
    ...extra,
    ...clientSslPairs(cfg, role, files),
  ]);
}

export function primaryConninfo(cfg: NodeConfig, up: Upstream, files: TlsFiles = {}): string {
  return memberConninfo(cfg, 'replication', up, files, [
    ['passfile', cfg.postgresql.pgpass],
    ['application_name', cfg.name],
    ['gssencmode', 'disable'],
    ['connect_timeout', 3],
    ['keepalives_idle', 5],
    ['keepalives_interval', 2],
    ['keepalives_count', 3],
    // Keepalives only probe an idle connection; unacknowledged data in flight is bounded by tcp_user_timeout (ms).
    ['tcp_user_timeout', 10000],
  ]);
}

export interface ConfInput {
  readonly cfg: NodeConfig;
  /** Parameters from the DCS `config` key (postgresql.parameters), if any; local ones win. */
  readonly dcsParameters: Readonly<Record<string, string | number | boolean>>;
  /** Replica: where to stream from; null on a primary or a replica without an upstream yet. */
  readonly upstream: Upstream | null;
  /** synchronous_standby_names value the agent manages ('' = none). */
  readonly synchronousStandbyNames: string;
  /** Postgres-owned copies of the local config's TLS files (see tls.ts); absent or empty: the files as configured. */
  readonly tlsFiles?: TlsFiles;
  /** archive_mode / archive_command / restore_command from the backup settings (backup/archiving.ts); they win. */
  readonly archive?: Readonly<Record<string, string | number>>;
}

/** Parameter names are case-insensitive in PostgreSQL: one spelling per parameter, so precedence is by source only. */
function lowerNames(p: Readonly<Record<string, string | number | boolean>>): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k.toLowerCase(), v]));
}

export function managedParameters(inp: ConfInput): Record<string, string | number | boolean> {
  const { hosts, port } = parseListen(inp.cfg.postgresql.listen);
  const files = inp.tlsFiles ?? {};
  const chosen = { ...lowerNames(inp.dcsParameters), ...lowerNames(inp.cfg.postgresql.parameters) };
  const p: Record<string, string | number | boolean> = {
    ...DEFAULT_PARAMETERS,
    ...chosen,
    ...serverFileParameters(files),
    ...inp.archive,
    ...REQUIRED_PARAMETERS,
    // `logical` is above the floor and keeps everything `replica` gives (a multi-master mesh needs it: src/mesh/).
    ...(String(chosen['wal_level']).toLowerCase() === 'logical' ? { wal_level: 'logical' } : {}),
    listen_addresses: listenAddresses(hosts),
    port,
    unix_socket_directories: inp.cfg.postgresql.socket_dir,
    cluster_name: inp.cfg.name,
    recovery_target_timeline: 'latest',
    synchronous_standby_names: inp.synchronousStandbyNames,
    primary_conninfo: inp.upstream ? primaryConninfo(inp.cfg, inp.upstream, files) : '',
    primary_slot_name: inp.upstream?.slot ?? '',
  };
  return p;
}

export function renderConf(params: Readonly<Record<string, string | number | boolean>>): string {
  const lines = [
    '# Written by pgkeel; edits are overwritten. Change settings in the pgkeel config or the DCS (pgkeel ctl edit-config).',
  ];
  for (const k of Object.keys(params).sort()) {
    if (!GUC_NAME.test(k))
      throw new ConfRefusedError(MANAGED_CONF, JSON.stringify(k), 'is not a PostgreSQL parameter name');
    lines.push(`${k} = ${quote(k, params[k] as string | number | boolean)}`);
  }
  return lines.join('\n') + '\n';
}

/** Whether the merged parameters turn the server's TLS on (local parameters win over the DCS's). */
export function sslEnabled(cfg: NodeConfig, dcsParameters: Parameters): boolean {
  return isOn({ ...dcsParameters, ...cfg.postgresql.parameters }['ssl']);
}

/**
 * pgkeel's own lines first, then the user's. With `ssl` on, every TCP line pgkeel writes is `hostssl` — replication,
 * the superuser on loopback, and the default catch-all — so nothing pgkeel allows over TCP travels in clear text;
 * `local` (unix socket) lines stay, the agent connects through them. The user's own `postgresql.pg_hba` lines are
 * kept as written.
 */
export function renderHba(cfg: NodeConfig, ssl = false): string {
  const su = cfg.postgresql.authentication.superuser.username;
  const rep = cfg.postgresql.authentication.replication.username;
  const host = ssl ? 'hostssl' : 'host   ';
  const lines = [
    '# Written by pgkeel; edits are overwritten. Add lines with postgresql.pg_hba in the pgkeel config.',
    `local   all          ${su}   scram-sha-256`,
    `local   replication  ${rep}   scram-sha-256`,
    `${host} all          ${su}   127.0.0.1/32  scram-sha-256`,
    `${host} all          ${su}   ::1/128       scram-sha-256`,
    `${host} replication  ${rep}   all           scram-sha-256`,
  ];
  const user = cfg.postgresql.pg_hba.length
    ? cfg.postgresql.pg_hba
    : ['local   all  all        scram-sha-256', `${host} all  all  all   scram-sha-256`];
  const all = [...lines, ...user];
  all.forEach((l, i) => {
    if (hasControlChar(l))
      throw new ConfRefusedError(
        'pg_hba.conf',
        i < lines.length ? `line ${i + 1}` : `postgresql.pg_hba[${i - lines.length}]`,
        `has a control character: ${JSON.stringify(l)}`,
      );
  });
  return all.join('\n') + '\n';
}

/** One pgpass line ("host:port:db:user:password"), escaping ':' and '\\' as libpq requires. */
export function pgpassLine(host: string, port: number | '*', user: string, password: string, db = '*'): string {
  const e = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  return `${e(host)}:${port}:${e(db)}:${e(user)}:${e(password)}`;
}
