/**
 * Server → proxy messages: parsers for what pooling needs (authentication, session parameters, cancel keys,
 * transaction status, errors, command tags). Result sets are forwarded without being parsed; RowDescription and
 * DataRow parsers exist for the admin console's tests and for tools.
 *
 * Each parser takes a frame's `payload`, returns a value or throws a ProtocolError. Buffers in results are views
 * into the payload unless documented as copies.
 * Formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
 * Builders for what the proxy sends to clients are in backend-builders.ts.
 */
import { badField, Reader } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import type { Frame } from './frame.js';
import { AuthCode, BackendCode, describeType, ErrorField, TxStatus } from './message-codes.js';

export type AuthenticationRequest =
  | { readonly kind: 'ok'; readonly code: 0 }
  | { readonly kind: 'cleartext'; readonly code: 3 }
  /** `salt` is a copy. */
  | { readonly kind: 'md5'; readonly code: 5; readonly salt: Buffer }
  | { readonly kind: 'sasl'; readonly code: 10; readonly mechanisms: readonly string[] }
  | { readonly kind: 'sasl-continue'; readonly code: 11; readonly data: Buffer }
  | { readonly kind: 'sasl-final'; readonly code: 12; readonly data: Buffer }
  /** Kerberos, GSS, SSPI…: a pooler refuses these. */
  | { readonly kind: 'unsupported'; readonly code: number; readonly data: Buffer };

/** Authentication* 'R'. */
export function parseAuthentication(payload: Buffer): AuthenticationRequest {
  const r = new Reader(payload, 'Authentication');
  const code = r.int32('auth code');
  switch (code) {
    case AuthCode.Ok:
      r.end();
      return { kind: 'ok', code };
    case AuthCode.CleartextPassword:
      r.end();
      return { kind: 'cleartext', code };
    case AuthCode.MD5Password: {
      const salt = Buffer.from(r.bytes(4, 'salt'));
      r.end();
      return { kind: 'md5', code, salt };
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring('mechanism');
        if (m === '') break;
        mechanisms.push(m);
      }
      r.end();
      return { kind: 'sasl', code, mechanisms };
    }
    case AuthCode.SASLContinue:
      return { kind: 'sasl-continue', code, data: r.rest() };
    case AuthCode.SASLFinal:
      return { kind: 'sasl-final', code, data: r.rest() };
    default:
      return { kind: 'unsupported', code, data: r.rest() };
  }
}

export interface ParameterStatus {
  readonly name: string;
  readonly value: string;
}

/** ParameterStatus 'S'. */
export function parseParameterStatus(payload: Buffer): ParameterStatus {
  const r = new Reader(payload, 'ParameterStatus');
  const name = r.cstring('name');
  const value = r.cstring('value');
  r.end();
  return { name, value };
}

export interface BackendKeyData {
  readonly pid: number;
  /** 4 bytes in protocol 3.0, up to 256 in 3.2; a copy, safe to keep for CancelRequest. */
  readonly secret: Buffer;
}

/** BackendKeyData 'K'. */
export function parseBackendKeyData(payload: Buffer): BackendKeyData {
  const r = new Reader(payload, 'BackendKeyData');
  const pid = r.int32('process ID');
  if (r.remaining < 4 || r.remaining > 256) throw badField('BackendKeyData', 'secret key', `${r.remaining} bytes`);
  return { pid, secret: Buffer.from(r.rest()) };
}

/** ReadyForQuery 'Z': the transaction status byte. */
export function parseReadyForQuery(payload: Buffer): TxStatus {
  const r = new Reader(payload, 'ReadyForQuery');
  const s = r.byte('status');
  r.end();
  if (s !== TxStatus.Idle && s !== TxStatus.InTransaction && s !== TxStatus.Failed) {
    throw badField('ReadyForQuery', 'status', describeType(s));
  }
  return s;
}

/**
 * ReadyForQuery's status byte (TxStatus), read in place: a pooler reads it at the end of every transaction, so no
 * payload view is made and nothing is validated (parseReadyForQuery validates).
 * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY
 */
export function readyStatus(frame: Frame): number {
  return frame.source[frame.offset + frame.headerSize] as number;
}

/** ErrorResponse/NoticeResponse fields with the ones a pooler acts on pulled out. */
export interface NoticeFields {
  /** Field letter (see ErrorField) → value, in message order; unknown letters are kept, as the spec asks. */
  readonly fields: ReadonlyMap<string, string>;
  /** The non-localized severity ('V') when present, else the localized one ('S'). */
  readonly severity: string;
  /** SQLSTATE ('C'), '' if absent. */
  readonly sqlstate: string;
  readonly message: string;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
}

/** ErrorResponse 'E' and NoticeResponse 'N' share one format. */
export function parseNoticeFields(payload: Buffer, what = 'ErrorResponse'): NoticeFields {
  const r = new Reader(payload, what);
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte('field type');
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring('field value'));
  }
  r.end();
  return {
    fields,
    severity: fields.get(ErrorField.SeverityRaw) ?? fields.get(ErrorField.Severity) ?? '',
    sqlstate: fields.get(ErrorField.Code) ?? '',
    message: fields.get(ErrorField.Message) ?? '',
    detail: fields.get(ErrorField.Detail),
    hint: fields.get(ErrorField.Hint),
  };
}

/** CommandComplete 'C': the command tag, e.g. "SELECT 3", "INSERT 0 1", "SET". */
export function parseCommandComplete(payload: Buffer): string {
  const r = new Reader(payload, 'CommandComplete');
  const tag = r.cstring('command tag');
  r.end();
  return tag;
}

/**
 * Whether a CommandComplete's tag is exactly `tag` (ASCII), compared in place: no string or view is made, and a tag
 * of another length costs one comparison — for checks on every CommandComplete a server sends.
 * https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE
 */
export function commandTagIs(frame: Frame, tag: string): boolean {
  const n = tag.length;
  if (frame.length !== 4 + n + 1) return false; // the length word, the tag, its NUL
  const src = frame.source;
  const at = frame.offset + frame.headerSize;
  for (let k = 0; k < n; k++) if (src[at + k] !== tag.charCodeAt(k)) return false;
  return src[at + n] === 0;
}

export interface CommandTag {
  /** "SELECT", "INSERT", "CREATE TABLE", "SET"… */
  readonly command: string;
  /** Rows affected/returned when the tag carries a count. */
  readonly rows: number | null;
}

/** Splits a command tag; INSERT's legacy OID field is dropped. */
export function parseCommandTag(tag: string): CommandTag {
  const m = /^(.*?) (\d+)$/.exec(tag);
  if (!m) return { command: tag, rows: null };
  const head = m[1] as string;
  const command = head.startsWith('INSERT ') ? 'INSERT' : head;
  return { command, rows: Number(m[2]) };
}

export interface FieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly columnAttr: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

/** RowDescription 'T'. */
export function parseRowDescription(payload: Buffer): FieldDescription[] {
  const r = new Reader(payload, 'RowDescription');
  const n = r.uint16('field count');
  const out: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      name: r.cstring('field name'),
      tableOid: r.uint32('table OID'),
      columnAttr: r.int16('column number'),
      typeOid: r.uint32('type OID'),
      typeSize: r.int16('type size'),
      typeModifier: r.int32('type modifier'),
      format: r.int16('format code'),
    });
  }
  r.end();
  return out;
}

/** DataRow 'D': column values as views; null is SQL NULL. */
export function parseDataRow(payload: Buffer): (Buffer | null)[] {
  const r = new Reader(payload, 'DataRow');
  const n = r.uint16('column count');
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32('value length');
    if (len < -1) throw badField('DataRow', 'value length', String(len));
    out[i] = len === -1 ? null : r.bytes(len, 'value');
  }
  r.end();
  return out;
}

export interface NotificationResponse {
  readonly pid: number;
  readonly channel: string;
  readonly payload: string;
}

/** NotificationResponse 'A' (LISTEN/NOTIFY): asynchronous, may arrive while the server is unlinked. */
export function parseNotificationResponse(payload: Buffer): NotificationResponse {
  const r = new Reader(payload, 'NotificationResponse');
  const pid = r.int32('process ID');
  const channel = r.cstring('channel');
  const text = r.cstring('payload');
  r.end();
  return { pid, channel, payload: text };
}

export interface NegotiateProtocolVersion {
  /** Newest minor version the server supports for the requested major. */
  readonly minor: number;
  /** `_pq_.*` startup options the server did not recognise. */
  readonly unsupportedOptions: readonly string[];
}

/** NegotiateProtocolVersion 'v'. */
export function parseNegotiateProtocolVersion(payload: Buffer): NegotiateProtocolVersion {
  const r = new Reader(payload, 'NegotiateProtocolVersion');
  const minor = r.int32('minor version');
  const n = r.int32('option count');
  if (n < 0) throw badField('NegotiateProtocolVersion', 'option count', String(n));
  const unsupportedOptions: string[] = [];
  for (let i = 0; i < n; i++) unsupportedOptions.push(r.cstring('option name'));
  r.end();
  return { minor, unsupportedOptions };
}

const EMPTY_MESSAGES = {
  [BackendCode.ParseComplete]: 'ParseComplete',
  [BackendCode.BindComplete]: 'BindComplete',
  [BackendCode.CloseComplete]: 'CloseComplete',
  [BackendCode.NoData]: 'NoData',
  [BackendCode.EmptyQueryResponse]: 'EmptyQueryResponse',
  [BackendCode.PortalSuspended]: 'PortalSuspended',
  [BackendCode.CopyDone]: 'CopyDone',
} as const;
type EmptyMessageName = (typeof EMPTY_MESSAGES)[keyof typeof EMPTY_MESSAGES];

const FORWARDED = {
  [BackendCode.CopyData]: 'CopyData',
  [BackendCode.CopyInResponse]: 'CopyInResponse',
  [BackendCode.CopyOutResponse]: 'CopyOutResponse',
  [BackendCode.CopyBothResponse]: 'CopyBothResponse',
  [BackendCode.ParameterDescription]: 'ParameterDescription',
  [BackendCode.FunctionCallResponse]: 'FunctionCallResponse',
} as const;
type ForwardedName = (typeof FORWARDED)[keyof typeof FORWARDED];

/** Every backend message, decoded as far as a pooler needs. */
export type BackendMessage =
  | { readonly type: 'Authentication'; readonly auth: AuthenticationRequest }
  | ({ readonly type: 'ParameterStatus' } & ParameterStatus)
  | ({ readonly type: 'BackendKeyData' } & BackendKeyData)
  | { readonly type: 'ReadyForQuery'; readonly status: TxStatus }
  | { readonly type: 'ErrorResponse' | 'NoticeResponse'; readonly notice: NoticeFields }
  | { readonly type: 'CommandComplete'; readonly tag: string }
  | { readonly type: 'RowDescription'; readonly fields: readonly FieldDescription[] }
  | { readonly type: 'DataRow'; readonly values: readonly (Buffer | null)[] }
  | ({ readonly type: 'NotificationResponse' } & NotificationResponse)
  | ({ readonly type: 'NegotiateProtocolVersion' } & NegotiateProtocolVersion)
  | { readonly type: EmptyMessageName }
  /** Passed through without looking inside. */
  | { readonly type: ForwardedName; readonly payload: Buffer };

function isKeyOf<T extends object>(obj: T, key: PropertyKey): key is keyof T {
  return Object.hasOwn(obj, key);
}

/** Dispatches on the type byte; an unknown type is PROTOCOL_UNKNOWN_MESSAGE. */
export function parseBackendMessage(frame: Pick<Frame, 'type' | 'payload'>): BackendMessage {
  const p = frame.payload;
  const t = frame.type;
  switch (t) {
    case BackendCode.Authentication:
      return { type: 'Authentication', auth: parseAuthentication(p) };
    case BackendCode.ParameterStatus:
      return { type: 'ParameterStatus', ...parseParameterStatus(p) };
    case BackendCode.BackendKeyData:
      return { type: 'BackendKeyData', ...parseBackendKeyData(p) };
    case BackendCode.ReadyForQuery:
      return { type: 'ReadyForQuery', status: parseReadyForQuery(p) };
    case BackendCode.ErrorResponse:
      return { type: 'ErrorResponse', notice: parseNoticeFields(p, 'ErrorResponse') };
    case BackendCode.NoticeResponse:
      return { type: 'NoticeResponse', notice: parseNoticeFields(p, 'NoticeResponse') };
    case BackendCode.CommandComplete:
      return { type: 'CommandComplete', tag: parseCommandComplete(p) };
    case BackendCode.RowDescription:
      return { type: 'RowDescription', fields: parseRowDescription(p) };
    case BackendCode.DataRow:
      return { type: 'DataRow', values: parseDataRow(p) };
    case BackendCode.NotificationResponse:
      return { type: 'NotificationResponse', ...parseNotificationResponse(p) };
    case BackendCode.NegotiateProtocolVersion:
      return { type: 'NegotiateProtocolVersion', ...parseNegotiateProtocolVersion(p) };
  }
  if (isKeyOf(EMPTY_MESSAGES, t)) {
    const type = EMPTY_MESSAGES[t];
    new Reader(p, type).end();
    return { type };
  }
  if (isKeyOf(FORWARDED, t)) return { type: FORWARDED[t], payload: p };
  throw new ProtocolError(ProtocolErrorCode.UnknownMessage, `invalid backend message type ${describeType(t)}`, {
    type: t,
  });
}
