/**
 * Proxy → server messages: builders for what the proxy itself sends, and in-place renames of a client's
 * Parse/Bind/Describe/Close (named prepared statements are renamed per server in transaction pooling, as
 * pgBouncer's `PGBOUNCER_<id>` scheme does) that copy the rest of the message byte for byte instead of
 * decoding and re-encoding it.
 *
 * Every builder returns one exactly-sized Buffer holding one whole message.
 * Formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
 */
import { cstringSize, Reader, Writer } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { describeType, FrontendCode, ProtocolCode, TargetKind } from './message-codes.js';

type Params = Iterable<readonly [string, string]> | Readonly<Record<string, string>>;

function entries(params: Params): Iterable<readonly [string, string]> {
  return Symbol.iterator in params
    ? (params as Iterable<readonly [string, string]>)
    : Object.entries(params as Readonly<Record<string, string>>);
}

/** StartupMessage: protocol version, then name/value pairs (user, database, application_name, options…). */
export function buildStartupMessage(params: Params, protocol: number = ProtocolCode.V3_0): Buffer {
  const list = [...entries(params)];
  let size = 4 + 1;
  for (const [k, v] of list) size += cstringSize(k, 'StartupMessage', 'name') + cstringSize(v, 'StartupMessage', k);
  const w = new Writer(null, size).int32(protocol);
  for (const [k, v] of list) w.cstring(k).cstring(v);
  return w.byte(0).finish();
}

/** SSLRequest, sent before StartupMessage to ask the server for TLS. */
export function buildSSLRequest(): Buffer {
  return new Writer(null, 4).int32(ProtocolCode.SSLRequest).finish();
}

/** CancelRequest, sent on a new connection with the server's own key (from its BackendKeyData). */
export function buildCancelRequest(pid: number, secret: Buffer | number): Buffer {
  const key = typeof secret === 'number' ? int32Bytes(secret) : secret;
  return new Writer(null, 8 + key.length).int32(ProtocolCode.CancelRequest).int32(pid).bytes(key).finish();
}

function int32Bytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n | 0, 0);
  return b;
}

export function buildQuery(sql: string): Buffer {
  return new Writer(FrontendCode.Query, cstringSize(sql, 'Query', 'query')).cstring(sql).finish();
}

export function buildParse(name: string, query: string, paramTypes: readonly number[] = []): Buffer {
  const size = cstringSize(name, 'Parse', 'name') + cstringSize(query, 'Parse', 'query') + 2 + 4 * paramTypes.length;
  const w = new Writer(FrontendCode.Parse, size).cstring(name).cstring(query).uint16(paramTypes.length);
  for (const t of paramTypes) w.uint32(t);
  return w.finish();
}

export interface BindSpec {
  readonly portal?: string;
  readonly statement?: string;
  /** Default []: all parameters in text format. */
  readonly paramFormats?: readonly number[];
  /** Strings are sent as UTF-8 text; null is SQL NULL. */
  readonly params?: readonly (Buffer | string | null)[];
  /** Default []: all result columns in text format. */
  readonly resultFormats?: readonly number[];
}

export function buildBind(spec: BindSpec): Buffer {
  const portal = spec.portal ?? '';
  const statement = spec.statement ?? '';
  const formats = spec.paramFormats ?? [];
  const values = (spec.params ?? []).map((v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v));
  const results = spec.resultFormats ?? [];
  let size = cstringSize(portal, 'Bind', 'portal') + cstringSize(statement, 'Bind', 'statement');
  size += 2 + 2 * formats.length + 2 + 2 + 2 * results.length;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  const w = new Writer(FrontendCode.Bind, size).cstring(portal).cstring(statement).uint16(formats.length);
  for (const f of formats) w.int16(f);
  w.uint16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
  w.uint16(results.length);
  for (const f of results) w.int16(f);
  return w.finish();
}

export function buildDescribe(kind: 'S' | 'P', name: string): Buffer {
  return buildTarget(FrontendCode.Describe, 'Describe', kind, name);
}

export function buildClose(kind: 'S' | 'P', name: string): Buffer {
  return buildTarget(FrontendCode.Close, 'Close', kind, name);
}

function buildTarget(type: number, what: string, kind: 'S' | 'P', name: string): Buffer {
  const k = kind === 'S' ? TargetKind.Statement : TargetKind.Portal;
  return new Writer(type, 1 + cstringSize(name, what, 'name')).byte(k).cstring(name).finish();
}

export function buildExecute(portal = '', maxRows = 0): Buffer {
  return new Writer(FrontendCode.Execute, cstringSize(portal, 'Execute', 'portal') + 4)
    .cstring(portal)
    .int32(maxRows)
    .finish();
}

export function buildSync(): Buffer {
  return new Writer(FrontendCode.Sync, 0).finish();
}

export function buildFlush(): Buffer {
  return new Writer(FrontendCode.Flush, 0).finish();
}

export function buildTerminate(): Buffer {
  return new Writer(FrontendCode.Terminate, 0).finish();
}

/** PasswordMessage: a cleartext password, or "md5…" from md5Response(). */
export function buildPasswordMessage(password: string): Buffer {
  return new Writer(FrontendCode.PasswordMessage, cstringSize(password, 'PasswordMessage', 'password'))
    .cstring(password)
    .finish();
}

export function buildSASLInitialResponse(mechanism: string, data: Buffer | string | null): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const size = cstringSize(mechanism, 'SASLInitialResponse', 'mechanism') + 4 + (bytes === null ? 0 : bytes.length);
  const w = new Writer(FrontendCode.PasswordMessage, size).cstring(mechanism);
  if (bytes === null) w.int32(-1);
  else w.int32(bytes.length).bytes(bytes);
  return w.finish();
}

export function buildSASLResponse(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return new Writer(FrontendCode.PasswordMessage, bytes.length).bytes(bytes).finish();
}

/**
 * A client's Bind with its statement name replaced; portal and parameters are copied, not re-encoded.
 * `raw` is the whole message (Frame.raw).
 */
export function rewriteBindStatement(raw: Buffer, newName: string): Buffer {
  return replaceName(raw, FrontendCode.Bind, 'Bind', 0, 1, newName);
}

/**
 * The first piece of a streamed Bind (FramePiece.bytes: the header and at least both names) with its statement
 * name replaced; the length word becomes the whole rewritten message's, so the following pieces pass unchanged.
 */
export function rewriteBindStatementHead(head: Buffer, newName: string): Buffer {
  return replaceName(head, FrontendCode.Bind, 'Bind', 0, 1, newName, false);
}

/** A client's Parse with its statement name replaced; the query text and types are copied. */
export function rewriteParseName(raw: Buffer, newName: string): Buffer {
  return replaceName(raw, FrontendCode.Parse, 'Parse', 0, 0, newName);
}

/** A client's Describe with its name replaced (for kind 'S'; the kind byte is kept). */
export function rewriteDescribeName(raw: Buffer, newName: string): Buffer {
  return replaceName(raw, FrontendCode.Describe, 'Describe', 1, 0, newName);
}

/** A client's Close with its name replaced (for kind 'S'; the kind byte is kept). */
export function rewriteCloseName(raw: Buffer, newName: string): Buffer {
  return replaceName(raw, FrontendCode.Close, 'Close', 1, 0, newName);
}

/**
 * Copies `raw` with one C string replaced: the string found after `prefix` bytes and `skip` other C strings
 * from the start of the payload. The length word is rewritten; every other byte is copied as is.
 */
function replaceName(
  raw: Buffer,
  type: number,
  what: string,
  prefix: number,
  skip: number,
  newName: string,
  whole = true,
): Buffer {
  const got = raw[0] ?? 0;
  if (raw.length < 5 || got !== type) {
    throw new ProtocolError(ProtocolErrorCode.UnknownMessage, `expected ${what}, got ${describeType(got)}`, {
      type: got,
    });
  }
  const length = raw.readInt32BE(1);
  if (whole ? length + 1 !== raw.length : length + 1 < raw.length) {
    throw new ProtocolError(ProtocolErrorCode.BadLength, `${what}: length word ${length} for ${raw.length} bytes`, {
      length,
    });
  }
  const r = new Reader(raw, what, 5);
  r.bytes(prefix, 'kind');
  for (let i = 0; i < skip; i++) r.cstringEnd('portal name');
  const start = r.pos;
  const end = r.cstringEnd('name');
  const nameSize = cstringSize(newName, what, 'new name');
  const out = Buffer.allocUnsafe(raw.length - (end + 1 - start) + nameSize);
  raw.copy(out, 0, 0, start);
  const at = start + out.write(newName, start, 'utf8');
  out[at] = 0;
  raw.copy(out, at + 1, end + 1);
  out.writeInt32BE(length + out.length - raw.length, 1);
  return out;
}
