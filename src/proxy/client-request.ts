/**
 * A logged-in client's frame on its way to a server: the per-message hot path. The client links a server first when
 * it has none (or the frame waits in the pool's queue); then the frame is collected in the client's `toServer`
 * batch whole, except in transaction mode for Parse/Bind/Describe/Close of named statements (prepared.ts), while
 * the server's bookkeeping for the response pump (server-conn.ts) and the pool's stats are updated.
 *
 * A plain function of the ClientConn (client.ts): no object or closure is created per message.
 */
import { type Frame, FrontendCode, ProtocolError, ProtocolErrorCode } from '../protocol/index.js';
import type { ClientConn } from './client.js';
import type { PoolEntry } from './pools.js';
import { answerUnlinked, onBind, onClose, onDescribe, onParse } from './prepared.js';
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
  if (!c.server && e0.mode === 'transaction' && answerUnlinked(f, c.statements, c.host.knownStatements, c.out)) return true;
  const s = c.server ?? c.acquire();
  if (!s) return false;
  const tx = s.releaseOnIdle && !c.closeAfterTx;
  const e = c.entry as PoolEntry;
  const toServer = c.toServer;
  switch (t) {
    case FrontendCode.Query:
    case FrontendCode.Sync:
    case FrontendCode.FunctionCall:
      if (s.zReceived >= s.syncsSent) s.queryStart = performance.now();
      if (t === FrontendCode.Query) watchQuery(f, s); // SET search_path (set-tracking.ts)
      s.syncsSent++;
      s.unsynced = false;
      e.stats.query_count++;
      toServer.addFrame(f);
      return true;
    case FrontendCode.Parse:
      s.unsynced = true;
      e.stats.client_parse_count++;
      if (tx) onParse(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Bind:
      s.unsynced = true;
      e.stats.bind_count++;
      if (tx) onBind(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Describe:
      s.unsynced = true;
      if (tx) onDescribe(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Close:
      s.unsynced = true;
      if (tx) onClose(f, c.statements, s, toServer);
      else toServer.addFrame(f);
      return true;
    case FrontendCode.Execute:
    case FrontendCode.Flush:
      s.unsynced = true;
      toServer.addFrame(f);
      return true;
    case FrontendCode.PasswordMessage:
      throw new ProtocolError(ProtocolErrorCode.UnknownMessage, 'unexpected password message after authentication', { type: t });
    default: // CopyData, CopyDone, CopyFail
      toServer.addFrame(f);
      return true;
  }
}
