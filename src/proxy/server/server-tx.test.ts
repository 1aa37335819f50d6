import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TxStatus } from '../../protocol/index.js';
import { PoolStats } from '../pool/stats.js';
import { ServerTransaction } from './server-tx.js';

/** The pump's side of the bookkeeping, as ServerConn drives it (ReadyForQuery in, release decision out). */
class Tx extends ServerTransaction {
  t = 0;
  constructor(readonly s = new PoolStats()) {
    super({ now: () => this.t, wallNow: () => 0 }, s);
  }
  link(releaseOnIdle: boolean): void {
    this.linked(releaseOnIdle);
  }
  /** One ReadyForQuery for the client: true when the server is to be released now. */
  z(status: number = TxStatus.Idle): boolean {
    this.readyForQuery(status);
    return this.requestAnswered();
  }
  internalZ(status: number = TxStatus.Idle): boolean {
    return this.internalAnswered(status);
  }
  done(): void {
    this.transactionDone();
  }
}

describe('server connection: transaction bookkeeping', () => {
  it('a simple query in transaction mode: released at its ReadyForQuery I, with query_time and xact_time counted', () => {
    const tx = new Tx();
    tx.t = 1000;
    tx.link(true);
    assert.equal(tx.clean, true);
    tx.t = 1001;
    tx.sentSync();
    assert.equal(tx.clean, false, 'a sync point outstanding');
    tx.t = 1003.5;
    assert.equal(tx.z(), true);
    assert.equal(tx.clean, true);
    assert.equal(tx.s.query_time, 2500, 'µs from the Query to its ReadyForQuery');
    tx.done();
    assert.equal(tx.s.xact_count, 1);
    assert.equal(tx.s.xact_time, 3500, 'µs from the link');
  });

  it('pipelined sync points: released only at the last ReadyForQuery; query_time spans the whole pipeline', () => {
    const tx = new Tx();
    tx.link(true);
    tx.t = 10;
    tx.sentSync();
    tx.t = 11;
    tx.sentSync(); // sent before the first is answered: the request started at 10
    tx.t = 12;
    assert.equal(tx.z(), false);
    assert.equal(tx.s.query_time, 0, 'not all answered yet');
    tx.t = 14;
    assert.equal(tx.z(), true);
    assert.equal(tx.s.query_time, 4000);
  });

  it('a transaction block keeps the server until its ReadyForQuery I; a failed block too', () => {
    const tx = new Tx();
    tx.link(true);
    tx.sentSync();
    assert.equal(tx.z(TxStatus.InTransaction), false);
    assert.equal(tx.clean, false, "status 'T'");
    tx.sentSync();
    assert.equal(tx.z(TxStatus.Failed), false);
    assert.equal(tx.clean, false, "status 'E'");
    tx.sentSync();
    assert.equal(tx.z(TxStatus.Idle), true);
  });

  it('extended protocol without Sync, and a streamed message half forwarded, hold the server', () => {
    const tx = new Tx();
    tx.link(true);
    tx.sentSync();
    tx.sentUnsynced(); // Parse sent after the Query, its Sync not yet
    assert.equal(tx.z(), false, 'a Parse waits for its Sync');
    assert.equal(tx.clean, false);
    tx.sentSync();
    tx.inboundPiece(false);
    assert.equal(tx.z(), false, 'a client message is still arriving');
    tx.inboundPiece(true);
    assert.equal(tx.clean, true);
  });

  it('session mode: never released at ReadyForQuery, until releaseAtIdle (shutdown, KILL)', () => {
    const tx = new Tx();
    tx.link(false);
    tx.sentSync();
    assert.equal(tx.z(), false);
    assert.equal(tx.clean, true, 'clean, but the session holds it');
    tx.sentSync();
    tx.releaseAtIdle();
    assert.equal(tx.z(), true);
  });

  it('internal queries: their ReadyForQuery keeps the status and says when the last one is answered', () => {
    const tx = new Tx();
    tx.internalPending = 2;
    assert.equal(tx.clean, false);
    assert.equal(tx.internalZ(), false);
    assert.equal(tx.internalZ(TxStatus.Idle), true);
    assert.equal(tx.clean, true);
    assert.equal(tx.zReceived, 0, 'not counted as answers to the client');
  });
});
