/**
 * `EtcdStore`: the Store port over etcd v3's JSON gRPC gateway (`POST /v3/...`), the way Patroni's etcd3 module
 * talks to etcd, so it needs no gRPC stack. The wire format lives in `etcd-codec.ts`; this file owns the sockets:
 * endpoint order, deadlines, tokens (etcd-auth.ts) and watch streams; etcd-transport.ts owns the sockets.
 */
import { StringDecoder } from 'node:string_decoder';
import type {
  Expect,
  KeyValue,
  LeaseId,
  PrefixSnapshot,
  PutOptions,
  Store,
  WatchCallbacks,
  WatchHandle,
} from './store.js';
import { StoreError } from './store.js';
import {
  type Json,
  type Outcome,
  JsonObjectFramer,
  b64,
  compares,
  decodeEvent,
  decodeKv,
  int,
  list,
  obj,
  putRequest,
  rangeEnd,
  text,
} from './etcd-codec.js';
import {
  attempt,
  endpointsOf,
  EtcdTransport,
  type Endpoint,
  type EtcdProtocol,
  type EtcdTlsMaterial,
} from './etcd-transport.js';
import { authHeaders, authRefusal, EtcdTokens, shouldRenew, type EtcdCredentials } from './etcd-auth.js';

export interface EtcdStoreOptions {
  /** "host:port" of each etcd member's client URL. */
  readonly hosts: readonly string[];
  /** Deadline of one whole call, all endpoints included. */
  readonly requestTimeoutMs: number;
  /** Scheme of every endpoint (default http). */
  readonly protocol?: EtcdProtocol;
  /** CA and client certificate for https (PEM contents). */
  readonly tls?: EtcdTlsMaterial;
  /** etcd user; both or neither of username and password. */
  readonly username?: string;
  readonly password?: string;
}

/** What the watch streams need from their store: the sockets and a token per endpoint. */
interface StreamAuth {
  readonly transport: EtcdTransport;
  /** Authorization headers for `ep`; `fresh` drops the token that was just refused first. */
  headers(
    ep: Endpoint,
    timeoutMs: number,
    signal: AbortSignal,
    refused?: string,
  ): Promise<{ headers: Record<string, string>; token: string } | Outcome>;
  readonly username: string | undefined;
}

export class EtcdStore implements Store, AsyncDisposable, StreamAuth {
  private readonly endpoints: readonly Endpoint[];
  private readonly timeoutMs: number;
  readonly transport: EtcdTransport;
  private readonly tokens: EtcdTokens | undefined;
  private readonly closing = new AbortController();
  private readonly watches = new Set<EtcdWatch>();
  /** Index of the endpoint that answered last; every call starts there. */
  private preferred = 0;

  constructor(opts: EtcdStoreOptions) {
    if ((opts.username === undefined) !== (opts.password === undefined))
      throw new Error('EtcdStore: etcd authentication needs both username and password');
    if (opts.hosts.length === 0) throw new Error('EtcdStore needs at least one etcd endpoint in hosts');
    if (!(opts.requestTimeoutMs > 0))
      throw new Error(`EtcdStore requestTimeoutMs must be > 0, got ${opts.requestTimeoutMs}`);
    this.endpoints = endpointsOf(opts.hosts);
    this.timeoutMs = opts.requestTimeoutMs;
    this.transport = new EtcdTransport(opts.protocol ?? 'http', opts.tls);
    const creds: EtcdCredentials | undefined =
      opts.username !== undefined && opts.password !== undefined
        ? { username: opts.username, password: opts.password }
        : undefined;
    this.tokens = creds ? new EtcdTokens(this.transport, creds) : undefined;
  }

  get username(): string | undefined {
    return this.tokens?.creds.username;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call('/v3/kv/range', { key: b64(key) });
    const kvs = list(res['kvs']);
    return kvs[0] ? decodeKv(kvs[0]) : undefined;
  }

  async getPrefix(prefix: string): Promise<PrefixSnapshot> {
    const res = await this.call('/v3/kv/range', { key: b64(prefix), range_end: rangeEnd(prefix) });
    return { revision: int(obj(res['header']), 'revision'), kvs: list(res['kvs']).map(decodeKv) };
  }

  async put(key: string, value: string, opts?: PutOptions): Promise<void> {
    await this.call('/v3/kv/put', putRequest(key, value, opts));
  }

  async create(key: string, value: string, opts?: PutOptions): Promise<boolean> {
    return await this.compareAndPut(key, value, { exists: false }, opts);
  }

  async compareAndPut(key: string, value: string, expect: Expect, opts?: PutOptions): Promise<boolean> {
    return await this.txn(key, expect, { request_put: putRequest(key, value, opts) });
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call('/v3/kv/deleterange', { key: b64(key) });
    return int(res, 'deleted') > 0;
  }

  async compareAndDelete(key: string, expect: Expect): Promise<boolean> {
    return await this.txn(key, expect, { request_delete_range: { key: b64(key) } });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const res = await this.call('/v3/kv/deleterange', { key: b64(prefix), range_end: rangeEnd(prefix) });
    return int(res, 'deleted');
  }

  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new StoreError('DCS_REQUEST', `lease TTL must be a positive whole number of seconds, got ${ttlSeconds}`);
    }
    const res = await this.call('/v3/lease/grant', { TTL: String(ttlSeconds) });
    const id = text(res, 'ID');
    if (id === '' || id === '0' || text(res, 'error') !== '') {
      throw new StoreError(
        'DCS_REQUEST',
        `etcd did not grant a lease: ${text(res, 'error') || 'no lease id in the answer'}`,
      );
    }
    return id;
  }

  async keepAlive(lease: LeaseId): Promise<boolean> {
    // LeaseKeepAlive is a bidirectional stream; through the gateway one request body yields one `{"result":...}`.
    const res = await this.call('/v3/lease/keepalive', { ID: lease });
    // A missing lease is answered with TTL absent (zero), not with an error.
    return int(obj(res['result']), 'TTL') > 0;
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: lease });
    } catch (err) {
      // Revoking an already expired or revoked lease is what the caller wanted; it is not an error.
      if (err instanceof StoreError && err.code === 'DCS_REQUEST' && /lease not found/.test(err.message)) return;
      throw err;
    }
  }

  watchPrefix(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle {
    const body = JSON.stringify({
      create_request: { key: b64(prefix), range_end: rangeEnd(prefix), start_revision: String(fromRevision) },
    });
    const order = this.endpointOrder();
    const watch = new EtcdWatch(this, order, body, this.timeoutMs, cb, () => this.watches.delete(watch));
    if (this.closing.signal.aborted) {
      watch.fail(closedError());
    } else {
      this.watches.add(watch);
      watch.start();
    }
    return watch;
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    await Promise.all([...this.watches].map((w) => w.close()));
    this.transport.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async txn(key: string, expect: Expect, op: Json): Promise<boolean> {
    const res = await this.call('/v3/kv/txn', { compare: compares(key, expect), success: [op] });
    return res['succeeded'] === true;
  }

  private endpointOrder(): Endpoint[] {
    const n = this.endpoints.length;
    return Array.from({ length: n }, (_, k) => this.endpoints[(this.preferred + k) % n] as Endpoint);
  }

  /**
   * One call within `requestTimeoutMs`: endpoints are tried in order from the last one that answered, each with an
   * even share of the time left. A timed-out write may still have been applied; like Patroni we try the next member
   * anyway, so a compare-and-put can report false for a write that in fact succeeded — callers re-read.
   */
  private async call(path: string, body: Json): Promise<Json> {
    const signal = this.closing.signal;
    if (signal.aborted) throw closedError();
    const payload = JSON.stringify(body);
    const deadline = performance.now() + this.timeoutMs;
    const order = this.endpointOrder();
    const failures: string[] = [];
    for (let k = 0; k < order.length; k++) {
      const ep = order[k] as Endpoint;
      const share = (deadline - performance.now()) / (order.length - k);
      if (share < 1) break;
      const outcome = await this.attemptWithToken(ep, path, payload, share, signal);
      if (signal.aborted) throw closedError();
      if (outcome.kind === 'ok') {
        this.preferred = this.endpoints.indexOf(ep);
        return outcome.json;
      }
      if (outcome.kind === 'refused') {
        this.preferred = this.endpoints.indexOf(ep);
        throw (
          authRefusal(ep.text, path, outcome.reason, this.username) ??
          new StoreError('DCS_REQUEST', `etcd ${ep.text} refused ${path}: ${outcome.reason}`, ep.text)
        );
      }
      failures.push(`${ep.text}: ${outcome.reason}`);
    }
    const untried = order.slice(failures.length).map((e) => `${e.text}: not tried, deadline passed`);
    throw new StoreError(
      'DCS_UNAVAILABLE',
      `etcd ${path}: no endpoint answered within ${this.timeoutMs} ms (${[...failures, ...untried].join('; ')})`,
      order[Math.max(0, failures.length - 1)]?.text,
    );
  }

  /** The Authorization header for `ep` (none without credentials); `refused` names a token etcd has just refused. */
  async headers(
    ep: Endpoint,
    timeoutMs: number,
    signal: AbortSignal,
    refused?: string,
  ): Promise<{ headers: Record<string, string>; token: string } | Outcome> {
    if (!this.tokens) return { headers: {}, token: '' };
    if (refused !== undefined) this.tokens.drop(ep, refused);
    const t = await this.tokens.get(ep, timeoutMs, signal);
    return t.kind === 'token' ? { headers: authHeaders(t.token), token: t.token } : t;
  }

  /** One call to one member with a token; a refusal a new token may cure gets one new token and one retry. */
  private async attemptWithToken(
    ep: Endpoint,
    path: string,
    payload: string,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const until = performance.now() + timeoutMs;
    let refused: string | undefined;
    for (;;) {
      const h = await this.headers(ep, until - performance.now(), signal, refused);
      if (!('headers' in h)) return h;
      const out = await attempt(this.transport, ep, path, payload, h.headers, until - performance.now(), signal);
      if (out.kind !== 'refused' || !this.tokens || refused !== undefined || !shouldRenew(out.reason, h.token))
        return out;
      refused = h.token;
    }
  }
}

/**
 * One `/v3/watch` stream. The member is picked like a call (first that answers with `created` within its share of
 * the timeout); once established, any break — cancel, compaction, lost connection — ends it with one `onError`.
 */
class EtcdWatch implements WatchHandle {
  private readonly abort = new AbortController();
  private finished = false;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly auth: StreamAuth,
    private readonly order: readonly Endpoint[],
    private readonly body: string,
    private readonly timeoutMs: number,
    private readonly cb: WatchCallbacks,
    private readonly onFinished: () => void,
  ) {}

  start(): void {
    this.inFlight = this.run().catch((err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
  }

  async close(): Promise<void> {
    this.finished = true;
    this.abort.abort();
    this.onFinished();
    await this.inFlight;
  }

  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.abort.abort();
    this.onFinished();
    queueMicrotask(() => this.cb.onError(err));
  }

  private async run(): Promise<void> {
    const deadline = performance.now() + this.timeoutMs;
    const failures: string[] = [];
    for (let k = 0; k < this.order.length && !this.finished; k++) {
      const ep = this.order[k] as Endpoint;
      let refused: string | undefined;
      for (;;) {
        const share = (deadline - performance.now()) / (this.order.length - k);
        if (share < 1) break;
        const h = await this.auth.headers(ep, share, this.abort.signal, refused);
        if (this.finished) return;
        if (!('headers' in h)) {
          failures.push(`${ep.text}: ${h.kind === 'ok' ? 'no token' : h.reason}`);
          break;
        }
        const left = (deadline - performance.now()) / (this.order.length - k);
        if (left < 1) break;
        const outcome = await this.stream(ep, left, h.headers, h.token, refused !== undefined);
        if (outcome === 'established' || this.finished) return;
        if (outcome === 'new token') {
          refused = h.token;
          continue;
        }
        failures.push(`${ep.text}: ${outcome}`);
        break;
      }
    }
    this.fail(
      new StoreError(
        'DCS_UNAVAILABLE',
        `etcd watch: no endpoint answered within ${this.timeoutMs} ms (${failures.join('; ')})`,
      ),
    );
  }

  /** Resolves 'established' once the stream has ended after `created` (the outcome then went to the callbacks), else the reason. */
  private stream(
    ep: Endpoint,
    timeoutMs: number,
    headers: Record<string, string>,
    token: string,
    renewed: boolean,
  ): Promise<string> {
    return new Promise<string>((resolve) => {
      let established = false;
      let settled = false;
      const done = (why: string, err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        if (established && err) this.fail(err);
        resolve(established ? 'established' : why);
      };
      const timer = setTimeout(() => done(`no answer within ${Math.floor(timeoutMs)} ms`), timeoutMs);
      const req = this.auth.transport.post(
        ep,
        '/v3/watch',
        headers,
        Buffer.byteLength(this.body),
        this.abort.signal,
        (res) => {
          if (res.statusCode !== 200) return done(`HTTP ${res.statusCode ?? 0}`);
          const framer = new JsonObjectFramer();
          const decoder = new StringDecoder('utf8');
          res.on('data', (chunk: Buffer) => {
            let texts: string[];
            try {
              texts = framer.push(decoder.write(chunk));
            } catch (err) {
              return done(
                'malformed stream',
                new StoreError('DCS_REQUEST', `etcd ${ep.text} watch: ${(err as Error).message}`, ep.text),
              );
            }
            for (const t of texts) {
              if (this.finished) return;
              const msg = this.handle(ep, t, token, renewed);
              if (msg === 'new token') return done('new token');
              if (msg === 'created') {
                established = true;
                clearTimeout(timer);
              } else if (msg instanceof Error) {
                established = true;
                return done('watch ended', msg);
              }
            }
          });
          const lost = (): void =>
            done(
              'connection closed',
              new StoreError('DCS_UNAVAILABLE', `etcd ${ep.text} watch: connection lost`, ep.text),
            );
          res.on('end', lost);
          res.on('error', lost);
          res.on('close', lost);
        },
      );
      req.on('error', (err) =>
        done(err.message, new StoreError('DCS_UNAVAILABLE', `etcd ${ep.text} watch: ${err.message}`, ep.text)),
      );
      req.end(this.body);
    });
  }

  /** 'new token': the stream was refused for a token a new one may cure (expired; etcd checks it only at creation). */
  private handle(
    ep: Endpoint,
    jsonText: string,
    token: string,
    renewed: boolean,
  ): 'created' | 'other' | 'new token' | Error {
    let msg: Json;
    try {
      msg = obj(JSON.parse(jsonText));
    } catch {
      return new StoreError('DCS_REQUEST', `etcd ${ep.text} watch: unparseable message`, ep.text);
    }
    const refusal = (reason: string): 'new token' | StoreError | undefined => {
      if (this.auth.username !== undefined && !renewed && shouldRenew(reason, token)) return 'new token';
      return authRefusal(ep.text, '/v3/watch', reason, this.auth.username);
    };
    if (msg['error'] !== undefined) {
      const e = obj(msg['error']);
      const reason = `${text(e, 'message')} (grpc code ${int(e, 'code')})`;
      return refusal(reason) ?? new StoreError('DCS_REQUEST', `etcd ${ep.text} watch failed: ${reason}`, ep.text);
    }
    const r = obj(msg['result']);
    if (r['canceled'] === true) {
      const compacted = int(r, 'compact_revision');
      const why =
        compacted > 0
          ? `revision compacted (oldest available ${compacted + 1})`
          : text(r, 'cancel_reason') || 'canceled by the server';
      return (
        (compacted > 0 ? undefined : refusal(why)) ??
        new StoreError('DCS_REQUEST', `etcd ${ep.text} watch ended: ${why}`, ep.text)
      );
    }
    const events = list(r['events']).map(decodeEvent);
    if (events.length > 0) this.cb.onEvents(events, int(obj(r['header']), 'revision'));
    return r['created'] === true ? 'created' : 'other';
  }
}

function closedError(): StoreError {
  return new StoreError('DCS_CLOSED', 'the etcd store is closed');
}
