import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCommandComplete, buildQuery, type Frame, Framer, TxStatus } from '../../protocol/index.js';
import { ParamSet } from './params.js';
import {
  onSetCommandComplete,
  onSetReady,
  type PendingSet,
  recogniseSet,
  type SetTrackingServer,
  watchQuery,
} from './set-tracking.js';

const payload = (sql: string): Buffer => buildQuery(sql).subarray(5);

function queryFrame(sql: string, before: Buffer = Buffer.alloc(0)): Frame {
  // Preceded by other bytes: the frame is read in place at an offset, as from a client's chunk.
  const f = new Framer({ allowedTypes: [0x51, 0x53] });
  f.push(Buffer.concat([before, buildQuery(sql)]));
  let last: Frame | undefined;
  for (let x = f.next(); x; x = f.next()) last = x;
  return last as Frame;
}

describe('recognising SET search_path in a simple query', () => {
  const cases: [string, string | null][] = [
    ['SET search_path TO myschema', 'myschema'],
    ['set Search_Path = "MySchema", PUBLIC;', '"MySchema", public'],
    ["  /* app /* nested */ */ -- note\n SET SESSION search_path TO '$user', public  ; -- done", '"$user", public'],
    ["SET search_path = 'a, b'", '"a, b"'],
    ['SET search_path TO "we""ird"', '"we""ird"'],
    ['SET search_path TO DEFAULT', null],
    ['reset search_path;', null],
    ['RESET ALL', null],
  ];
  for (const [sql, value] of cases) {
    it(`${JSON.stringify(sql)} → ${JSON.stringify(value)}`, () => {
      assert.deepEqual(recogniseSet(payload(sql)), { name: 'search_path', value });
    });
  }

  const not = [
    'SELECT 1 FROM search_path_table',
    'SET LOCAL search_path TO myschema',
    'SET search_path TO a; SELECT 1',
    'BEGIN; SET search_path TO a',
    'SET application_name TO x',
    "SET search_path TO E'x'",
    "SET search_path TO 'a\\b'",
    'SET search_path TO a,',
    'SET search_path TO public, DEFAULT',
    'SET search_path FROM CURRENT',
    'SET search_path TO',
    '/* unclosed SET search_path TO a',
    'RESET work_mem',
    `SET search_path TO ${'s'.repeat(9000)}`,
  ];
  for (const sql of not) {
    it(`not tracked: ${JSON.stringify(sql.slice(0, 60))}`, () => assert.equal(recogniseSet(payload(sql)), null));
  }

  it('reads the query in place from a frame that does not start its buffer', () => {
    const s = fakeServer();
    watchQuery(queryFrame('SET search_path TO app', buildQuery('SELECT 1')), s);
    assert.deepEqual(s.pendingSet?.set, { name: 'search_path', value: 'app' });
    watchQuery(queryFrame('SELECT 2'), s);
    assert.equal(s.pendingSet?.set.value, 'app', 'another query leaves the pending SET alone');
  });
});

type Fake = SetTrackingServer & {
  pendingSet: PendingSet | null;
  syncsSent: number;
  zReceived: number;
  txStatus: number;
  params: ParamSet;
};

function fakeServer(): Fake {
  return { pendingSet: null, syncsSent: 0, zReceived: 0, txStatus: TxStatus.Idle, params: new ParamSet() };
}

/** The server side of a conversation: `query` sent, then its responses (command tags and a ReadyForQuery status). */
function run(s: Fake, client: { params: ParamSet }, query: string, tags: string[], status: number): void {
  watchQuery(queryFrame(query), s);
  s.syncsSent++;
  for (const t of tags) if (s.pendingSet) onSetCommandComplete(s, buildCommandComplete(t).subarray(5));
  s.zReceived++;
  s.txStatus = status;
  if (s.pendingSet) onSetReady(s, client);
}

describe('a SET counts once the server confirmed it and its transaction committed', () => {
  const I = TxStatus.Idle;
  const T = TxStatus.InTransaction;
  const E = TxStatus.Failed;

  it('outside a transaction block: at its ReadyForQuery', () => {
    const s = fakeServer();
    const c = { params: new ParamSet() };
    run(s, c, 'SET search_path TO app', ['SET'], I);
    assert.equal(c.params.get('search_path'), 'app');
    assert.equal(s.params.get('search_path'), 'app');
    assert.equal(s.pendingSet, null);
  });

  it('a SET the server refused (no CommandComplete) changes nothing', () => {
    const s = fakeServer();
    const c = { params: new ParamSet() };
    run(s, c, 'SET search_path TO app', [], I);
    assert.equal(c.params.get('search_path'), undefined);
    assert.equal(s.pendingSet, null);
  });

  it('inside a block: when COMMIT ends it, not before', () => {
    const s = fakeServer();
    const c = { params: new ParamSet() };
    run(s, c, 'BEGIN', ['BEGIN'], T);
    run(s, c, 'SET search_path TO app', ['SET'], T);
    run(s, c, 'SELECT 1', ['SELECT 1'], T);
    assert.equal(c.params.get('search_path'), undefined, 'not yet committed');
    run(s, c, 'COMMIT', ['COMMIT'], I);
    assert.equal(c.params.get('search_path'), 'app');
  });

  it('a rolled-back or failed block undoes it', () => {
    for (const [end, tags, status] of [
      ['ROLLBACK', ['ROLLBACK'], I],
      ['SELECT 1/0', [], E],
    ] as const) {
      const s = fakeServer();
      const c = { params: new ParamSet() };
      c.params.set('search_path', 'before');
      run(s, c, 'BEGIN', ['BEGIN'], T);
      run(s, c, 'SET search_path TO app', ['SET'], T);
      run(s, c, end, [...tags], status);
      if (status === E) run(s, c, 'COMMIT', ['ROLLBACK'], I); // COMMIT of a failed block reports ROLLBACK
      assert.equal(c.params.get('search_path'), 'before', end);
      assert.equal(s.pendingSet, null);
    }
  });

  it('RESET removes the value: the client wants the server default again', () => {
    const s = fakeServer();
    const c = { params: new ParamSet() };
    run(s, c, 'SET search_path TO app', ['SET'], I);
    run(s, c, 'RESET search_path', ['RESET'], I);
    assert.equal(c.params.get('search_path'), undefined);
    assert.equal(s.params.get('search_path'), undefined);
  });

  it('responses to an earlier pipelined query do not confirm it', () => {
    const s = fakeServer();
    const c = { params: new ParamSet() };
    s.syncsSent = 1; // "SET work_mem = '64MB'" sent before, unanswered
    watchQuery(queryFrame('SET search_path TO app'), s);
    s.syncsSent++;
    onSetCommandComplete(s, buildCommandComplete('SET').subarray(5)); // work_mem's
    s.zReceived = 1;
    onSetReady(s, c);
    assert.ok(s.pendingSet, 'still waiting for its own answer');
    assert.equal(s.pendingSet?.confirmed, false);
  });
});
