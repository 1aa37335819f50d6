/**
 * The etcd v3 JSON gateway's wire format, pure: base64 keys, int64-as-string fields omitted when zero, error
 * bodies, and the stream framing of `/v3/watch`. No sockets here; `etcd.ts` does the I/O.
 * Gateway reference: https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/
 */
import type { Expect, KeyValue, PutOptions, WatchEvent } from './store.js';

export type Json = Record<string, unknown>;

/** gRPC status UNAVAILABLE: the member cannot serve now (no leader, shutting down); another member may. */
const GRPC_UNAVAILABLE = 14;

export type Outcome =
  | { readonly kind: 'ok'; readonly json: Json }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'unavailable'; readonly reason: string };

/** Sorts an HTTP answer into a result, a refusal (the member answered no) or a reason to try another member. */
export function classify(status: number, body: string): Outcome {
  let json: Json | undefined;
  try {
    const v: unknown = JSON.parse(body);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) json = v as Json;
  } catch {
    json = undefined;
  }
  // Errors come as `{error, code, message}` with an HTTP status, or inside a 200 stream as `{"error":{...}}`.
  const err = status === 200 ? (json && typeof json['error'] === 'object' ? obj(json['error']) : undefined) : json;
  if (status === 200 && json && !err) return { kind: 'ok', json };
  if (err) {
    const code = int(err, 'code');
    const reason = `${text(err, 'message') || text(err, 'error') || `HTTP ${status}`} (grpc code ${code}, HTTP ${status})`;
    return code === GRPC_UNAVAILABLE ? { kind: 'unavailable', reason } : { kind: 'refused', reason };
  }
  const reason = `HTTP ${status}: ${body.slice(0, 200)}`;
  return status >= 500 || status === 200 ? { kind: 'unavailable', reason } : { kind: 'refused', reason };
}

/**
 * Splits a stream of concatenated JSON objects (the gateway writes one per line, but chunks split them anywhere)
 * into complete object texts. Tracks string/escape state so braces inside strings do not count.
 */
export class JsonObjectFramer {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;

  push(chunk: string): string[] {
    const out: string[] = [];
    const start = this.buf.length;
    this.buf += chunk;
    let objStart = this.depth > 0 ? 0 : -1;
    for (let i = start; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        if (this.depth === 0) throw new Error('JSON stream: string outside an object');
        this.inString = true;
      } else if (c === '{') {
        if (this.depth === 0) objStart = i;
        this.depth++;
      } else if (c === '}') {
        if (this.depth === 0) throw new Error('JSON stream: unbalanced "}"');
        if (--this.depth === 0) out.push(this.buf.slice(objStart, i + 1));
      } else if (this.depth === 0 && !/\s/.test(c as string)) {
        throw new Error(`JSON stream: unexpected ${JSON.stringify(c)} between objects`);
      }
    }
    this.buf = this.depth > 0 ? this.buf.slice(objStart) : '';
    return out;
  }
}

export function putRequest(key: string, value: string, opts: PutOptions | undefined): Json {
  const req: Json = { key: b64(key), value: b64(value) };
  if (opts?.lease !== undefined && opts.lease !== '0') req['lease'] = opts.lease;
  return req;
}

/** etcd Compare entries; a `value` comparison on a missing key always fails (etcd cannot tell "" from absent). */
export function compares(key: string, expect: Expect): Json[] {
  const k = b64(key);
  const out: Json[] = [];
  if (expect.exists !== undefined) {
    out.push({ key: k, target: 'CREATE', result: expect.exists ? 'GREATER' : 'EQUAL', create_revision: '0' });
  }
  if (expect.value !== undefined) out.push({ key: k, target: 'VALUE', result: 'EQUAL', value: b64(expect.value) });
  if (expect.modRevision !== undefined) {
    out.push({ key: k, target: 'MOD', result: 'EQUAL', mod_revision: String(expect.modRevision) });
  }
  return out;
}

export function decodeKv(raw: Json): KeyValue {
  return {
    key: unb64(text(raw, 'key')),
    value: unb64(text(raw, 'value')),
    createRevision: int(raw, 'create_revision'),
    modRevision: int(raw, 'mod_revision'),
    lease: text(raw, 'lease') || '0',
  };
}

export function decodeEvent(raw: Json): WatchEvent {
  const kv = obj(raw['kv']);
  return raw['type'] === 'DELETE'
    ? { type: 'delete', key: unb64(text(kv, 'key')), modRevision: int(kv, 'mod_revision') }
    : { type: 'put', kv: decodeKv(kv) };
}

/** etcd's range end for "every key starting with prefix": the prefix with its last byte below 0xff incremented. */
export function prefixRangeEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // "\0" as range_end means: no upper bound
}

export function rangeEnd(prefix: string): string {
  return prefixRangeEnd(Buffer.from(prefix, 'utf8')).toString('base64');
}

export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

export function unb64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

export function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

export function list(v: unknown): Json[] {
  return Array.isArray(v) ? v.map(obj) : [];
}

export function text(o: Json, k: string): string {
  const v = o[k];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

/** int64 fields arrive as strings; absent means zero. */
export function int(o: Json, k: string): number {
  const v = o[k];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0;
  return Number.isFinite(n) ? n : 0;
}
