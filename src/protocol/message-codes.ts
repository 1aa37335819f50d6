/**
 * Every constant of the PostgreSQL v3 wire protocol that pgkeel uses, each named once.
 *
 * Message formats: https://www.postgresql.org/docs/15/protocol-message-formats.html (each entry links its
 * section). Type bytes are ASCII letters; the letter is repeated in a comment so a hex dump can be read
 * against this file. Several letters mean different things in each direction ('C', 'D', 'E', 'H', 'S', 'd',
 * 'c'), which is why the two directions are separate objects.
 */

/** Messages a client (frontend) sends. */
export const FrontendCode = {
  /** 'B' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BIND */
  Bind: 0x42,
  /** 'C' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSE */
  Close: 0x43,
  /** 'd' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYDATA */
  CopyData: 0x64,
  /** 'c' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYDONE */
  CopyDone: 0x63,
  /** 'f' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYFAIL */
  CopyFail: 0x66,
  /** 'D' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DESCRIBE */
  Describe: 0x44,
  /** 'E' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-EXECUTE */
  Execute: 0x45,
  /** 'H' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FLUSH */
  Flush: 0x48,
  /** 'F' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FUNCTIONCALL */
  FunctionCall: 0x46,
  /** 'P' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSE */
  Parse: 0x50,
  /**
   * 'p' — one type byte for PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse; only the
   * authentication exchange in progress tells them apart.
   * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PASSWORDMESSAGE
   * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLINITIALRESPONSE
   * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLRESPONSE
   */
  PasswordMessage: 0x70,
  /** 'Q' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-QUERY */
  Query: 0x51,
  /** 'S' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SYNC */
  Sync: 0x53,
  /** 'X' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-TERMINATE */
  Terminate: 0x58,
} as const;
export type FrontendCode = (typeof FrontendCode)[keyof typeof FrontendCode];

/** Messages a server (backend) sends. */
export const BackendCode = {
  /** 'R' (all Authentication* messages) https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK */
  Authentication: 0x52,
  /** 'K' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA */
  BackendKeyData: 0x4b,
  /** '2' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BINDCOMPLETE */
  BindComplete: 0x32,
  /** '3' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSECOMPLETE */
  CloseComplete: 0x33,
  /** 'C' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE */
  CommandComplete: 0x43,
  /** 'd' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYDATA */
  CopyData: 0x64,
  /** 'c' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYDONE */
  CopyDone: 0x63,
  /** 'G' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYINRESPONSE */
  CopyInResponse: 0x47,
  /** 'H' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYOUTRESPONSE */
  CopyOutResponse: 0x48,
  /** 'W' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COPYBOTHRESPONSE */
  CopyBothResponse: 0x57,
  /** 'D' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DATAROW */
  DataRow: 0x44,
  /** 'I' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-EMPTYQUERYRESPONSE */
  EmptyQueryResponse: 0x49,
  /** 'E' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ERRORRESPONSE */
  ErrorResponse: 0x45,
  /** 'V' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FUNCTIONCALLRESPONSE */
  FunctionCallResponse: 0x56,
  /** 'v' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NEGOTIATEPROTOCOLVERSION */
  NegotiateProtocolVersion: 0x76,
  /** 'n' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NODATA */
  NoData: 0x6e,
  /** 'N' — asynchronous: may arrive at any time, also while a server is idle in a pool. https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NOTICERESPONSE */
  NoticeResponse: 0x4e,
  /** 'A' — asynchronous (LISTEN/NOTIFY). https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NOTIFICATIONRESPONSE */
  NotificationResponse: 0x41,
  /** 't' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERDESCRIPTION */
  ParameterDescription: 0x74,
  /** 'S' — asynchronous: sent after startup and whenever a GUC_REPORT setting changes. https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERSTATUS */
  ParameterStatus: 0x53,
  /** '1' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSECOMPLETE */
  ParseComplete: 0x31,
  /** 's' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PORTALSUSPENDED */
  PortalSuspended: 0x73,
  /** 'Z' — the only safe point to release a server in transaction pooling. https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY */
  ReadyForQuery: 0x5a,
  /** 'T' https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ROWDESCRIPTION */
  RowDescription: 0x54,
} as const;
export type BackendCode = (typeof BackendCode)[keyof typeof BackendCode];

/**
 * The int32 that opens every untyped start-up packet: a protocol version or a special request code.
 * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE
 */
export const ProtocolCode = {
  /** 3.0 = (3 << 16) | 0, spoken by PostgreSQL 7.4 and later. */
  V3_0: 196608,
  /** 3.2 = (3 << 16) | 2 (PostgreSQL 18: variable-length cancel keys). 3.1 was never used. */
  V3_2: 196610,
  /** https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SSLREQUEST */
  SSLRequest: 80877103,
  /** https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-GSSENCREQUEST */
  GSSENCRequest: 80877104,
  /** https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST */
  CancelRequest: 80877102,
} as const;
export type ProtocolCode = (typeof ProtocolCode)[keyof typeof ProtocolCode];

/**
 * The int32 after 'R' saying which authentication step this is. Only the ones a pooler speaks are named;
 * KerberosV5 (2), SCMCredential (6), GSS (7), GSSContinue (8) and SSPI (9) are refused as unsupported.
 * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK
 */
export const AuthCode = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;
export type AuthCode = (typeof AuthCode)[keyof typeof AuthCode];

/**
 * ReadyForQuery's status byte.
 * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY
 */
export const TxStatus = {
  /** 'I' — not in a transaction block: a transaction-mode pooler may release the server here. */
  Idle: 0x49,
  /** 'T' — in a transaction block. */
  InTransaction: 0x54,
  /** 'E' — in a failed transaction block (queries rejected until the block ends). */
  Failed: 0x45,
} as const;
export type TxStatus = (typeof TxStatus)[keyof typeof TxStatus];

/** Describe/Close target: 'S' prepared statement, 'P' portal. */
export const TargetKind = {
  Statement: 0x53,
  Portal: 0x50,
} as const;
export type TargetKind = (typeof TargetKind)[keyof typeof TargetKind];

/**
 * The one-byte answers to SSLRequest ('S'/'N') and GSSENCRequest ('G'/'N').
 * https://www.postgresql.org/docs/15/protocol-flow.html ("SSL Session Encryption", "GSSAPI Session Encryption")
 */
export const EncryptionResponse = {
  SSLAccept: 0x53,
  GSSAccept: 0x47,
  Refuse: 0x4e,
} as const;
export type EncryptionResponse = (typeof EncryptionResponse)[keyof typeof EncryptionResponse];

/**
 * ErrorResponse/NoticeResponse field type bytes (the keys of parsed field maps are these letters).
 * https://www.postgresql.org/docs/15/protocol-error-fields.html
 */
export const ErrorField = {
  /** Localized severity. */
  Severity: 'S',
  /** Severity never localized (9.6+); prefer it when present. */
  SeverityRaw: 'V',
  /** SQLSTATE. */
  Code: 'C',
  Message: 'M',
  Detail: 'D',
  Hint: 'H',
  Position: 'P',
  InternalPosition: 'p',
  InternalQuery: 'q',
  Where: 'W',
  Schema: 's',
  Table: 't',
  Column: 'c',
  DataType: 'd',
  Constraint: 'n',
  File: 'F',
  Line: 'L',
  Routine: 'R',
} as const;
export type ErrorField = (typeof ErrorField)[keyof typeof ErrorField];

/** Built-in type OIDs used in RowDescription (src/include/catalog/pg_type.dat). */
export const TypeOid = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  float8: 701,
  varchar: 1043,
  timestamptz: 1184,
  numeric: 1700,
} as const;
export type TypeOid = (typeof TypeOid)[keyof typeof TypeOid];

/** Renders a type byte for messages and logs: 0x5a → "'Z' (0x5a)". */
export function describeType(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, '0')}`;
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}' (${hex})` : hex;
}

/** Every type byte a client may send after start-up (for Framer's `allowedTypes`). */
export const FRONTEND_CODES: readonly number[] = Object.freeze(Object.values(FrontendCode));
/** Every type byte a server may send. */
export const BACKEND_CODES: readonly number[] = Object.freeze(Object.values(BackendCode));
