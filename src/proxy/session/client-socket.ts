/**
 * A client's socket: the shared handlers (they find their client through the socket, so a connection costs no
 * closures), and the switch to TLS when the client's SSLRequest is accepted. Functions of the ClientConn (client.ts).
 */
import type { Socket } from 'node:net';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import { SecurityEventKind } from '../security-log.js';
import { startClientTls } from '../tls.js';
import type { ClientConn } from './client.js';
import { ClientPhase } from './client-phase.js';

const CLIENT = Symbol('pgkeel.client');
type ClientSocket = Socket & { [CLIENT]: ClientConn };

function onSocketData(this: ClientSocket, chunk: Buffer): void {
  this[CLIENT].onData(chunk);
}

function onSocketClose(this: ClientSocket): void {
  this[CLIENT].onClose();
}

function onSocketDrain(this: ClientSocket): void {
  this[CLIENT].onDrain();
}

function ignoreError(): void {}

/** On the TLS socket: a handshake that fails is a protocol violation worth a (rate-limited) log line. */
function onTlsError(this: ClientSocket, err: Error): void {
  tlsFailed(this[CLIENT], err);
}

/** The shared handlers, on the accepted socket and again on the TLS socket that replaces it after SSLRequest. */
export function attach(socket: Socket, c: ClientConn): void {
  (socket as ClientSocket)[CLIENT] = c;
  socket.on('data', onSocketData);
  socket.on('error', ignoreError);
  socket.on('close', onSocketClose);
  socket.on('drain', onSocketDrain);
}

/** Answers 'S' to SSLRequest and continues on the TLS socket: the raw socket's reads now feed TLS. */
export function useTls(c: ClientConn): void {
  const raw = c.socket;
  raw.removeListener('data', onSocketData);
  raw.removeListener('drain', onSocketDrain);
  c.socket = startClientTls(raw, c.host.clientTls);
  attach(c.socket, c);
  c.socket.once('error', onTlsError);
}

/** An error on the TLS socket before the StartupMessage: the handshake failed. */
function tlsFailed(c: ClientConn, err: Error): void {
  if (c.phase !== ClientPhase.Startup) return;
  c.reportSecurityEvent(
    SecurityEventKind.ProtocolViolation,
    new ProxyError(ProxyErrorCode.ClientTlsHandshake, `TLS handshake failed: ${err.message}`),
  );
}
