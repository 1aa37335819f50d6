/**
 * Proxy → client messages: what the proxy answers itself (authentication, session parameters, its own cancel
 * keys, errors, the admin console's result sets, synthesized ParseComplete/CloseComplete for statements it
 * already has on a server).
 *
 * Every builder returns one exactly-sized Buffer holding one whole message.
 * Formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
 */
import { badField, cstringSize, Writer } from './bytes.js';
import type { ProtocolError } from './errors.js';
import { AuthCode, BackendCode, ErrorField, type TxStatus, TypeOid } from './message-codes.js';

function auth(code: number, extra = 0): Writer {
  return new Writer(BackendCode.Authentication, 4 + extra).int32(code);
}

export function buildAuthenticationOk(): Buffer {
  return auth(AuthCode.Ok).finish();
}

export function buildAuthenticationCleartextPassword(): Buffer {
  return auth(AuthCode.CleartextPassword).finish();
}

/** `salt`: 4 random bytes, fresh per attempt (inject the generator). */
export function buildAuthenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw badField('AuthenticationMD5Password', 'salt', `${salt.length} bytes, expected 4`);
  return auth(AuthCode.MD5Password, 4).bytes(salt).finish();
}

/** Mechanisms in order of preference, e.g. ['SCRAM-SHA-256']. */
export function buildAuthenticationSASL(mechanisms: readonly string[]): Buffer {
  let size = 1;
  for (const m of mechanisms) size += cstringSize(m, 'AuthenticationSASL', 'mechanism');
  const w = auth(AuthCode.SASL, size);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).finish();
}

export function buildAuthenticationSASLContinue(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return auth(AuthCode.SASLContinue, b.length).bytes(b).finish();
}

export function buildAuthenticationSASLFinal(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return auth(AuthCode.SASLFinal, b.length).bytes(b).finish();
}

export function buildParameterStatus(name: string, value: string): Buffer {
  const size = cstringSize(name, 'ParameterStatus', 'name') + cstringSize(value, 'ParameterStatus', 'value');
  return new Writer(BackendCode.ParameterStatus, size).cstring(name).cstring(value).finish();
}

/** The proxy's own cancel key for a client: a number (protocol 3.0, 4 bytes) or 4–256 bytes (3.2). */
export function buildBackendKeyData(pid: number, secret: Buffer | number): Buffer {
  const w = new Writer(BackendCode.BackendKeyData, 4 + (typeof secret === 'number' ? 4 : secret.length)).int32(pid);
  return (typeof secret === 'number' ? w.int32(secret) : w.bytes(secret)).finish();
}

export function buildReadyForQuery(status: TxStatus): Buffer {
  return new Writer(BackendCode.ReadyForQuery, 1).byte(status).finish();
}

export type ErrorSeverity = 'ERROR' | 'FATAL' | 'PANIC';
export type NoticeSeverity = 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export interface ErrorSpec<S extends string = ErrorSeverity> {
  readonly severity: S;
  /** Five-character SQLSTATE, e.g. '08P01'. */
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

export function buildErrorResponse(spec: ErrorSpec): Buffer {
  return buildFields(BackendCode.ErrorResponse, 'ErrorResponse', spec);
}

export function buildNoticeResponse(spec: ErrorSpec<NoticeSeverity>): Buffer {
  return buildFields(BackendCode.NoticeResponse, 'NoticeResponse', spec);
}

/**
 * The ErrorResponse for a ProtocolError, at the proxy's one catch site. FATAL by default: after a framing or
 * authentication error the connection is closed.
 */
export function errorResponseFor(err: ProtocolError, severity: ErrorSeverity = 'FATAL'): Buffer {
  return buildErrorResponse({ severity, sqlstate: err.sqlstate, message: err.message });
}

function buildFields(type: number, what: string, spec: ErrorSpec<string>): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(spec.sqlstate)) throw badField(what, 'sqlstate', JSON.stringify(spec.sqlstate));
  // 'S' (localized) and 'V' (never localized) carry the same text: we do not translate.
  const fields: [string, string][] = [
    [ErrorField.Severity, spec.severity],
    [ErrorField.SeverityRaw, spec.severity],
    [ErrorField.Code, spec.sqlstate],
    [ErrorField.Message, spec.message],
  ];
  if (spec.detail !== undefined) fields.push([ErrorField.Detail, spec.detail]);
  if (spec.hint !== undefined) fields.push([ErrorField.Hint, spec.hint]);
  let size = 1;
  for (const [k, v] of fields) size += 1 + cstringSize(v, what, k);
  const w = new Writer(type, size);
  for (const [k, v] of fields) w.byte(k.charCodeAt(0)).cstring(v);
  return w.byte(0).finish();
}

export interface ColumnSpec {
  readonly name: string;
  /** Default text (25). */
  readonly typeOid?: number;
  /** Default: the type's fixed size (8 for int8, 4 for int4…), else -1 (variable). */
  readonly typeSize?: number;
  /** Default -1. */
  readonly typeModifier?: number;
  /** Default 0 (text). DataRow values must then be text. */
  readonly format?: 0 | 1;
  readonly tableOid?: number;
  readonly columnAttr?: number;
}

const FIXED_SIZES: ReadonlyMap<number, number> = new Map([
  [TypeOid.bool, 1],
  [TypeOid.int2, 2],
  [TypeOid.int4, 4],
  [TypeOid.oid, 4],
  [TypeOid.int8, 8],
  [TypeOid.float8, 8],
  [TypeOid.timestamptz, 8],
]);

export function buildRowDescription(columns: readonly ColumnSpec[]): Buffer {
  let size = 2;
  for (const c of columns) size += cstringSize(c.name, 'RowDescription', 'name') + 18;
  const w = new Writer(BackendCode.RowDescription, size).uint16(columns.length);
  for (const c of columns) {
    const oid = c.typeOid ?? TypeOid.text;
    w.cstring(c.name)
      .uint32(c.tableOid ?? 0)
      .int16(c.columnAttr ?? 0)
      .uint32(oid)
      .int16(c.typeSize ?? FIXED_SIZES.get(oid) ?? -1)
      .int32(c.typeModifier ?? -1)
      .int16(c.format ?? 0);
  }
  return w.finish();
}

/** Text-format values: numbers and bigints are rendered with String(); null is SQL NULL. */
export type CellValue = string | number | bigint | Buffer | null;

export function buildDataRow(values: readonly CellValue[]): Buffer {
  const cells = values.map((v) =>
    v === null || Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : String(v), 'utf8'),
  );
  let size = 2;
  for (const c of cells) size += 4 + (c === null ? 0 : c.length);
  const w = new Writer(BackendCode.DataRow, size).uint16(cells.length);
  for (const c of cells) {
    if (c === null) w.int32(-1);
    else w.int32(c.length).bytes(c);
  }
  return w.finish();
}

/** e.g. "SHOW", "SELECT 3", "SET". */
export function buildCommandComplete(tag: string): Buffer {
  return new Writer(BackendCode.CommandComplete, cstringSize(tag, 'CommandComplete', 'tag')).cstring(tag).finish();
}

export function buildEmptyQueryResponse(): Buffer {
  return new Writer(BackendCode.EmptyQueryResponse, 0).finish();
}

export function buildParseComplete(): Buffer {
  return new Writer(BackendCode.ParseComplete, 0).finish();
}

export function buildBindComplete(): Buffer {
  return new Writer(BackendCode.BindComplete, 0).finish();
}

export function buildCloseComplete(): Buffer {
  return new Writer(BackendCode.CloseComplete, 0).finish();
}

export function buildNoData(): Buffer {
  return new Writer(BackendCode.NoData, 0).finish();
}

/** Answer to a StartupMessage asking for a newer minor version or `_pq_.*` options the proxy does not know. */
export function buildNegotiateProtocolVersion(minor: number, unsupportedOptions: readonly string[] = []): Buffer {
  let size = 8;
  for (const o of unsupportedOptions) size += cstringSize(o, 'NegotiateProtocolVersion', 'option');
  const w = new Writer(BackendCode.NegotiateProtocolVersion, size).int32(minor).int32(unsupportedOptions.length);
  for (const o of unsupportedOptions) w.cstring(o);
  return w.finish();
}
