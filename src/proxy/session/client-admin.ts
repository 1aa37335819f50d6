/**
 * A logged-in admin console client's frames (database pgbouncer or pgkeel): simple queries only, each answered by
 * the proxy (host.admin → admin.ts) instead of a server. With several workers an answer waits for the other
 * workers; queries pipelined meanwhile stay in the client's framer, so they are answered in order.
 */
import { buildReadyForQuery, type Frame, FrontendCode, parseQuery, TxStatus } from '../../protocol/index.js';
import { ClientPhase } from './client-phase.js';
import type { ClientConn } from './client.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';

/** false: the frame must wait (the previous query's answer is still being gathered). */
export function adminFrame(c: ClientConn, f: Frame): boolean {
  if (f.type === FrontendCode.Terminate) {
    c.onClose();
    c.socket.end();
    return true;
  }
  if (f.type !== FrontendCode.Query) {
    throw new ProxyError(ProxyErrorCode.AdminExtended, 'extended query protocol not supported by admin console');
  }
  if (c.adminBusy) return false;
  const reply = c.host.admin(c, parseQuery(f.payload));
  if (Array.isArray(reply)) {
    c.socket.write(Buffer.concat([...reply, buildReadyForQuery(TxStatus.Idle)]));
    return true;
  }
  c.adminBusy = true;
  reply.then(
    (r) => {
      c.adminBusy = false;
      if (c.phase === ClientPhase.Closed) return;
      c.socket.write(Buffer.concat([...r, buildReadyForQuery(TxStatus.Idle)]));
      c.pump();
    },
    (err: unknown) => c.fatal(err),
  );
  return true;
}
