/**
 * A server connection's transaction bookkeeping, without a socket: what the linked session forwarded (sync points,
 * extended-protocol messages waiting for their Sync, a streamed message half sent), what the server answered
 * (ReadyForQuery count and transaction status), internal queries in flight, and the query/transaction timings of
 * the pool's stats. ServerConn (server-conn.ts) is one; the session only calls the methods below.
 *
 * Invariants: the server may serve another client only when `clean`; in transaction mode (`releaseOnIdle`) it is
 * given back at the ReadyForQuery that answers the last sync point with status 'I' and nothing else outstanding.
 * Sync segments: a message sent while `syncsSent === n` is answered before the (n+1)th ReadyForQuery, so its
 * responses arrive while `zReceived === n` (prepared.ts and set-tracking.ts key their expectations on this).
 */
import { TxStatus } from '../../protocol/index.js';
import type { ProxyClock } from '../clock.js';
import type { PoolStats } from '../pool/stats.js';

export class ServerTransaction {
  /** Transaction mode: give the server back at ReadyForQuery 'I' with nothing outstanding. */
  releaseOnIdle = false;
  /** The last ReadyForQuery's transaction status (TxStatus). */
  txStatus: number = TxStatus.Idle;
  /** Sync points forwarded (Query, Sync, FunctionCall): the segment the next message belongs to. */
  syncsSent = 0;
  /** ReadyForQuery messages received (internal queries' excluded). */
  zReceived = 0;
  /** Extended-protocol messages sent since the last Sync. */
  unsynced = false;
  /**
   * A client message is being streamed to this server (client-request.ts requestPiece): it has not all arrived, so
   * the connection may neither be released nor reused — the rest of the message must follow on it.
   */
  inbound = false;
  /** Internal queries whose responses are still to be swallowed. */
  internalPending = 0;
  /** Monotonic milliseconds when the current request started (query_time). */
  queryStart = 0;
  /** Monotonic milliseconds when the current client linked (xact_time). */
  private xactStart = 0;

  constructor(
    protected readonly clock: ProxyClock,
    /** The pool's counters (query_time, xact_count, xact_time). */
    protected readonly stats: PoolStats,
  ) {}

  /**
   * Nothing outstanding and no transaction open: every sync point answered, no extended-protocol message without
   * its Sync, no client message half forwarded, no internal query running. Only then may another client use it.
   */
  get clean(): boolean {
    return (
      this.txStatus === TxStatus.Idle &&
      this.zReceived >= this.syncsSent &&
      !this.unsynced &&
      !this.inbound &&
      this.internalPending === 0
    );
  }

  /** A sync point (Query, Sync, FunctionCall) is forwarded: a new request starts when everything before is answered. */
  sentSync(): void {
    if (this.zReceived >= this.syncsSent) this.queryStart = this.clock.now();
    this.syncsSent++;
    this.unsynced = false;
  }

  /** An extended-protocol message (Parse, Bind, Describe, Close, Execute, Flush) is forwarded ahead of its Sync. */
  sentUnsynced(): void {
    this.unsynced = true;
  }

  /** A piece of a streamed client message is forwarded: until its last one, this is its only possible destination. */
  inboundPiece(last: boolean): void {
    this.inbound = !last;
  }

  /** Give the server back at the end of the current transaction (shutdown, KILL of the linked client). */
  releaseAtIdle(): void {
    this.releaseOnIdle = true;
  }

  /** A client linked: `releaseOnIdle` as its pool mode (or its closing) says; xact_time counts from here. */
  protected linked(releaseOnIdle: boolean): void {
    this.releaseOnIdle = releaseOnIdle;
    this.xactStart = this.clock.now();
  }

  /** A ReadyForQuery answering the client's requests: counted, with its status. */
  protected readyForQuery(status: number): void {
    this.zReceived++;
    this.txStatus = status;
  }

  /**
   * After readyForQuery (and the SET tracking that reads its status): when it answered the last sync point,
   * query_time counts, and true says the server is to be given back now (transaction mode, nothing outstanding,
   * status 'I').
   */
  protected requestAnswered(): boolean {
    if (this.zReceived < this.syncsSent) return false;
    this.stats.query_time += Math.round((this.clock.now() - this.queryStart) * 1000);
    return !this.unsynced && !this.inbound && this.txStatus === TxStatus.Idle && this.releaseOnIdle;
  }

  /** An internal query's ReadyForQuery: true when it was the last one in flight. */
  protected internalAnswered(status: number): boolean {
    this.txStatus = status;
    return --this.internalPending === 0;
  }

  /** The transaction ended and the server goes back: xact_count and xact_time. */
  protected transactionDone(): void {
    this.stats.xact_count++;
    this.stats.xact_time += Math.round((this.clock.now() - this.xactStart) * 1000);
  }
}
