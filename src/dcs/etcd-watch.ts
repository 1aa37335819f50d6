/**
 * One etcd watch stream over the JSON gateway (`POST /v3/watch`): reconnects across endpoints, re-authenticates a
 * refused stream once, and reports events in revision order. Owned by `EtcdStore` (etcd.ts).
 */
import { StringDecoder } from 'node:string_decoder';
import type { WatchCallbacks, WatchHandle } from './store.js';
import { StoreError } from './store.js';
import { type Json, type Outcome, JsonObjectFramer, decodeEvent, int, list, obj, text } from './etcd-codec.js';
import type { EtcdTransport, Endpoint } from './etcd-transport.js';
import { authRefusal, shouldRenew } from './etcd-auth.js';

/** What the watch streams need from their store: the sockets and a token per endpoint. */
export interface StreamAuth {
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

/**
 * One `/v3/watch` stream. The member is picked like a call (first that answers with `created` within its share of
 * the timeout); once established, any break — cancel, compaction, lost connection — ends it with one `onError`.
 */
export class EtcdWatch implements WatchHandle {
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

export function closedError(): StoreError {
  return new StoreError('DCS_CLOSED', 'the etcd store is closed');
}
