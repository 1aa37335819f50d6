/**
 * A client's link to a server connection: taking one from the pool (or waiting in its queue), linking it (the
 * session parameters the server lacks are SET first), and giving it back — at ReadyForQuery 'I' in transaction
 * mode (`releaseAtIdle`), or when the client leaves (`giveBack`: only a clean server goes back to the pool).
 * The server connection keeps its own transaction bookkeeping (server-tx.ts); the session only asks it.
 *
 * Plain functions of the ClientConn (client.ts): no object or closure is created per request.
 */
import type { PoolEntry } from '../pool/pools.js';
import type { ServerConn } from '../server/server-conn.js';
import type { ClientConn } from './client.js';
import { applySync, syncSql } from './params.js';

/** A server from the pool, linked; null: the client waits in the pool's queue (`ClientConn.assign` ends it). */
export function acquire(c: ClientConn): ServerConn | null {
  if (c.closeAfterTx) throw c.closeAfterTx;
  const e = c.entry as PoolEntry;
  const now = c.host.now();
  c.requestTime = c.host.wallNow();
  const s = e.pool.request(c, now);
  if (s) {
    link(c, s);
    return s;
  }
  c.waiting = true;
  c.waitSince = now;
  return null;
}

/** `waitUs`: how long the client waited in the queue (0 when a server was free). */
export function link(c: ClientConn, s: ServerConn, waitUs = 0): void {
  const e = c.entry as PoolEntry;
  c.server = s;
  s.link(c, e.mode === 'transaction' || c.closeAfterTx !== null);
  e.stats.server_assignment_count++;
  e.waits.record(waitUs);
  const sql = syncSql(c.params, s.params);
  if (sql) {
    s.sendInternal(sql, c.toServer);
    applySync(c.params, s.params);
  }
}

/**
 * ReadyForQuery with nothing outstanding in transaction mode (LinkedClient.serverIdle): the server goes back to the
 * pool first, then the reply is written to the client (see LinkedClient).
 */
export function releaseAtIdle(c: ClientConn, server: ServerConn): void {
  const e = c.entry as PoolEntry;
  server.unlink();
  c.server = null;
  const reset = c.host.config.server_reset_query;
  if (reset && c.host.config.server_reset_query_always) {
    // Back to the pool only once the reset has run: nothing of this session reaches the next client.
    server.afterInternal = () => e.pool.release(server, c.host.now());
    server.sendInternal(reset);
  } else {
    e.pool.release(server, c.host.now());
  }
  c.flushToClient(server);
  if (c.closeAfterTx) c.fatal(c.closeAfterTx);
}

/** The client left while linked: a clean server goes back (after server_reset_query in session mode). */
export function giveBack(c: ClientConn, s: ServerConn, e: PoolEntry): void {
  if (!s.clean) {
    s.unlink(true);
    s.close('client disconnected in the middle of a transaction');
    return;
  }
  const reset = c.host.config.server_reset_query;
  if (e.mode === 'session' && reset) {
    s.unlink(true);
    s.afterInternal = () => e.pool.release(s, c.host.now());
    s.sendInternal(reset);
    return;
  }
  s.unlink();
  e.pool.release(s, c.host.now());
}
