/**
 * Client → proxy messages: parsers for what routing and pooling need.
 *
 * Each parser takes a frame's `payload` (the bytes after the length word) and either returns a value or throws a
 * ProtocolError; it checks what PostgreSQL checks (terminated strings, counts against the bytes present, nothing
 * after the last field), so a message the proxy accepts is one a server would not reject as malformed.
 * Strings are decoded as UTF-8; Buffers in results are views into the payload — copy them to keep them past the
 * next `Framer.push()`.
 *
 * Formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
 * Builders for the messages the proxy itself sends to servers are in frontend-builders.ts.
 */
import { badField, Reader } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import type { Frame } from './frame.js';
import { describeType, FrontendCode, ProtocolCode } from './message-codes.js';

/** What the first packet of a connection asks for. */
export type StartupPacket =
  | {
      readonly kind: 'startup';
      /** The raw version word, e.g. 196608 for 3.0. */
      readonly protocol: number;
      readonly major: number;
      /** >0 (e.g. 2 for PG 18 clients): answer NegotiateProtocolVersion if the proxy speaks less. */
      readonly minor: number;
      /** In packet order; `_pq_.*` keys are protocol options. A Map so "__proto__" stays a plain key. */
      readonly params: ReadonlyMap<string, string>;
    }
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  /** `secret` is 4 bytes in protocol 3.0 and 4–256 bytes in 3.2; a copy, safe to keep. */
  | { readonly kind: 'cancel'; readonly pid: number; readonly secret: Buffer };

function badStartup(why: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.BadStartup, `invalid startup packet: ${why}`);
}

/**
 * StartupMessage / SSLRequest / GSSENCRequest / CancelRequest, from an untyped start-up frame's payload.
 * Rules from PostgreSQL's ProcessStartupPacket (src/backend/postmaster/postmaster.c).
 */
export function parseStartup(payload: Buffer): StartupPacket {
  const r = new Reader(payload, 'StartupMessage');
  const code = r.int32('protocol version');
  switch (code) {
    case ProtocolCode.SSLRequest:
    case ProtocolCode.GSSENCRequest:
      if (payload.length !== 4) throw badStartup(`encryption request of ${payload.length + 4} bytes, expected 8`);
      return { kind: code === ProtocolCode.SSLRequest ? 'ssl' : 'gssenc' };
    case ProtocolCode.CancelRequest: {
      const pid = r.int32('process ID');
      if (r.remaining < 4 || r.remaining > 256) throw badStartup(`cancel key of ${r.remaining} bytes`);
      return { kind: 'cancel', pid, secret: Buffer.from(r.rest()) };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolError(
      ProtocolErrorCode.UnsupportedVersion,
      `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.${ProtocolCode.V3_2 & 0xffff}`,
      { major, minor },
    );
  }
  const params = new Map<string, string>();
  for (;;) {
    if (r.remaining === 0) throw badStartup('expected terminator as last byte');
    const name = r.cstring('parameter name');
    if (name === '') break;
    params.set(name, r.cstring('parameter value'));
  }
  r.end();
  return { kind: 'startup', protocol: code, major, minor, params };
}

/** Query 'Q': the SQL text. */
export function parseQuery(payload: Buffer): string {
  const r = new Reader(payload, 'Query');
  const sql = r.cstring('query');
  r.end();
  return sql;
}

export interface ParseMessage {
  /** '' is the unnamed statement. */
  readonly name: string;
  readonly query: string;
  /** Parameter type OIDs; 0 = unspecified. */
  readonly paramTypes: readonly number[];
  /**
   * View of everything after the name (query text + parameter types): two Parse messages define the same
   * statement exactly when these bytes are equal, so hash these to key a prepared-statement cache.
   */
  readonly definition: Buffer;
}

/** Parse 'P'. */
export function parseParse(payload: Buffer): ParseMessage {
  const r = new Reader(payload, 'Parse');
  const name = r.cstring('statement name');
  const defStart = r.pos;
  const query = r.cstring('query');
  const n = r.uint16('parameter type count');
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32('parameter type');
  r.end();
  return { name, query, paramTypes, definition: payload.subarray(defStart) };
}

export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  /** Where the statement name starts in the payload (add 5 for the offset in `raw`); see rewriteBindStatement. */
  readonly statementOffset: number;
  /** Where the parameter section starts in the payload (after the statement name's NUL). */
  readonly paramsOffset: number;
}

/**
 * Bind 'B': names only. The parameter section is not walked — a proxy forwards it untouched and the server
 * validates it; call parseBindParameters when the values are needed.
 */
export function parseBind(payload: Buffer): BindMessage {
  const r = new Reader(payload, 'Bind');
  const portal = r.cstring('portal name');
  const statementOffset = r.pos;
  const statement = r.cstring('statement name');
  return { portal, statement, statementOffset, paramsOffset: r.pos };
}

export interface BindParameters {
  /** Empty: all text; one entry: applies to all; else one per parameter (0 text, 1 binary). */
  readonly formats: readonly number[];
  /** Views into the payload; null is SQL NULL (length -1). */
  readonly values: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
}

export function parseBindParameters(payload: Buffer, paramsOffset: number): BindParameters {
  const r = new Reader(payload, 'Bind', paramsOffset);
  const formats = readFormats(r, 'parameter format');
  const n = r.uint16('parameter count');
  if (formats.length > 1 && formats.length !== n) {
    throw badField('Bind', 'parameter format count', `${formats.length} format codes for ${n} parameters`);
  }
  const values = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32('parameter length');
    if (len < -1) throw badField('Bind', 'parameter length', String(len));
    values[i] = len === -1 ? null : r.bytes(len, 'parameter value');
  }
  const resultFormats = readFormats(r, 'result format');
  r.end();
  return { formats, values, resultFormats };
}

function readFormats(r: Reader, field: string): number[] {
  const n = r.uint16(`${field} count`);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const f = r.int16(field);
    if (f !== 0 && f !== 1) throw badField(r.what, field, String(f));
    out[i] = f;
  }
  return out;
}

export interface TargetMessage {
  /** 'S' prepared statement, 'P' portal. */
  readonly kind: 'S' | 'P';
  readonly name: string;
}

/** Describe 'D'. */
export function parseDescribe(payload: Buffer): TargetMessage {
  return parseTarget(payload, 'Describe');
}

/** Close 'C'. */
export function parseClose(payload: Buffer): TargetMessage {
  return parseTarget(payload, 'Close');
}

function parseTarget(payload: Buffer, what: string): TargetMessage {
  const r = new Reader(payload, what);
  const k = r.byte('kind');
  if (k !== 0x53 && k !== 0x50) throw badField(what, 'kind', describeType(k));
  const name = r.cstring('name');
  r.end();
  return { kind: k === 0x53 ? 'S' : 'P', name };
}

export interface ExecuteMessage {
  readonly portal: string;
  /** 0 (or negative) = no limit. */
  readonly maxRows: number;
}

/** Execute 'E'. */
export function parseExecute(payload: Buffer): ExecuteMessage {
  const r = new Reader(payload, 'Execute');
  const portal = r.cstring('portal name');
  const maxRows = r.int32('row limit');
  r.end();
  return { portal, maxRows };
}

/** Sync 'S', Flush 'H', Terminate 'X', CopyDone 'c': the payload must be empty. */
export function parseEmpty(payload: Buffer, what: string): void {
  new Reader(payload, what).end();
}

/** PasswordMessage 'p' answering AuthenticationCleartextPassword or MD5Password. */
export function parsePasswordMessage(payload: Buffer): string {
  const r = new Reader(payload, 'PasswordMessage');
  const password = r.cstring('password');
  r.end();
  return password;
}

export interface SASLInitialResponse {
  readonly mechanism: string;
  /** The client-first message; null when the client sent none (length -1). */
  readonly data: Buffer | null;
}

/** SASLInitialResponse 'p' answering AuthenticationSASL. */
export function parseSASLInitialResponse(payload: Buffer): SASLInitialResponse {
  const r = new Reader(payload, 'SASLInitialResponse');
  const mechanism = r.cstring('mechanism');
  const len = r.int32('data length');
  if (len < -1) throw badField('SASLInitialResponse', 'data length', String(len));
  const data = len === -1 ? null : r.bytes(len, 'data');
  r.end();
  return { mechanism, data };
}

/** SASLResponse 'p' answering AuthenticationSASLContinue: the whole payload is mechanism data. */
export function parseSASLResponse(payload: Buffer): Buffer {
  return payload;
}

/** CopyFail 'f': the client's reason. */
export function parseCopyFail(payload: Buffer): string {
  const r = new Reader(payload, 'CopyFail');
  const message = r.cstring('message');
  r.end();
  return message;
}

/** Every frontend message after start-up, decoded as far as a pooler needs. */
export type FrontendMessage =
  | { readonly type: 'Query'; readonly sql: string }
  | ({ readonly type: 'Parse' } & ParseMessage)
  | ({ readonly type: 'Bind' } & BindMessage)
  | ({ readonly type: 'Describe' } & TargetMessage)
  | ({ readonly type: 'Close' } & TargetMessage)
  | ({ readonly type: 'Execute' } & ExecuteMessage)
  | { readonly type: 'Sync' | 'Flush' | 'Terminate' | 'CopyDone' }
  | { readonly type: 'CopyFail'; readonly message: string }
  /** Forwarded without looking inside. */
  | { readonly type: 'CopyData' | 'FunctionCall'; readonly payload: Buffer }
  /** 'p': which of PasswordMessage/SASLInitialResponse/SASLResponse depends on the auth exchange in progress. */
  | { readonly type: 'PasswordData'; readonly payload: Buffer };

/** Dispatches on the type byte; an unknown type is PROTOCOL_UNKNOWN_MESSAGE. */
export function parseFrontendMessage(frame: Pick<Frame, 'type' | 'payload'>): FrontendMessage {
  const p = frame.payload;
  switch (frame.type) {
    case FrontendCode.Query:
      return { type: 'Query', sql: parseQuery(p) };
    case FrontendCode.Parse:
      return { type: 'Parse', ...parseParse(p) };
    case FrontendCode.Bind:
      return { type: 'Bind', ...parseBind(p) };
    case FrontendCode.Describe:
      return { type: 'Describe', ...parseDescribe(p) };
    case FrontendCode.Close:
      return { type: 'Close', ...parseClose(p) };
    case FrontendCode.Execute:
      return { type: 'Execute', ...parseExecute(p) };
    case FrontendCode.Sync:
      parseEmpty(p, 'Sync');
      return { type: 'Sync' };
    case FrontendCode.Flush:
      parseEmpty(p, 'Flush');
      return { type: 'Flush' };
    case FrontendCode.Terminate:
      parseEmpty(p, 'Terminate');
      return { type: 'Terminate' };
    case FrontendCode.CopyDone:
      parseEmpty(p, 'CopyDone');
      return { type: 'CopyDone' };
    case FrontendCode.CopyFail:
      return { type: 'CopyFail', message: parseCopyFail(p) };
    case FrontendCode.CopyData:
      return { type: 'CopyData', payload: p };
    case FrontendCode.FunctionCall:
      return { type: 'FunctionCall', payload: p };
    case FrontendCode.PasswordMessage:
      return { type: 'PasswordData', payload: p };
    default:
      throw new ProtocolError(
        ProtocolErrorCode.UnknownMessage,
        `invalid frontend message type ${describeType(frame.type)}`,
        { type: frame.type },
      );
  }
}
