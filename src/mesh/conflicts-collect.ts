/**
 * The agent's conflict collector: while this node's site is in a mesh (its DCS holds the `mesh` key), it reads its
 * own PostgreSQL server log from a remembered offset, turns pglogical's CONFLICT lines into history rows
 * (conflicts-parse.ts) and counts them by type, resolution and table for /metrics
 * (`pgkeel_mesh_conflicts_total`). It reads only while this node leads its site (only the leader applies peers'
 * changes, so only it logs conflicts): the rows go into `pgkeel_mesh.conflicts` first, and the offset moves on only
 * once they are stored, so a failed insert is retried next cycle, never lost or counted twice.
 *
 * The offset is kept in a file beside the data directory (`mesh-conflicts.offset`: byte offset and the log's
 * inode), so a restarted agent goes on where it stopped; a log that was replaced or truncated is read from its start.
 * Failures are logged (once per distinct message) and never reach the HA loop.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { PgMetricsPort } from '../api/ports.js';
import type { NodeConfig } from '../config/node.js';
import { parseListen } from '../lib/net.js';
import type { Logger } from '../lib/log.js';
import { serverLogFile } from '../postgres/instance.js';
import type { Sql } from './engine.js';
import type { ConflictRow } from './conflicts-label.js';
import { parseConflicts, type ParsedConflict } from './conflicts-parse.js';
import { type ConflictInsert, insertConflicts } from './conflicts-store.js';
import type { MeshRecord } from './plan.js';

/** At most this much of the log is read per cycle. */
const CHUNK = 1 << 20;
/** How often the DCS is asked whether the site is in a mesh. */
const RECORD_EVERY_MS = 15_000;

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

export const offsetFileFor = (dataDir: string) => join(dirname(dataDir), 'mesh-conflicts.offset');

interface Offset {
  readonly offset: number;
  readonly ino: number;
}

export interface CollectorDeps {
  readonly scope: string;
  readonly member: string;
  readonly logFile: string;
  readonly offsetFile: string;
  /** The site's mesh record (null: not in a mesh). */
  readonly readRecord: () => Promise<MeshRecord | null>;
  /** A connection to the local PostgreSQL's `database`. */
  readonly connect: (database: string) => Promise<Sql & { close(): Promise<void> }>;
  readonly log: Logger;
  readonly now: () => number;
}

/**
 * A history row from a parsed conflict. `origins` maps the logging node's replication origin ids to sites
 * (0 is the node itself).
 */
export function toRow(
  c: ParsedConflict,
  site: string,
  member: string,
  origins: ReadonlyMap<number, string>,
): ConflictInsert {
  const originSite = (o: number) => (o === 0 ? site : (origins.get(o) ?? `origin ${o}`));
  const row: ConflictRow = {
    id: createHash('sha256').update(`${site}\n${c.raw}`).digest('hex').slice(0, 32),
    site,
    member,
    at: new Date(c.at ?? 0).toISOString(),
    table: c.table,
    key: c.key,
    type: c.type,
    resolution: c.resolution,
    local_origin: c.local ? originSite(c.local.origin) : null,
    remote_origin: originSite(c.remote.origin),
    local_commit_ts: c.local?.commitTs ?? null,
    remote_commit_ts: c.remote.commitTs,
    local_tuple: c.local?.tuple ?? null,
    remote_tuple: c.remote.tuple,
  };
  return { ...row, raw: c.raw };
}

export class ConflictCollector {
  /** `type|resolution|table` → conflicts counted since the agent started. */
  private readonly counts = new Map<string, number>();
  private record: MeshRecord | null = null;
  private recordAt = Number.NEGATIVE_INFINITY;
  private running = false;
  private db: (Sql & { close(): Promise<void> }) | null = null;
  private lastWarning = '';

  constructor(private readonly deps: CollectorDeps) {}

  /** One pass; never throws. `leads`: this node is its site's running leader. */
  async tick(leads: boolean): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.pass(leads);
      this.lastWarning = '';
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.lastWarning) this.deps.log.warn(`mesh conflicts: ${msg}`, { err });
      this.lastWarning = msg;
      await this.db?.close().catch(() => undefined);
      this.db = null;
    } finally {
      this.running = false;
    }
  }

  private async pass(leads: boolean): Promise<void> {
    const d = this.deps;
    if (d.now() - this.recordAt >= RECORD_EVERY_MS) {
      this.record = await d.readRecord();
      this.recordAt = d.now();
    }
    const record = this.record;
    // Only the running leader applies changes from peers, so only it logs conflicts; a member that does not lead
    // now keeps its offset (what it logged while it led is stored when it leads again).
    if (!leads || !record || !existsSync(d.logFile)) return;
    const st = statSync(d.logFile);
    let at = this.readOffset();
    if (at.ino !== st.ino || at.offset > st.size) at = { offset: 0, ino: st.ino };
    if (at.offset === st.size) return;
    const buf = readAt(d.logFile, at.offset, Math.min(CHUNK, st.size - at.offset));
    const text = buf.toString('utf8', 0, buf.lastIndexOf(10) + 1);
    if (text === '' && buf.length === CHUNK) {
      // A line longer than a whole chunk holds no conflict we could read: step over it rather than stall.
      writeFileSync(d.offsetFile, JSON.stringify({ offset: at.offset + CHUNK, ino: st.ino }));
      return;
    }
    const needsDb = text.includes('CONFLICT: remote ');
    const db = needsDb ? await this.connection(record.database) : null;
    const pks = db ? await primaryKeys(db) : new Map<string, string[]>();
    const { conflicts, consumed } = parseConflicts(text, (t) => pks.get(t));
    if (conflicts.length && db) {
      const origins = await originSites(db, record);
      const rows = conflicts.map((c) => toRow(c, d.scope, d.member, origins));
      await insertConflicts(db, rows);
    }
    for (const c of conflicts) {
      const k = `${c.type}|${c.resolution}|${c.table}`;
      this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    }
    const next = at.offset + Buffer.byteLength(text.slice(0, consumed));
    if (next !== at.offset) writeFileSync(d.offsetFile, JSON.stringify({ offset: next, ino: st.ino }));
  }

  private readOffset(): Offset {
    try {
      const o = JSON.parse(readFileSync(this.deps.offsetFile, 'utf8')) as Offset;
      if (Number.isInteger(o.offset) && o.offset >= 0) return o;
    } catch {
      // none yet
    }
    return { offset: 0, ino: -1 };
  }

  private async connection(database: string): Promise<Sql> {
    if (!this.db) this.db = await this.deps.connect(database);
    return this.db;
  }

  /** `pgkeel_mesh_conflicts_total` in Prometheus text; `labels` are the agent's (scope, name). */
  metrics(labels: string): string[] {
    const name = 'pgkeel_mesh_conflicts_total';
    const out = [
      `# HELP ${name} Conflicts pglogical reported in this node's server log since the agent started, by type, resolution and table.`,
      `# TYPE ${name} counter`,
    ];
    for (const [k, n] of [...this.counts].sort()) {
      const [type, resolution, table] = k.split('|') as [string, string, string];
      out.push(`${name}{${labels},type="${type}",resolution="${esc(resolution)}",table="${esc(table)}"} ${n}`);
    }
    return this.record || this.counts.size ? out : [];
  }

  async close(): Promise<void> {
    await this.db?.close().catch(() => undefined);
    this.db = null;
  }
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Primary key columns per table, named as pglogical logs the table (`schema.table`). */
async function primaryKeys(db: Sql): Promise<Map<string, string[]>> {
  const rows = await db.query<{ t: string; cols: string[] }>(
    `SELECT n.nspname || '.' || c.relname AS t,
            array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)) AS cols
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      GROUP BY 1`,
  );
  return new Map(rows.map((r) => [r.t, r.cols]));
}

/** Replication origin id → the site it brings changes from (pglogical names each origin after its link's slot). */
async function originSites(db: Sql, record: MeshRecord): Promise<Map<number, string>> {
  const rows = await db.query<{ id: number; name: string }>(
    'SELECT roident::int AS id, roname AS name FROM pg_replication_origin',
  );
  const byName = new Map(record.links.map((l) => [l.origin, l.from]));
  return new Map(rows.flatMap((r) => (byName.has(r.name) ? [[r.id, byName.get(r.name) as string] as const] : [])));
}

/** The collector as the agent runs it: its own log, its DCS's mesh record, the superuser over the unix socket. */
export function agentCollector(
  cfg: NodeConfig,
  readRecord: () => Promise<MeshRecord | null>,
  log: Logger,
  now: () => number,
): ConflictCollector {
  const su = cfg.postgresql.authentication.superuser;
  const { port } = parseListen(cfg.postgresql.listen);
  return new ConflictCollector({
    scope: cfg.scope,
    member: cfg.name,
    logFile: serverLogFile(cfg.postgresql.data_dir),
    offsetFile: offsetFileFor(cfg.postgresql.data_dir),
    readRecord,
    log: log.child({ component: 'mesh-conflicts' }),
    now,
    connect: async (database) => {
      const c = new pg.Client({
        host: cfg.postgresql.socket_dir,
        port,
        user: su.username,
        password: su.password,
        database,
        application_name: 'pgkeel-mesh-conflicts',
        connectionTimeoutMillis: 5000,
        statement_timeout: 10_000,
        query_timeout: 15_000,
      });
      c.on('error', () => undefined);
      await c.connect();
      return {
        query: async <R extends Record<string, unknown>>(text: string, params: readonly unknown[] = []) =>
          (await c.query<R>(text, [...params])).rows,
        close: () => c.end(),
      };
    },
  });
}

/** The agent's PostgreSQL metrics port with the conflict counter appended to its exposition (/metrics). */
export function withConflictMetrics(
  port: PgMetricsPort,
  collector: ConflictCollector,
  who: { scope: string; name: string },
): PgMetricsPort {
  const labels = `scope="${esc(who.scope)}",name="${esc(who.name)}"`;
  return {
    exposition: async () => {
      const lines = collector.metrics(labels);
      const text = await port.exposition();
      return lines.length ? `${text}${lines.join('\n')}\n` : text;
    },
    statements: () => port.statements(),
  };
}
