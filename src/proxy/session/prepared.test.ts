import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import {
  BACKEND_CODES,
  BackendCode,
  buildAuthenticationOk,
  buildBind,
  buildClose,
  buildCloseComplete,
  buildDescribe,
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
import {
  answerUnlinked,
  ClientStatements,
  Expect,
  NOOP_CLOSE,
  onBind,
  onClose,
  onDescribe,
  onParse,
  ResponseQueue,
  serverNameFor,
  type StatementServer,
} from './prepared.js';
import { type LinkedClient, ServerConn } from '../server/server-conn.js';
import { ServerStatements } from '../server/server-statements.js';
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

function server(syncsSent = 0, limit = 200): StatementServer & { syncsSent: number } {
  const prepared = new ServerStatements();
  prepared.limit = limit;
  return { prepared, parseQueue: new ResponseQueue(), closeQueue: new ResponseQueue(), syncsSent };
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

const Q = 'SELECT $1::int';
const G = serverNameFor(parseParse(buildParse('s1', Q).subarray(5)).definition);

describe('prepared statements in transaction mode', () => {
  it('renames a named Parse to the global name and remembers it per server', () => {
    const stmts = new ClientStatements();
    const s = server();
    const out = new OutBuffer();
    const [p] = frames(buildParse('s1', Q));
    onParse(p as Frame, stmts, s, out);
    assert.deepEqual(decode(out.take()), [{ type: 'P', name: G }]);
    assert.ok(s.prepared.has(G));
    assert.equal(s.parseQueue.shift(), Expect.Forward);
    assert.equal(s.parseQueue.lastAdded, G);
  });

  it('the same text from another client on the same server becomes a no-op Close translated to ParseComplete', () => {
    const s = server();
    s.prepared.use(G, 0);
    const out = new OutBuffer();
    onParse(frames(buildParse('other_name', Q))[0] as Frame, new ClientStatements(), s, out);
    assert.deepEqual(out.take(), NOOP_CLOSE);
    assert.equal(s.closeQueue.shift(), Expect.AsParseComplete);
  });

  it('injects the Parse before Bind/Describe on a server that lacks the statement, and swallows its ParseComplete', () => {
    const stmts = new ClientStatements();
    onParse(frames(buildParse('s1', Q))[0] as Frame, stmts, server(), new OutBuffer());
    const s2 = server(3);
    const out = new OutBuffer();
    const [d, b] = frames(buildDescribe('S', 's1'), buildBind({ statement: 's1', params: ['1'] }));
    onDescribe(d as Frame, stmts, s2, out);
    onBind(b as Frame, stmts, s2, out);
    assert.deepEqual(decode(out.take()), [
      { type: 'P', name: G },
      { type: 'D', name: G },
      { type: 'B', statement: G },
    ]);
    assert.equal(s2.parseQueue.length, 1, 'one injected Parse only');
    assert.equal(s2.parseQueue.shift(), Expect.Skip);
  });

  it('leaves unnamed statements and unknown names untouched', () => {
    const stmts = new ClientStatements();
    const s = server();
    const out = new OutBuffer();
    const msgs = [buildParse('', 'SELECT 1'), buildBind({ statement: '' }), buildBind({ statement: 'nope' })];
    const [p, b1, b2] = frames(...msgs);
    onParse(p as Frame, stmts, s, out);
    onBind(b1 as Frame, stmts, s, out);
    onBind(b2 as Frame, stmts, s, out);
    assert.deepEqual(out.take(), Buffer.concat(msgs), 'forwarded byte for byte');
  });

  it('Close of a named statement forgets it locally and sends the no-op Close', () => {
    const stmts = new ClientStatements();
    const s = server();
    onParse(frames(buildParse('s1', Q))[0] as Frame, stmts, s, new OutBuffer());
    const out = new OutBuffer();
    onClose(frames(buildClose('S', 's1'))[0] as Frame, stmts, s, out);
    assert.deepEqual(out.take(), NOOP_CLOSE);
    assert.equal(stmts.size, 0);
    assert.ok(s.prepared.has(G), 'the server keeps it for other clients');
  });

  it('after an error, expectations of that sync segment are dropped and their statements forgotten', () => {
    const s = server(0);
    const stmts = new ClientStatements();
    onParse(frames(buildParse('s1', Q))[0] as Frame, stmts, s, new OutBuffer());
    s.syncsSent = 1;
    onParse(frames(buildParse('s2', 'SELECT 2'))[0] as Frame, stmts, s, new OutBuffer());
    s.parseQueue.dropSegment(0, (n) => s.prepared.delete(n));
    assert.equal(s.prepared.has(G), false);
    assert.equal(s.parseQueue.length, 1, 'the next segment is kept');
  });

  it('answers Parse of a known statement, Close and Sync without a server between transactions', () => {
    const stmts = new ClientStatements();
    const out = new OutBuffer();
    const [p, c, u, y] = frames(buildParse('s1', Q), buildClose('S', 's1'), buildClose('S', 'untracked'), buildSync());
    assert.equal(answerUnlinked(p as Frame, stmts, new Set(), out), false, 'unknown text needs a server');
    assert.equal(answerUnlinked(p as Frame, stmts, new Set([G]), out), true);
    assert.equal(stmts.byName.get('s1')?.serverName, G);
    assert.equal(
      answerUnlinked(u as Frame, stmts, new Set(), out),
      false,
      'a name the proxy does not track lives on some server',
    );
    assert.equal(answerUnlinked(c as Frame, stmts, new Set(), out), true);
    assert.equal(answerUnlinked(y as Frame, stmts, new Set(), out), true);
    assert.deepEqual(
      frames(out.take()).map((f) => f.type),
      [BackendCode.ParseComplete, BackendCode.CloseComplete, BackendCode.ReadyForQuery],
    );
    assert.equal(stmts.size, 0, 'closed');
  });

  it('the response queue grows past its initial capacity in order', () => {
    const q = new ResponseQueue();
    for (let i = 0; i < 40; i++) q.push(i % 2 === 0 ? Expect.Skip : Expect.Forward, 0, null);
    for (let i = 0; i < 40; i++) assert.equal(q.shift(), i % 2 === 0 ? Expect.Skip : Expect.Forward);
    assert.equal(q.shift(), Expect.Forward, 'empty: forward');
  });
});

describe('max_prepared_statements: a least-recently-used limit per server connection', () => {
  const [Q1, Q2, Q3] = ['SELECT 1', 'SELECT 2', 'SELECT 3'];
  const [G1, G2, G3] = [globalName(Q1), globalName(Q2), globalName(Q3)];
  /** A server connection with max_prepared_statements 2 holding 'a' (Q1) then 'b' (Q2), each in its own segment. */
  const twoPrepared = () => {
    const s = server(0, 2);
    const stmts = new ClientStatements();
    parse(s, stmts, 'a', Q1);
    s.syncsSent++;
    parse(s, stmts, 'b', Q2);
    s.syncsSent++;
    return { s, stmts };
  };

  it('preparing one more than the limit closes the least recently used, with its CloseComplete swallowed', () => {
    const { s, stmts } = twoPrepared();
    const out = parse(s, stmts, 'c', Q3);
    assert.deepEqual(decode(out.take()), [
      { type: 'P', name: G3 },
      { type: 'C', name: G1 },
    ]);
    assert.deepEqual(s.prepared.names(), [G2, G3]);
    assert.equal(s.closeQueue.shift(), Expect.Skip, 'the eviction CloseComplete is not for the client');
    assert.equal(s.closeQueue.lastAdded, G1);
  });

  it('using a statement makes it the most recent: the other one is evicted', () => {
    const { s, stmts } = twoPrepared();
    onBind(frames(buildBind({ statement: 'a' }))[0] as Frame, stmts, s, new OutBuffer());
    s.syncsSent++;
    const out = parse(s, stmts, 'c', Q3);
    assert.deepEqual(decode(out.take()), [
      { type: 'P', name: G3 },
      { type: 'C', name: G2 },
    ]);
  });

  it('an evicted statement is prepared again on demand, evicting the next least recently used', () => {
    const s = server(0, 2);
    const stmts = new ClientStatements();
    for (const [name, q] of [
      ['a', Q1],
      ['b', Q2],
      ['c', Q3],
    ] as const) {
      parse(s, stmts, name, q);
      s.syncsSent++;
    }
    s.prepared.closed(s.closeQueue.shift() === Expect.Skip ? (s.closeQueue.lastAdded as string) : ''); // G1's Close answered
    const out = new OutBuffer();
    onBind(frames(buildBind({ statement: 'a' }))[0] as Frame, stmts, s, out);
    assert.deepEqual(decode(out.take()), [
      { type: 'P', name: G1 },
      { type: 'C', name: G2 },
      { type: 'B', statement: G1 },
    ]);
    assert.equal(s.parseQueue.length, 4);
    for (let i = 0; i < 3; i++) s.parseQueue.shift();
    assert.equal(s.parseQueue.shift(), Expect.Skip, 'the injected ParseComplete is swallowed');
    assert.deepEqual(s.prepared.names(), [G3, G1]);
  });

  it('never evicts a statement the current request uses: the limit is exceeded until a later request', () => {
    const s = server(0, 1);
    const stmts = new ClientStatements();
    parse(s, stmts, 'a', Q1);
    s.syncsSent++;
    const out = new OutBuffer();
    // One request (no Sync in between): Bind a, then Parse b — a is still needed by this request's Execute.
    onBind(frames(buildBind({ statement: 'a' }))[0] as Frame, stmts, s, out);
    parse(s, stmts, 'b', Q2, out);
    assert.deepEqual(decode(out.take()), [
      { type: 'B', statement: G1 },
      { type: 'P', name: G2 },
    ]);
    assert.equal(s.prepared.size, 2);
    s.syncsSent++;
    parse(s, stmts, 'c', Q3, out);
    assert.deepEqual(decode(out.take()), [
      { type: 'P', name: G3 },
      { type: 'C', name: G1 },
      { type: 'C', name: G2 },
    ]);
  });

  it('an eviction Close skipped after an error leaves the statement known; re-preparing one still closing closes it first', () => {
    const s = server(0, 1);
    const stmts = new ClientStatements();
    parse(s, stmts, 'a', Q1);
    s.syncsSent++;
    parse(s, stmts, 'b', Q2); // evicts G1 in segment 1
    s.parseQueue.shift(); // G1's ParseComplete (segment 0)
    s.parseQueue.dropSegment(1, (n) => s.prepared.delete(n)); // b's Parse failed: the Close after it was skipped
    s.closeQueue.dropSegment(1, (n) => s.prepared.closeSkipped(n));
    assert.deepEqual(s.prepared.names(), [G1]);

    const t = server(0, 1);
    parse(t, stmts, 'a', Q1);
    t.syncsSent++;
    parse(t, stmts, 'b', Q2); // G1's eviction Close in flight
    t.syncsSent++;
    const out = new OutBuffer();
    onBind(frames(buildBind({ statement: 'a' }))[0] as Frame, stmts, t, out);
    assert.deepEqual(decode(out.take()), [
      { type: 'C', name: G1 },
      { type: 'P', name: G1 },
      { type: 'C', name: G2 },
      { type: 'B', statement: G1 },
    ]);
  });

  it('max_prepared_statements 0: a named Parse passes through unchanged', () => {
    const s = server(0, 0);
    const stmts = new ClientStatements();
    const out = parse(s, stmts, 'a', Q1);
    assert.deepEqual(decode(out.take()), [{ type: 'P', name: 'a' }]);
    assert.equal(stmts.size, 0);
    assert.equal(s.prepared.size, 0);
    assert.equal(s.parseQueue.shift(), Expect.Forward);
  });
});

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
