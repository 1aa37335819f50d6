/**
 * BASE_BACKUP over a replication connection, PostgreSQL 15 stream format, handed to a sink with backpressure.
 *
 * The server's answer (https://www.postgresql.org/docs/15/protocol-replication.html#PROTOCOL-REPLICATION-BASE-BACKUP):
 *   result set 1: start LSN, timeline          result set 2: one row per tablespace (oid, location, size kB)
 *   CopyOutResponse, then CopyData payloads typed by their first byte:
 *     'n' new archive: file name\0, tablespace path\0     'm' the manifest follows
 *     'd' archive (or manifest) bytes                    'p' progress: Int64 bytes sent so far
 *   CopyDone; result set 3: end LSN, timeline; CommandComplete; ReadyForQuery.
 *
 * Zero-copy: CopyData messages longer than STREAM_COPY_ABOVE are not assembled; the sink gets views into the
 * socket's chunks (FramePieces), so the data is copied by no one between the kernel and the sink. Every sink
 * promise pauses the socket until it settles. Success requires the whole sequence above: an ErrorResponse, a close
 * or anything out of order rejects, and the sink's `end` is called only after ReadyForQuery.
 */
import {
  BackendCode,
  buildQuery,
  type Frame,
  FramePiece,
  parseDataRow,
  parseNoticeFields,
  parseRowDescription,
} from '../protocol/index.js';
import { type PgConnection, ReplicationError } from './replication-conn.js';

/** CopyData messages longer than this (bytes on the wire) are streamed as pieces; smaller ones are read whole. */
export const STREAM_COPY_ABOVE = 8 * 1024;

export type BackupCompression = 'lz4' | 'zstd' | 'gzip' | 'none';
export type ManifestChecksums = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';

export interface BaseBackupOptions {
  /** LABEL (default 'pgkeel base backup'). */
  readonly label?: string;
  /** CHECKPOINT: 'fast' starts at once (an immediate checkpoint); 'spread' (default) waits for a normal one. */
  readonly checkpoint?: 'fast' | 'spread';
  /** WAL: include the WAL from start to end in the base archive's pg_wal (default false). */
  readonly wal?: boolean;
  /** WAIT: wait until the last WAL segment the backup needs is archived (server default true). */
  readonly wait?: boolean;
  /** Server-side COMPRESSION (default 'none'). */
  readonly compression?: BackupCompression;
  /** COMPRESSION_DETAIL level (gzip 1-9, lz4 1-12, zstd 1-22). */
  readonly level?: number;
  /** COMPRESSION_DETAIL workers: zstd threads in the backend (zstd only). */
  readonly workers?: number;
  /** MANIFEST 'yes' (default true). */
  readonly manifest?: boolean;
  /** MANIFEST_CHECKSUMS (server default CRC32C). */
  readonly manifestChecksums?: ManifestChecksums;
  /** MAX_RATE in kB/s (32..1048576). */
  readonly maxRateKb?: number;
  /** PROGRESS: tablespace sizes up front and 'p' messages (costs the server a directory walk). */
  readonly progress?: boolean;
  /** VERIFY_CHECKSUMS (server default true). */
  readonly verifyChecksums?: boolean;
  /** Aborting closes the connection; the promise rejects with REPL_ABORTED. */
  readonly signal?: AbortSignal;
}

export interface TablespaceInfo {
  /** null for the main data directory (pg_default/pg_global). */
  readonly oid: number | null;
  /** null for the main data directory. */
  readonly location: string | null;
  /** Only with `progress` (else null). */
  readonly sizeKb: number | null;
}

export interface BackupStart {
  readonly startLsn: string;
  readonly timeline: number;
  readonly tablespaces: readonly TablespaceInfo[];
}

export interface BackupEnd {
  readonly endLsn: string;
  readonly timeline: number;
}

/**
 * Where the stream goes. Calls come in stream order and each returned promise is awaited before anything further
 * is handed on (backpressure: the socket is paused meanwhile). `data` chunks are views into buffers that are never
 * reused, so a sink may hold several and write them together (`writev`) without copying; a sink that awaits one
 * small write per chunk is slower than the stream. A rejection
 * aborts the backup (the connection is closed) and runBaseBackup rejects with it.
 */
export interface BaseBackupSink {
  /** The two leading result sets, before any archive. */
  start(info: BackupStart): void | Promise<void>;
  /** A new archive begins ('base.tar', 'base.tar.lz4', '16385.tar'…; tablespacePath '' for the main one). */
  archive(name: string, tablespacePath: string): Promise<void>;
  /** Bytes of the current archive, or of the manifest after `manifest()`. */
  data(chunk: Buffer): Promise<void>;
  /** The backup manifest follows (as `data`). */
  manifest(): Promise<void>;
  /** Bytes sent so far (only with `progress`). */
  progress?(bytes: number): void;
  /** The final result set, after the server's ReadyForQuery: the backup is complete. */
  end(info: BackupEnd): Promise<void>;
}

export interface BaseBackupResult extends BackupStart, BackupEnd {
  /** Archive names in order. */
  readonly archives: readonly string[];
  /** Bytes handed to `data` for archives (as sent: compressed when compression is on). */
  readonly archiveBytes: number;
  readonly manifestBytes: number;
}

/** The BASE_BACKUP command for `opts` (new-style option list, PostgreSQL 15). */
export function baseBackupCommand(opts: BaseBackupOptions): string {
  const o: string[] = [`LABEL ${quote(opts.label ?? 'pgkeel base backup')}`];
  if (opts.progress) o.push('PROGRESS');
  if (opts.checkpoint) o.push(`CHECKPOINT ${quote(opts.checkpoint)}`);
  if (opts.wal) o.push('WAL');
  if (opts.wait !== undefined) o.push(`WAIT ${opts.wait}`);
  const c = opts.compression ?? 'none';
  if (c !== 'none') {
    o.push(`COMPRESSION ${quote(c)}`);
    const detail: string[] = [];
    if (opts.level !== undefined) detail.push(`level=${int(opts.level, 'level')}`);
    if (opts.workers !== undefined) {
      if (c !== 'zstd') throw new RangeError('BASE_BACKUP: workers applies to zstd only');
      detail.push(`workers=${int(opts.workers, 'workers')}`);
    }
    if (detail.length) o.push(`COMPRESSION_DETAIL ${quote(detail.join(','))}`);
  } else if (opts.level !== undefined || opts.workers !== undefined) {
    throw new RangeError('BASE_BACKUP: level/workers need a compression');
  }
  if (opts.manifest ?? true) {
    o.push(`MANIFEST 'yes'`);
    if (opts.manifestChecksums) o.push(`MANIFEST_CHECKSUMS ${quote(opts.manifestChecksums)}`);
  }
  if (opts.maxRateKb !== undefined) o.push(`MAX_RATE ${int(opts.maxRateKb, 'maxRateKb')}`);
  if (opts.verifyChecksums !== undefined) o.push(`VERIFY_CHECKSUMS ${opts.verifyChecksums}`);
  return `BASE_BACKUP (${o.join(', ')})`;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function int(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`BASE_BACKUP: ${what} must be a non-negative integer`);
  return n;
}

/** Where the answer is; each step allows only what the protocol puts there. */
const Phase = { Head: 'head', Copy: 'copy', Tail: 'tail', Done: 'done' } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

type Rows = (string | null)[][];

/**
 * Runs BASE_BACKUP on `conn` (a connection with `replication: 'database'` or `'true'`) into `sink`. Resolves after
 * the server's ReadyForQuery and the sink's `end`. Rejects with ReplicationError REPL_SERVER_ERROR (the server's
 * SQLSTATE and message), REPL_CONNECTION_LOST (closed before the end: never a success on a truncated stream),
 * REPL_PROTOCOL, REPL_ABORTED, or the sink's own error. After a rejection the connection is closed.
 */
export async function runBaseBackup(
  conn: PgConnection,
  opts: BaseBackupOptions,
  sink: BaseBackupSink,
): Promise<BaseBackupResult> {
  const command = baseBackupCommand(opts);
  const version = conn.parameters.get('server_version');
  const major = Number(/^(\d+)/.exec(version ?? '')?.[1] ?? 0);
  if (version !== undefined && major < 15) {
    conn.close();
    throw conn.error('REPL_PROTOCOL', `BASE_BACKUP streaming needs PostgreSQL 15 or later, the server is ${version}`);
  }
  if (opts.signal?.aborted) {
    conn.close();
    throw conn.error('REPL_ABORTED', 'base backup aborted before it started');
  }
  const onAbort = (): void => conn.close(conn.error('REPL_ABORTED', 'base backup aborted'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const s = new StreamState(conn, sink);
  try {
    conn.write(buildQuery(command));
    await conn.readMessages((m) => s.onMessage(m), { streamCopyAbove: STREAM_COPY_ABOVE });
  } catch (e) {
    if (s.serverError && e instanceof ReplicationError && e.code === 'REPL_CONNECTION_LOST') throw s.serverError;
    conn.close();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (s.serverError) {
    conn.close();
    throw s.serverError;
  }
  const end = s.endInfo();
  await sink.end(end);
  return {
    ...s.startInfo(),
    ...end,
    archives: s.archives,
    archiveBytes: s.archiveBytes,
    manifestBytes: s.manifestBytes,
  };
}

/** The stream's state machine: messages in, sink calls out. */
class StreamState {
  phase: Phase = Phase.Head;
  results: Rows[] = [];
  rows: Rows | null = null;
  archives: string[] = [];
  archiveBytes = 0;
  manifestBytes = 0;
  inManifest = false;
  serverError: ReplicationError | null = null;
  private start: BackupStart | null = null;

  constructor(
    private readonly conn: PgConnection,
    private readonly sink: BaseBackupSink,
  ) {}

  onMessage(m: Frame | FramePiece): boolean | undefined | Promise<unknown> {
    if (this.serverError && m.type !== BackendCode.ReadyForQuery) return;
    if (m instanceof FramePiece) return this.onPiece(m);
    switch (m.type) {
      case BackendCode.RowDescription:
        if (this.phase === Phase.Copy || this.phase === Phase.Done) throw this.unexpected(m.type);
        parseRowDescription(m.payload);
        this.rows = [];
        this.results.push(this.rows);
        return;
      case BackendCode.DataRow:
        if (!this.rows) throw this.unexpected(m.type);
        this.rows.push(parseDataRow(m.payload).map((v) => (v === null ? null : v.toString('utf8'))));
        return;
      case BackendCode.CopyOutResponse:
        if (this.phase !== Phase.Head) throw this.unexpected(m.type);
        this.phase = Phase.Copy;
        this.rows = null;
        this.start = this.parseStart();
        return this.sink.start(this.start) ?? undefined;
      case BackendCode.CopyData:
        if (this.phase !== Phase.Copy) throw this.unexpected(m.type);
        return this.onCopyData(m.payload);
      case BackendCode.CopyDone:
        if (this.phase !== Phase.Copy) throw this.unexpected(m.type);
        this.phase = Phase.Tail;
        return;
      case BackendCode.CommandComplete:
        this.rows = null;
        if (this.phase === Phase.Tail) this.phase = Phase.Done;
        return;
      case BackendCode.ErrorResponse:
        // The server sends ReadyForQuery next (or closes): nothing after this reaches the sink.
        this.serverError ??= this.conn.serverError(parseNoticeFields(m.payload));
        this.phase = Phase.Done;
        return;
      case BackendCode.ReadyForQuery:
        if (this.phase !== Phase.Done && !this.serverError)
          throw this.conn.error('REPL_PROTOCOL', `BASE_BACKUP ended early (ReadyForQuery in phase ${this.phase})`);
        return true;
      default:
        return this.conn.common(m);
    }
  }

  startInfo(): BackupStart {
    return this.start as BackupStart;
  }

  endInfo(): BackupEnd {
    const last = this.results[this.results.length - 1];
    const row = this.results.length === 3 ? last?.[0] : undefined;
    if (!row?.[0] || !row[1]) throw this.conn.error('REPL_PROTOCOL', 'BASE_BACKUP sent no end position');
    return { endLsn: row[0], timeline: Number(row[1]) };
  }

  private parseStart(): BackupStart {
    const [first, spaces] = this.results;
    const row = first?.[0];
    if (this.results.length !== 2 || !row?.[0] || !row[1] || !spaces)
      throw this.conn.error('REPL_PROTOCOL', 'BASE_BACKUP: expected the start position and the tablespace list');
    const num = (v: string | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));
    const tablespaces = spaces.map((r) => ({ oid: num(r[0]), location: r[1] ?? null, sizeKb: num(r[2]) }));
    return { startLsn: row[0], timeline: Number(row[1]), tablespaces };
  }

  /** A whole CopyData payload: its first byte says what it is. */
  private onCopyData(p: Buffer): Promise<unknown> | undefined {
    switch (p[0]) {
      case 0x64: // 'd'
        return this.data(p.subarray(1));
      case 0x6e: {
        // 'n': archive name and tablespace path, both NUL-terminated
        const z1 = p.indexOf(0, 1);
        const z2 = z1 < 0 ? -1 : p.indexOf(0, z1 + 1);
        if (z2 < 0) throw this.conn.error('REPL_PROTOCOL', "BASE_BACKUP: malformed 'n' message");
        const name = p.toString('utf8', 1, z1);
        this.archives.push(name);
        this.inManifest = false;
        return this.sink.archive(name, p.toString('utf8', z1 + 1, z2));
      }
      case 0x6d: // 'm'
        this.inManifest = true;
        return this.sink.manifest();
      case 0x70: // 'p'
        if (p.length !== 9) throw this.conn.error('REPL_PROTOCOL', "BASE_BACKUP: malformed 'p' message");
        this.sink.progress?.(Number(p.readBigInt64BE(1)));
        return;
      default:
        throw this.conn.error('REPL_PROTOCOL', `BASE_BACKUP: unknown CopyData kind 0x${(p[0] ?? 0).toString(16)}`);
    }
  }

  /** A piece of a large CopyData: the first carries the 5-byte header and the kind byte. */
  private onPiece(p: FramePiece): Promise<unknown> | undefined {
    if (this.phase !== Phase.Copy || p.type !== BackendCode.CopyData) throw this.unexpected(p.type);
    if (!p.first) return this.data(p.bytes);
    if (p.bytes[5] !== 0x64) throw this.conn.error('REPL_PROTOCOL', 'BASE_BACKUP: oversized control message');
    return this.data(p.bytes.subarray(6));
  }

  private data(chunk: Buffer): Promise<unknown> | undefined {
    if (this.archives.length === 0 && !this.inManifest)
      throw this.conn.error('REPL_PROTOCOL', 'BASE_BACKUP: data before any archive');
    if (this.inManifest) this.manifestBytes += chunk.length;
    else this.archiveBytes += chunk.length;
    if (chunk.length === 0) return;
    return this.sink.data(chunk);
  }

  private unexpected(type: number): ReplicationError {
    return this.conn.unexpected(type, `BASE_BACKUP (phase ${this.phase})`);
  }
}
