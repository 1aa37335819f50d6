/**
 * The catalogue of wire-protocol and authentication errors.
 *
 * Every parser, the framer and the SASL/md5 code fail only with a `ProtocolError`: a stable `code` operators can
 * grep, the SQLSTATE a client must see, and the identifiers involved (`context`). The proxy turns it into one
 * ErrorResponse at one catch site (`errorResponseFor` in backend.ts) and closes the connection: after a framing
 * error the byte stream cannot be resynchronised (protocol-overview.html, "Messaging Overview").
 *
 * SQLSTATEs: https://www.postgresql.org/docs/15/errcodes-appendix.html
 */
export const ProtocolErrorCode = {
  BadLength: 'PROTOCOL_BAD_LENGTH',
  TooLarge: 'PROTOCOL_TOO_LARGE',
  UnknownMessage: 'PROTOCOL_UNKNOWN_MESSAGE',
  BadStartup: 'PROTOCOL_BAD_STARTUP',
  UnsupportedVersion: 'PROTOCOL_UNSUPPORTED_VERSION',
  TruncatedField: 'PROTOCOL_TRUNCATED_FIELD',
  BadField: 'PROTOCOL_BAD_FIELD',
  TrailingBytes: 'PROTOCOL_TRAILING_BYTES',
  SaslMalformed: 'AUTH_SASL_MALFORMED',
  SaslUnsupported: 'AUTH_SASL_UNSUPPORTED',
  SaslNonceMismatch: 'AUTH_SASL_NONCE_MISMATCH',
  SaslIterations: 'AUTH_SASL_ITERATIONS',
  ServerSignature: 'AUTH_SERVER_SIGNATURE',
  AuthFailed: 'AUTH_FAILED',
  BadSecret: 'AUTH_BAD_SECRET',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

export interface CatalogueEntry {
  /** What the client receives in the ErrorResponse 'C' field. */
  readonly sqlstate: string;
  /** One line for docs/errors.md: when it happens. */
  readonly summary: string;
}

const PROTOCOL_VIOLATION = '08P01';

export const protocolErrorCatalogue: Readonly<Record<ProtocolErrorCode, CatalogueEntry>> = Object.freeze({
  PROTOCOL_BAD_LENGTH: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A length word is below its minimum (4; 8 for start-up packets) or wrong for a fixed-size message.',
  },
  PROTOCOL_TOO_LARGE: {
    sqlstate: '54000', // program_limit_exceeded
    summary:
      'A message is longer than the configured limit (the proxy: max_packet_size, or max_buffered_packet_size for a message it reads whole; start-up packets: 10000).',
  },
  PROTOCOL_UNKNOWN_MESSAGE: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A type byte that is not a message of this protocol direction.',
  },
  PROTOCOL_BAD_STARTUP: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A malformed start-up packet (SSLRequest/GSSENCRequest/CancelRequest/StartupMessage).',
  },
  PROTOCOL_UNSUPPORTED_VERSION: {
    sqlstate: '0A000', // feature_not_supported, as PostgreSQL answers a major version other than 3
    summary: 'A StartupMessage asks for a protocol major version other than 3.',
  },
  PROTOCOL_TRUNCATED_FIELD: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A field (C string, integer, byte run) runs past the end of its message.',
  },
  PROTOCOL_BAD_FIELD: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A field holds a value the protocol does not allow (unknown kind byte, bad status, NUL in a string).',
  },
  PROTOCOL_TRAILING_BYTES: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'Bytes left after the last field of a message.',
  },
  AUTH_SASL_MALFORMED: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A SCRAM message does not follow RFC 5802 syntax.',
  },
  AUTH_SASL_UNSUPPORTED: {
    sqlstate: '0A000',
    summary: 'A SASL mechanism, channel binding, authzid or extension pgkeel does not offer.',
  },
  AUTH_SASL_NONCE_MISMATCH: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'The SCRAM nonce echoed by the peer is not the one of this exchange.',
  },
  AUTH_SASL_ITERATIONS: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'A server asked for an iteration count outside 1..maxIterations (protects the event loop).',
  },
  AUTH_SERVER_SIGNATURE: {
    sqlstate: PROTOCOL_VIOLATION,
    summary: 'The server-final SCRAM message does not prove the server knows the password.',
  },
  AUTH_FAILED: {
    sqlstate: '28P01', // invalid_password
    summary: 'Password authentication failed (wrong password, or the server rejected our proof).',
  },
  AUTH_BAD_SECRET: {
    sqlstate: '28P01',
    summary: 'A stored secret is not a valid SCRAM verifier or md5 hash (a configuration error; log it).',
  },
});

export type ErrorContext = Readonly<Record<string, string | number>>;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;
  readonly sqlstate: string;
  /** The identifiers involved (message type, length, limit, field name…), for logs. */
  readonly context: ErrorContext;

  constructor(code: ProtocolErrorCode, message: string, context: ErrorContext = {}) {
    super(message);
    this.code = code;
    this.sqlstate = protocolErrorCatalogue[code].sqlstate;
    this.context = context;
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
