/**
 * The admin console (virtual databases `pgbouncer` and `pgkeel`), compatible with pgBouncer's: simple queries
 * only, SHOW commands with pgBouncer 1.25's column names, order and types (src/admin.c; poolers.md §2), so
 * pgbouncer_exporter and operators' scripts work unchanged. Rendering is pure: `executeAdmin` turns a command and a
 * data snapshot into protocol messages (admin.test.ts checks them byte for byte through the codec's parsers).
 *
 * Types as pgBouncer's pktbuf letters: s text, i int4, q int8, N numeric, T timestamp rendered as text.
 */
import {
  buildCommandComplete,
  buildDataRow,
  buildErrorResponse,
  buildRowDescription,
  type CellValue,
  TypeOid,
} from '../../protocol/index.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import { STAT_FIELDS, type StatValues } from '../pool/stats.js';
import type { WaitCounts } from '../pool/wait-histogram.js';

type Letter = 's' | 'i' | 'q' | 'N' | 'T';
const OID: Record<Letter, number> = {
  s: TypeOid.text,
  i: TypeOid.int4,
  q: TypeOid.int8,
  N: TypeOid.numeric,
  T: TypeOid.text,
};

export interface Table {
  readonly columns: readonly string[];
  /** One letter per column. */
  readonly types: string;
  readonly rows: readonly (readonly CellValue[])[];
}

export interface PoolInfo {
  readonly database: string;
  readonly user: string;
  readonly clActive: number;
  readonly clWaiting: number;
  readonly svActive: number;
  readonly svIdle: number;
  readonly svUsed: number;
  readonly svLogin: number;
  readonly maxWaitUs: number;
  readonly mode: string;
}

export interface ConnInfo {
  readonly type: 'C' | 'S';
  readonly user: string;
  readonly database: string;
  readonly state: string;
  readonly addr: string;
  readonly port: number;
  readonly localAddr: string;
  readonly localPort: number;
  /** ms since the epoch. */
  readonly connectTime: number;
  readonly requestTime: number;
  readonly waitUs: number;
  readonly closeNeeded: boolean;
  readonly ptr: string;
  readonly link: string;
  readonly remotePid: number;
  /** pgBouncer's "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519"; empty or absent for a plain connection. */
  readonly tls?: string;
  readonly applicationName: string;
  readonly preparedStatements: number;
  readonly id: number;
}

export interface DatabaseInfo {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly poolSize: number;
  readonly minPoolSize: number;
  /** reserve_pool_size (pgBouncer 1.18 names the column reserve_pool). */
  readonly reservePoolSize: number;
  readonly serverLifetime: number;
  readonly poolMode: string;
  readonly currentConnections: number;
  readonly currentClientConnections: number;
  readonly paused: boolean;
}

export interface TopologyRow {
  readonly node: string;
  readonly role: string;
  readonly host: string;
  readonly port: number;
  readonly lagBytes: number | null;
  readonly eligible: boolean;
}

/** Per pool: SHOW STATS' averages and the client wait histogram (wait-histogram.ts); /stats and /metrics show them. */
export interface PoolPeriodInfo {
  readonly database: string;
  readonly user: string;
  /** Per-second averages (time fields per event) since the last stats roll, as SHOW STATS computes them. */
  readonly averages: StatValues;
  /** Every wait since the proxy started. */
  readonly waits: WaitCounts;
  /** The waits since the last stats roll (the window of `averages`). */
  readonly recentWaits: WaitCounts;
}

/** A snapshot of the proxy, taken when the command runs. */
export interface AdminData {
  readonly version: string;
  pools(): PoolInfo[];
  clients(): ConnInfo[];
  servers(): ConnInfo[];
  databases(): DatabaseInfo[];
  lists(): [string, number][];
  /** key, value, default, changeable ('yes'/'no'). */
  config(): [string, string, string, string][];
  stats(): { database: string; totals: StatValues; averages: StatValues }[];
  poolStats(): PoolPeriodInfo[];
  topology(): { reason: string; rows: TopologyRow[] };
  state(): { paused: boolean; shuttingDown: boolean };
}

export interface AdminActions {
  pause(db: string | undefined): void;
  resume(db: string | undefined): void;
  reconnect(db: string | undefined): void;
  kill(db: string): void;
  /** Re-reads the config file and auth file; throws on an invalid new config (nothing is applied then). */
  reload(): void;
  shutdown(): void;
}

export function renderTable(t: Table, tag = 'SHOW'): Buffer[] {
  const out: Buffer[] = [
    buildRowDescription(t.columns.map((name, i) => ({ name, typeOid: OID[(t.types[i] ?? 's') as Letter] }))),
  ];
  for (const r of t.rows) out.push(buildDataRow(r.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v))));
  out.push(buildCommandComplete(tag));
  return out;
}

/** pgBouncer renders timestamps as "YYYY-MM-DD HH:MM:SS UTC". */
export function formatTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

const CONN_COLUMNS = [
  'type',
  'user',
  'database',
  'replication',
  'state',
  'addr',
  'port',
  'local_addr',
  'local_port',
  'connect_time',
  'request_time',
  'wait',
  'wait_us',
  'close_needed',
  'ptr',
  'link',
  'remote_pid',
  'tls',
  'application_name',
  'prepared_statements',
  'id',
];

function connTable(rows: ConnInfo[]): Table {
  return {
    columns: CONN_COLUMNS,
    types: 'ssssssisiTTiiississii',
    rows: rows.map((c) => [
      c.type,
      c.user,
      c.database,
      'none',
      c.state,
      c.addr,
      c.port,
      c.localAddr,
      c.localPort,
      formatTime(c.connectTime),
      formatTime(c.requestTime),
      Math.floor(c.waitUs / 1e6),
      c.waitUs % 1e6,
      c.closeNeeded ? 1 : 0,
      c.ptr,
      c.link,
      c.remotePid,
      c.tls ?? '',
      c.applicationName,
      c.preparedStatements,
      c.id,
    ]),
  };
}

export function showPools(d: AdminData): Table {
  return {
    columns: [
      'database',
      'user',
      'cl_active',
      'cl_waiting',
      'cl_active_cancel_req',
      'cl_waiting_cancel_req',
      'sv_active',
      'sv_active_cancel',
      'sv_being_canceled',
      'sv_idle',
      'sv_used',
      'sv_tested',
      'sv_login',
      'maxwait',
      'maxwait_us',
      'pool_mode',
      'load_balance_hosts',
    ],
    types: 'ssiiiiiiiiiiiiiss',
    rows: d
      .pools()
      .map((p) => [
        p.database,
        p.user,
        p.clActive,
        p.clWaiting,
        0,
        0,
        p.svActive,
        0,
        0,
        p.svIdle,
        p.svUsed,
        0,
        p.svLogin,
        Math.floor(p.maxWaitUs / 1e6),
        p.maxWaitUs % 1e6,
        p.mode,
        '',
      ]),
  };
}

function statsTable(d: AdminData, kind: 'both' | 'totals' | 'averages'): Table {
  const values = (s: StatValues): number[] => STAT_FIELDS.map((f) => s[f]);
  const rows = d.stats();
  if (kind === 'both') {
    const cols = [
      'database',
      ...STAT_FIELDS.map((f) => `total_${f}`),
      ...STAT_FIELDS.map((f) => (f === 'received' ? 'avg_recv' : `avg_${f}`)),
    ];
    return {
      columns: cols,
      types: 's' + 'N'.repeat(cols.length - 1),
      rows: rows.map((r) => [r.database, ...values(r.totals), ...values(r.averages)]),
    };
  }
  const base = [
    'server_assignment_count',
    'xact_count',
    'query_count',
    'bytes_received',
    'bytes_sent',
    'xact_time',
    'query_time',
    'wait_time',
    'client_parse_count',
    'server_parse_count',
    'bind_count',
    'client_login_count',
  ];
  const cols = kind === 'totals' ? base : base.map((c, i) => (i >= 8 ? `avg_${c}` : c));
  return {
    columns: ['database', ...cols],
    types: 's' + 'N'.repeat(cols.length),
    rows: rows.map((r) => [r.database, ...values(kind === 'totals' ? r.totals : r.averages)]),
  };
}

function showDatabases(d: AdminData): Table {
  return {
    columns: [
      'name',
      'host',
      'port',
      'database',
      'force_user',
      'pool_size',
      'min_pool_size',
      'reserve_pool_size',
      'server_lifetime',
      'pool_mode',
      'load_balance_hosts',
      'max_connections',
      'current_connections',
      'max_client_connections',
      'current_client_connections',
      'paused',
      'disabled',
    ],
    types: 'ssissiiiissiiiiii',
    rows: d
      .databases()
      .map((b) => [
        b.name,
        b.host,
        b.port,
        b.database,
        '',
        b.poolSize,
        b.minPoolSize,
        b.reservePoolSize,
        b.serverLifetime,
        b.poolMode,
        '',
        0,
        b.currentConnections,
        0,
        b.currentClientConnections,
        b.paused ? 1 : 0,
        0,
      ]),
  };
}

const HELP = [
  'SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|STATS|STATS_TOTALS|STATS_AVERAGES|LISTS|VERSION|STATE|TOPOLOGY',
  'PAUSE [<db>]',
  'RESUME [<db>]',
  'RECONNECT [<db>]',
  'KILL <db>',
  'RELOAD',
  'SHUTDOWN',
];

function show(what: string, d: AdminData): Table {
  switch (what) {
    case 'pools':
      return showPools(d);
    case 'stats':
      return statsTable(d, 'both');
    case 'stats_totals':
      return statsTable(d, 'totals');
    case 'stats_averages':
      return statsTable(d, 'averages');
    case 'clients':
      return connTable(d.clients());
    case 'servers':
      return connTable(d.servers());
    case 'databases':
      return showDatabases(d);
    case 'lists':
      return { columns: ['list', 'items'], types: 'si', rows: d.lists() };
    case 'config':
      return { columns: ['key', 'value', 'default', 'changeable'], types: 'ssss', rows: d.config() };
    case 'version':
      return { columns: ['version'], types: 's', rows: [[d.version]] };
    case 'state': {
      const s = d.state();
      return {
        columns: ['key', 'value'],
        types: 'ss',
        rows: [
          ['active', s.paused ? 'no' : 'yes'],
          ['paused', s.paused ? 'yes' : 'no'],
          ['suspended', 'no'],
        ],
      };
    }
    case 'topology': {
      const t = d.topology();
      return {
        columns: ['node', 'role', 'host', 'port', 'lag_bytes', 'eligible', 'reason'],
        types: 'sssiqss',
        rows: t.rows.map((r) => [r.node, r.role, r.host, r.port, r.lagBytes, r.eligible ? 'yes' : 'no', t.reason]),
      };
    }
    case 'help':
      return { columns: ['command'], types: 's', rows: HELP.map((h) => [h]) };
    default:
      throw new ProxyError(ProxyErrorCode.AdminSyntax, `unsupported SHOW command: ${what}`);
  }
}

/**
 * Runs one admin console query. Errors in the command are answered with an ERROR (the session stays usable);
 * `readOnly` users (stats_users) may only SHOW.
 */
export function executeAdmin(sql: string, d: AdminData, act: AdminActions, readOnly: boolean): Buffer[] {
  try {
    const words = sql.trim().replace(/;\s*$/, '').trim().split(/\s+/).filter(Boolean);
    const verb = (words[0] ?? '').toUpperCase();
    const arg = words[1];
    if (verb === '') return [buildCommandComplete('')];
    if (verb === 'SHOW') {
      if (!arg || words.length > 2)
        throw new ProxyError(ProxyErrorCode.AdminSyntax, 'expected SHOW <what>; try SHOW HELP');
      return renderTable(show(arg.toLowerCase(), d));
    }
    if (readOnly)
      throw new ProxyError(
        ProxyErrorCode.AdminDenied,
        `admin access needed for ${verb}: the user is only in stats_users`,
      );
    if (words.length > 2) throw new ProxyError(ProxyErrorCode.AdminSyntax, `too many arguments to ${verb}`);
    switch (verb) {
      case 'PAUSE':
        act.pause(arg);
        break;
      case 'RESUME':
        act.resume(arg);
        break;
      case 'RECONNECT':
        act.reconnect(arg);
        break;
      case 'KILL':
        if (!arg) throw new ProxyError(ProxyErrorCode.AdminSyntax, 'expected KILL <db>');
        act.kill(arg);
        break;
      case 'RELOAD':
        act.reload();
        break;
      case 'SHUTDOWN':
        act.shutdown();
        break;
      default:
        throw new ProxyError(ProxyErrorCode.AdminSyntax, `invalid command "${words[0]}"; try SHOW HELP`);
    }
    return [buildCommandComplete(verb)];
  } catch (err) {
    const e = err instanceof ProxyError ? err : new ProxyError(ProxyErrorCode.AdminSyntax, (err as Error).message);
    return [buildErrorResponse({ severity: 'ERROR', sqlstate: e.sqlstate, message: e.message })];
  }
}
