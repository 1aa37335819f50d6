import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Writer } from '../protocol/bytes.js';
import {
  BackendCode,
  buildCommandComplete,
  buildDataRow,
  buildErrorResponse,
  buildReadyForQuery,
  buildRowDescription,
  Framer,
  parseQuery,
  TxStatus,
} from '../protocol/index.js';
import { cut, prng, randInt } from '../protocol/testing.js';
import { type BaseBackupSink, baseBackupCommand, runBaseBackup, STREAM_COPY_ABOVE } from './base-backup-stream.js';
import { PgConnection, ReplicationError } from './replication-conn.js';

/** A socket stand-in: `feed` delivers chunks as 'data' unless paused (then queued, as a real socket buffers). */
class FakeSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  readonly queue: Buffer[] = [];
  paused = false;
  destroyed = false;
  writable = true;
  /** Set while a chunk is queued behind a pause: the backpressure tests look at it. */
  pausedWithQueue = false;

  write(b: Buffer): boolean {
    this.written.push(Buffer.from(b));
    return true;
  }
  end(b?: Buffer): this {
    if (b) this.write(b);
    return this.destroy();
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    this.flush();
    return this;
  }
  isPaused(): boolean {
    return this.paused;
  }
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    queueMicrotask(() => this.emit('close'));
    return this;
  }
  feed(...chunks: Buffer[]): void {
    this.queue.push(...chunks);
    this.flush();
  }
  /** The server goes away once everything fed so far is read. */
  hangUp(): void {
    this.queue.push(Buffer.alloc(0));
    this.flush();
  }
  private flush(): void {
    while (!this.paused && this.queue.length > 0) {
      const b = this.queue.shift() as Buffer;
      if (b.length === 0) {
        this.destroy();
        return;
      }
      this.emit('data', b);
    }
    if (this.paused && this.queue.length > 0) this.pausedWithQueue = true;
  }
}

function fakeConn(): { sock: FakeSocket; conn: PgConnection } {
  const sock = new FakeSocket();
  return { sock, conn: new PgConnection(sock as unknown as Socket, 'fake:5432', 'backup') };
}

const copyOut = (): Buffer => new Writer(BackendCode.CopyOutResponse, 3).byte(0).int16(0).finish();
const copyDone = (): Buffer => new Writer(BackendCode.CopyDone, 0).finish();
const copyData = (kind: string, body: Buffer): Buffer =>
  new Writer(BackendCode.CopyData, 1 + body.length).byte(kind.charCodeAt(0)).bytes(body).finish();
const cstrings = (...s: string[]): Buffer => Buffer.from(s.map((x) => `${x}\0`).join(''), 'utf8');
const int64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
};
const resultSet = (cols: string[], rows: (string | null)[][]): Buffer[] => [
  buildRowDescription(cols.map((name) => ({ name }))),
  ...rows.map((r) => buildDataRow(r)),
];

const HEAD = [
  ...resultSet(['recptr', 'tli'], [['0/2000028', '1']]),
  ...resultSet(
    ['spcoid', 'spclocation', 'size'],
    [
      ['16385', '/srv/ts1', '100'],
      [null, null, '2000'],
    ],
  ),
];
const TAIL = [
  ...resultSet(['recptr', 'tli'], [['0/2000100', '1']]),
  buildCommandComplete('BASE_BACKUP'),
  buildReadyForQuery(TxStatus.Idle),
];

/** Archive bytes: a large block (streamed in pieces) and a small one (read whole). */
const BIG = Buffer.from(Array.from({ length: STREAM_COPY_ABOVE + 1500 }, (_, i) => (i * 7) & 0xff));
const SMALL = Buffer.from('tail of the tar');
const MANIFEST = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}');

function fullStream(): Buffer {
  return Buffer.concat([
    ...HEAD,
    copyOut(),
    copyData('n', cstrings('base.tar', '')),
    copyData('d', BIG),
    copyData('p', int64(12345)),
    copyData('d', SMALL),
    copyData('n', cstrings('16385.tar', '/srv/ts1')),
    copyData('d', SMALL),
    copyData('m', Buffer.alloc(0)),
    copyData('d', MANIFEST),
    copyDone(),
    ...TAIL,
  ]);
}

/** Records what the sink sees; data is copied per current target. */
class RecordingSink implements BaseBackupSink {
  readonly events: string[] = [];
  readonly files = new Map<string, Buffer[]>();
  private current = '';
  dataCalls = 0;
  constructor(private readonly onData?: (chunk: Buffer) => Promise<void>) {}
  start(info: Parameters<BaseBackupSink['start']>[0]): void {
    this.events.push(`start ${info.startLsn} ${info.timeline} ${JSON.stringify(info.tablespaces)}`);
  }
  async archive(name: string, path: string): Promise<void> {
    this.events.push(`archive ${name} ${path}`);
    this.current = name;
    this.files.set(name, []);
  }
  async data(chunk: Buffer): Promise<void> {
    this.dataCalls++;
    this.files.get(this.current)?.push(Buffer.from(chunk));
    if (this.onData) await this.onData(chunk);
  }
  async manifest(): Promise<void> {
    this.events.push('manifest');
    this.current = 'manifest';
    this.files.set('manifest', []);
  }
  progress(bytes: number): void {
    this.events.push(`progress ${bytes}`);
  }
  async end(info: { endLsn: string; timeline: number }): Promise<void> {
    this.events.push(`end ${info.endLsn} ${info.timeline}`);
  }
  file(name: string): Buffer {
    return Buffer.concat(this.files.get(name) ?? []);
  }
}

const EXPECTED_EVENTS = [
  'start 0/2000028 1 [{"oid":16385,"location":"/srv/ts1","sizeKb":100},{"oid":null,"location":null,"sizeKb":2000}]',
  'archive base.tar ',
  'progress 12345',
  'archive 16385.tar /srv/ts1',
  'manifest',
  'end 0/2000100 1',
];

function assertComplete(sink: RecordingSink): void {
  assert.deepEqual(sink.events, EXPECTED_EVENTS);
  assert.deepEqual(sink.file('base.tar'), Buffer.concat([BIG, SMALL]));
  assert.deepEqual(sink.file('16385.tar'), SMALL);
  assert.deepEqual(sink.file('manifest'), MANIFEST);
}

async function runOver(chunks: Buffer[], sink = new RecordingSink()) {
  const { sock, conn } = fakeConn();
  const p = runBaseBackup(conn, { label: 'test', checkpoint: 'fast' }, sink);
  sock.feed(...chunks);
  return { result: await p, sink, sock };
}

async function rejectsWith(p: Promise<unknown>, code: string, sqlstate = ''): Promise<ReplicationError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ReplicationError, String(err));
  assert.equal(err.code, code, err.message);
  assert.equal(err.sqlstate, sqlstate);
  return err;
}

describe('baseBackupCommand', () => {
  it('spells the PostgreSQL 15 option list', () => {
    assert.equal(
      baseBackupCommand({
        label: "it's",
        checkpoint: 'fast',
        wal: true,
        wait: false,
        compression: 'zstd',
        level: 3,
        workers: 2,
        manifestChecksums: 'SHA256',
        maxRateKb: 1024,
        progress: true,
        verifyChecksums: false,
      }),
      "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAL, WAIT false, COMPRESSION 'zstd', " +
        "COMPRESSION_DETAIL 'level=3,workers=2', MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', MAX_RATE 1024, " +
        'VERIFY_CHECKSUMS false)',
    );
    assert.equal(baseBackupCommand({ manifest: false }), "BASE_BACKUP (LABEL 'pgkeel base backup')");
    assert.throws(() => baseBackupCommand({ compression: 'lz4', workers: 2 }), RangeError);
    assert.throws(() => baseBackupCommand({ level: 2 }), RangeError);
  });
});

describe('runBaseBackup', () => {
  it('sends BASE_BACKUP and hands every part of the stream to the sink, large CopyData as views', async () => {
    const { result, sink, sock } = await runOver([fullStream()]);
    assertComplete(sink);
    const f = new Framer();
    f.push(Buffer.concat(sock.written));
    const q = f.next();
    assert.equal(q?.type, 0x51);
    assert.match(parseQuery(q.payload), /^BASE_BACKUP \(LABEL 'test', CHECKPOINT 'fast', MANIFEST 'yes'\)$/);
    assert.equal(result.startLsn, '0/2000028');
    assert.equal(result.endLsn, '0/2000100');
    assert.deepEqual(result.archives, ['base.tar', '16385.tar']);
    assert.equal(result.archiveBytes, BIG.length + 2 * SMALL.length);
    assert.equal(result.manifestBytes, MANIFEST.length);
    assert.equal(sock.destroyed, false, 'the connection stays open for the next command');
  });

  it('gives the same result wherever the stream is cut (every split point)', async () => {
    const all = fullStream();
    for (let k = 1; k < all.length; k++) {
      const { sink } = await runOver(cut(all, [k]));
      assertComplete(sink);
    }
  });

  it('gives the same result for random multi-way cuts and one-byte chunks', async () => {
    const all = fullStream();
    const rand = prng(11);
    for (let round = 0; round < 200; round++) {
      const n = 1 + randInt(rand, 12);
      const offsets = [...new Set(Array.from({ length: n }, () => 1 + randInt(rand, all.length - 1)))].sort(
        (a, b) => a - b,
      );
      assertComplete((await runOver(cut(all, offsets))).sink);
    }
    const bytes = Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1));
    assertComplete((await runOver(bytes)).sink);
  });

  it('pauses the socket while a sink promise is pending and reads nothing further until it settles', async () => {
    let release: () => void = () => undefined;
    let pausedDuring = false;
    const sink = new RecordingSink(async () => {
      if (sink.dataCalls === 1) {
        await new Promise<void>((r) => {
          release = r;
        });
      }
    });
    const { sock, conn } = fakeConn();
    const p = runBaseBackup(conn, {}, sink);
    const all = fullStream();
    const chunks = cut(
      all,
      Array.from({ length: Math.floor(all.length / 1000) }, (_, i) => (i + 1) * 1000),
    );
    sock.feed(...chunks);
    await new Promise((r) => setImmediate(r));
    pausedDuring = sock.paused && sock.pausedWithQueue;
    assert.equal(sink.dataCalls, 1, 'no data call while the first is pending');
    release();
    await p;
    assert.ok(pausedDuring, 'the socket was paused with input queued behind it');
    assertComplete(sink);
  });

  it('rejects with the server error (SQLSTATE) on an ErrorResponse mid-stream, and never calls end', async () => {
    const all = fullStream();
    const err = buildErrorResponse({ severity: 'ERROR', sqlstate: '58P01', message: 'could not open file "x"' });
    for (const after of [[buildReadyForQuery(TxStatus.Idle)], []]) {
      const { sock, conn } = fakeConn();
      const sink = new RecordingSink();
      const p = runBaseBackup(conn, {}, sink);
      sock.feed(all.subarray(0, all.indexOf(SMALL) + SMALL.length), err, ...after);
      if (after.length === 0) sock.hangUp();
      const e = await rejectsWith(p, 'REPL_SERVER_ERROR', '58P01');
      assert.match(e.message, /could not open file/);
      assert.ok(!sink.events.some((x) => x.startsWith('end')));
      assert.equal(sock.destroyed, true);
    }
  });

  it('rejects with REPL_CONNECTION_LOST when the server closes early, at every phase', async () => {
    const all = fullStream();
    const tailStart = all.length - Buffer.concat(TAIL).length;
    for (const at of [10, all.indexOf(BIG) + 100, tailStart, all.length - 6]) {
      const { sock, conn } = fakeConn();
      const sink = new RecordingSink();
      const p = runBaseBackup(conn, {}, sink);
      sock.feed(all.subarray(0, at));
      sock.hangUp();
      await rejectsWith(p, 'REPL_CONNECTION_LOST');
      assert.ok(!sink.events.some((x) => x.startsWith('end')), `end called after a close at ${at}`);
    }
  });

  it('rejects with REPL_PROTOCOL on ReadyForQuery before the stream is complete', async () => {
    const { sock, conn } = fakeConn();
    const p = runBaseBackup(conn, {}, new RecordingSink());
    sock.feed(...HEAD, copyOut(), copyData('n', cstrings('base.tar', '')), buildReadyForQuery(TxStatus.Idle));
    await rejectsWith(p, 'REPL_PROTOCOL');
  });

  it('cancels on abort: the socket is closed and the promise rejects with REPL_ABORTED', async () => {
    const ac = new AbortController();
    const sink = new RecordingSink(async () => {
      ac.abort();
    });
    const { sock, conn } = fakeConn();
    const p = runBaseBackup(conn, { signal: ac.signal }, sink);
    sock.feed(fullStream().subarray(0, 5000));
    await rejectsWith(p, 'REPL_ABORTED');
    assert.equal(sock.destroyed, true);
  });

  it('refuses a server older than 15 (its stream format differs) before sending anything', async () => {
    const { sock, conn } = fakeConn();
    conn.parameters.set('server_version', '14.11 (Debian 14.11-1)');
    await rejectsWith(runBaseBackup(conn, {}, new RecordingSink()), 'REPL_PROTOCOL');
    assert.deepEqual(
      sock.written.map((b) => String.fromCharCode(b[0] ?? 0)),
      ['X'],
      'no query, only Terminate',
    );
  });

  it("rejects with the sink's own error and closes the connection", async () => {
    const boom = new Error('disk full');
    const { sock, conn } = fakeConn();
    const p = runBaseBackup(conn, {}, new RecordingSink(() => Promise.reject(boom)));
    sock.feed(fullStream());
    await assert.rejects(p, (e) => e === boom);
    assert.equal(sock.destroyed, true);
  });
});
