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
  b64,
  compares,
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
import { closedError, EtcdWatch, type StreamAuth } from './etcd-watch.js';

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
