import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BackendCode, buildBind, buildClose, buildDescribe, buildParse, buildSync, type Frame, Framer, FrontendCode, parseBind, parseClose,
  parseDescribe, parseParse,
} from '../protocol/index.js';
import { OutBuffer } from './out-buffer.js';
import {
  answerUnlinked, ClientStatements, Expect, NOOP_CLOSE, onBind, onClose, onDescribe, onParse, ResponseQueue, serverNameFor, type StatementServer,
} from './prepared.js';

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

function server(syncsSent = 0): StatementServer & { syncsSent: number } {
  return { prepared: new Set(), parseQueue: new ResponseQueue(), closeQueue: new ResponseQueue(), syncsSent };
}

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
    s.prepared.add(G);
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
    assert.deepEqual(decode(out.take()), [{ type: 'P', name: G }, { type: 'D', name: G }, { type: 'B', statement: G }]);
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
    const [p, c, y] = frames(buildParse('s1', Q), buildClose('S', 'x'), buildSync());
    assert.equal(answerUnlinked(p as Frame, stmts, new Set(), out), false, 'unknown text needs a server');
    assert.equal(answerUnlinked(p as Frame, stmts, new Set([G]), out), true);
    assert.equal(answerUnlinked(c as Frame, stmts, new Set(), out), true);
    assert.equal(answerUnlinked(y as Frame, stmts, new Set(), out), true);
    assert.deepEqual(frames(out.take()).map((f) => f.type), [BackendCode.ParseComplete, BackendCode.CloseComplete, BackendCode.ReadyForQuery]);
    assert.equal(stmts.byName.get('s1')?.serverName, G);
  });

  it('the response queue grows past its initial capacity in order', () => {
    const q = new ResponseQueue();
    for (let i = 0; i < 40; i++) q.push(i % 2 === 0 ? Expect.Skip : Expect.Forward, 0, null);
    for (let i = 0; i < 40; i++) assert.equal(q.shift(), i % 2 === 0 ? Expect.Skip : Expect.Forward);
    assert.equal(q.shift(), Expect.Forward, 'empty: forward');
  });
});
