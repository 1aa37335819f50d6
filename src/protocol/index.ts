/**
 * The PostgreSQL v3 wire codec: bytes in, messages out, no sockets.
 *
 * - frame.ts / framer.ts: chunks → whole messages (views into the chunk when possible)
 * - frontend.ts / frontend-builders.ts: client messages, parsed and built
 * - backend.ts / backend-builders.ts: server messages, parsed and built
 * - auth/: SCRAM-SHA-256 (client and server side) and md5
 * - errors.ts: the ProtocolError catalogue (code → SQLSTATE)
 */
export * from './message-codes.js';
export * from './errors.js';
export * from './frame.js';
export * from './framer.js';
export * from './frontend.js';
export * from './frontend-builders.js';
export * from './backend.js';
export * from './backend-builders.js';
export * from './auth/scram.js';
export * from './auth/saslprep.js';
export * from './auth/md5.js';
