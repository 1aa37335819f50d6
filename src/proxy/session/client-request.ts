/**
 * A logged-in client's frame on its way to a server: the per-message hot path. The client links a server first when
 * it has none (or the frame waits in the pool's queue); then the frame is collected in the client's `toServer`
 * batch whole, except in transaction mode for Parse/Bind/Describe/Close of named statements (prepared.ts), while
 * the server connection is told what was forwarded (its bookkeeping, server-tx.ts) and the pool's stats are updated.
 *
 * A plain function of the ClientConn (client.ts): no object or closure is created per message.
 */
import {
  type Frame,
  type FramePiece,
  FrontendCode,
  ProtocolError,
  ProtocolErrorCode,
  streamTable,
} from '../../protocol/index.js';
import type { ClientConn } from './client.js';
import { acquire } from './client-link.js';
import type { PoolEntry } from '../pool/pools.js';
import {
  answerUnlinked,
  bindHeadStatement,
  onBind,
  onBindHead,
  onClose,
  onDescribe,
  onParse,
  onStreamedParse,
} from './prepared.js';
import { watchQuery } from './set-tracking.js';

/** false: the frame must wait (no server yet). */
export function request(c: ClientConn, f: Frame): boolean {
  const t = f.type;
  if (t === FrontendCode.Terminate) {
    c.onClose();
    c.socket.end();
    return true;
  }
  const e0 = c.entry as PoolEntry;
  if (!c.server && e0.mode === 'transaction' && answerUnlinked(f, c.statements, c.host.knownStatements, c.out))
    return true;
  const s = c.server ?? acquire(c);
  if (!s) return false;
  const tx = s.releaseOnIdle && !c.closeAfterTx;
  const e = c.entry as PoolEntry;
  const toServer = c.toServer;
  switch (t) {
    case FrontendCode.Query:
    case FrontendCode.Sync:
    case FrontendCode.FunctionCall:
      if (t === FrontendCode.Query) watchQuery(f, s); // SET search_path (set-tracking.ts), before the sync counts
      s.sentSync();
      e.stats.query_count++;
      toServer.addFrame(f);
      return true;
    case FrontendCode.Parse:
      s.sentUnsynced();
      e.stats.client_parse_count++;
      if (tx) onParse(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Bind:
      s.sentUnsynced();
      e.stats.bind_count++;
      if (tx) onBind(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Describe:
      s.sentUnsynced();
      if (tx) onDescribe(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Close:
      s.sentUnsynced();
      if (tx) onClose(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Execute:
    case FrontendCode.Flush:
      s.sentUnsynced();
      toServer.addFrame(f);
      return true;
    case FrontendCode.PasswordMessage:
      throw new ProtocolError(ProtocolErrorCode.UnknownMessage, 'unexpected password message after authentication', {
        type: t,
      });
    default: // CopyData, CopyDone, CopyFail
      toServer.addFrame(f);
      return true;
  }
}

/** Client messages longer than this are streamed to the server as they arrive (when their type allows it). */
export const STREAM_ABOVE_BYTES = 64 * 1024;

/**
 * The types that may be streamed: those the proxy forwards unchanged, or changes only in their first bytes (a
 * Bind's statement name). Describe and Close are small; a named Parse in transaction mode is read whole (its text
 * names it on the servers), decided at its first piece.
 */
export const STREAMED_FRONTEND = streamTable([
  FrontendCode.Query,
  FrontendCode.Parse,
  FrontendCode.Bind,
  FrontendCode.Execute,
  FrontendCode.FunctionCall,
  FrontendCode.CopyData,
  FrontendCode.CopyFail,
]);

/**
 * A piece of a streamed message (framer.ts, streaming). The first piece links a server as `request` does for a
 * whole frame and does its bookkeeping; the others follow it unchanged. A Query streamed is not examined for
 * `SET search_path` (set-tracking.ts): no such statement is 64 KiB long.
 */
export function requestPiece(c: ClientConn, p: FramePiece): boolean {
  if (!p.first) {
    const s = c.server;
    if (s) {
      c.toServer.addBuffer(p.bytes);
      if (p.last) s.inboundPiece(true);
    }
    return true;
  }
  const e0 = c.entry as PoolEntry;
  const tx0 = e0.mode === 'transaction';
  const bindName = tx0 && p.type === FrontendCode.Bind ? bindHeadStatement(p.bytes) : '';
  const namedParse =
    tx0 && p.type === FrontendCode.Parse && p.bytes[5] !== 0 && c.host.config.max_prepared_statements > 0;
  if (bindName === null || namedParse) {
    c.framer.holdWhole(); // rewritten whole, within max_buffered_packet_size (the whole frame comes to `request`)
    return true;
  }
  const s = c.server ?? acquire(c);
  if (!s) return false;
  const tx = s.releaseOnIdle && !c.closeAfterTx;
  const e = c.entry as PoolEntry;
  const toServer = c.toServer;
  s.inboundPiece(p.last); // until the last piece, this server is the message's only possible destination
  switch (p.type) {
    case FrontendCode.Query:
    case FrontendCode.FunctionCall:
      s.sentSync();
      e.stats.query_count++;
      break;
    case FrontendCode.Parse:
      s.sentUnsynced();
      e.stats.client_parse_count++;
      if (tx) onStreamedParse(s);
      break;
    case FrontendCode.Bind:
      s.sentUnsynced();
      e.stats.bind_count++;
      if (tx && bindName) {
        onBindHead(p.bytes, bindName, c.statements, s, toServer);
        return true;
      }
      break;
    case FrontendCode.Execute:
      s.sentUnsynced();
      break;
  }
  toServer.addBuffer(p.bytes);
  return true;
}
