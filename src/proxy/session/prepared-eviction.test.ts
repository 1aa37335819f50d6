import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import {
  BACKEND_CODES,
  BackendCode,
  buildAuthenticationOk,
  buildCloseComplete,
  buildErrorResponse,
  buildParse,
  buildParseComplete,
  buildReadyForQuery,
  buildSync,
  type Frame,
  Framer,
  FrontendCode,
  parseBind,
  parseClose,
  parseDescribe,
  parseParse,
  TxStatus,
} from '../../protocol/index.js';
import { silentLogger } from '../../lib/log.js';
import { OutBuffer } from '../out-buffer.js';
import { ParamSet } from './params.js';
import { ClientStatements, onParse, serverNameFor, type StatementServer } from './prepared.js';
import { type LinkedClient, ServerConn } from '../server/server-conn.js';
import { PoolStats } from '../pool/stats.js';

function frames(...msgs: Buffer[]): Frame[] {
  const f = new Framer();
  f.push(Buffer.concat(msgs));
  const out: Frame[] = [];
  for (let x = f.next(); x; x = f.next()) out.push(x);
  return out;
}

function decode(buf: Buffer): { type: string; name?: string; statement?: string }[] {
  return frames(buf).map((f) => {
    const type = String.fromCharCode(f.type);
    if (f.type === FrontendCode.Parse) return { type, name: parseParse(f.payload).name };
    if (f.type === FrontendCode.Bind) return { type, statement: parseBind(f.payload).statement };
    if (f.type === FrontendCode.Describe) return { type, name: parseDescribe(f.payload).name };
    if (f.type === FrontendCode.Close) return { type, name: parseClose(f.payload).name };
    return { type };
  });
}

/** A client's Parse of `name` for `query` on `s`, in the current segment. */
function parse(
  s: StatementServer,
  stmts: ClientStatements,
  name: string,
  query: string,
  out = new OutBuffer(),
): OutBuffer {
  onParse(frames(buildParse(name, query))[0] as Frame, stmts, s, out);
  return out;
}

const globalName = (query: string): string => serverNameFor(parseParse(buildParse('x', query).subarray(5)).definition);

describe('eviction through a server connection (loopback fake server)', () => {
  /** A fake PostgreSQL: trust login, then plays `replies` once it has received `expectBytes` after the startup. */
  async function fakeServer(): Promise<{ srv: Server; port: number; conn: Promise<Socket> }> {
    const srv = createServer();
    const conn = new Promise<Socket>((resolve) =>
      srv.once('connection', (sock) => {
        sock.once('data', () =>
          sock.write(Buffer.concat([buildAuthenticationOk(), buildReadyForQuery(TxStatus.Idle)])),
        );
        resolve(sock);
      }),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { srv, port: (srv.address() as { port: number }).port, conn };
  }

  async function linkedServer(limit: number) {
    const f = await fakeServer();
    const ready = new Promise<ServerConn>((resolve, reject) => {
      const s: ServerConn = new ServerConn(
        { name: 'n1', host: '127.0.0.1', port: f.port },
        { role: 'rw', database: 'db', user: 'u' },
        {
          user: 'u',
          database: 'db',
          password: undefined,
          scramKeys: null,
          keyCache: new Map(),
          connectTimeoutMs: 5000,
        },
        { ready: () => resolve(s), loginFailed: (_s, err) => reject(err), closed: () => {} },
        silentLogger,
        new PoolStats(),
        new Set(),
        { now: () => 0, wallNow: () => 0 },
      );
    });
    const s = await ready;
    s.prepared.limit = limit;
    const received: Frame[] = [];
    let waitFor: { n: number; resolve: () => void } | null = null;
    const client = {
      socket: { writableLength: 0 } as unknown as Socket,
      out: new OutBuffer(),
      statements: new ClientStatements(),
      params: new ParamSet(),
      flushToClient: () => {
        const fr = new Framer({ allowedTypes: BACKEND_CODES });
        fr.push(client.out.take());
        for (let x = fr.next(); x; x = fr.next()) received.push(x);
        if (waitFor && received.filter((x) => x.type === BackendCode.ReadyForQuery).length >= waitFor.n)
          waitFor.resolve();
      },
      serverIdle: () => {},
      serverLost: () => {},
    } satisfies LinkedClient;
    s.client = client;
    const untilReady = (n: number) => new Promise<void>((resolve) => (waitFor = { n, resolve }));
    return {
      s,
      client,
      received,
      untilReady,
      sock: await f.conn,
      close: () => {
        s.close('test');
        f.srv.close();
      },
    };
  }

  it('the client sees ParseComplete and ReadyForQuery only; the eviction CloseComplete is swallowed', async () => {
    const h = await linkedServer(1);
    try {
      const out = new OutBuffer();
      parse(h.s, h.client.statements, 'a', 'SELECT 1', out);
      out.addBuffer(buildSync());
      h.s.syncsSent++;
      parse(h.s, h.client.statements, 'b', 'SELECT 2', out);
      out.addBuffer(buildSync());
      h.s.syncsSent++;
      assert.deepEqual(
        decode(out.take()).map((m) => m.type),
        ['P', 'S', 'P', 'C', 'S'],
        'the proxy sends the eviction Close',
      );
      const done = h.untilReady(2);
      // What PostgreSQL answers to P S P C S:
      h.sock.write(
        Buffer.concat([
          buildParseComplete(),
          buildReadyForQuery(TxStatus.Idle),
          buildParseComplete(),
          buildCloseComplete(),
          buildReadyForQuery(TxStatus.Idle),
        ]),
      );
      await done;
      assert.deepEqual(
        h.received.map((x) => String.fromCharCode(x.type)),
        ['1', 'Z', '1', 'Z'],
      );
      assert.equal(h.s.prepared.isClosing(globalName('SELECT 1')), false, 'the Close was answered');
      assert.deepEqual(h.s.prepared.names(), [globalName('SELECT 2')]);
    } finally {
      h.close();
    }
  });

  it('an error before the eviction Close (skipped by the server) keeps the evicted statement known', async () => {
    const h = await linkedServer(1);
    try {
      const out = new OutBuffer();
      parse(h.s, h.client.statements, 'a', 'SELECT 1', out);
      h.s.syncsSent++;
      parse(h.s, h.client.statements, 'b', 'SELECT nonsense(', out);
      h.s.syncsSent++;
      const done = h.untilReady(2);
      h.sock.write(
        Buffer.concat([
          buildParseComplete(),
          buildReadyForQuery(TxStatus.Idle),
          buildErrorResponse({ severity: 'ERROR', sqlstate: '42601', message: 'syntax error' }),
          buildReadyForQuery(TxStatus.Idle),
        ]),
      );
      await done;
      assert.deepEqual(
        h.received.map((x) => String.fromCharCode(x.type)),
        ['1', 'Z', 'E', 'Z'],
      );
      assert.deepEqual(h.s.prepared.names(), [globalName('SELECT 1')], 'G1 still on the server, the failed one not');
      assert.equal(h.s.prepared.isClosing(globalName('SELECT 1')), false);
    } finally {
      h.close();
    }
  });
});
