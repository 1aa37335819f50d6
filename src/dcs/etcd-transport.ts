/**
 * The sockets under `EtcdStore`: one keep-alive agent for http or https (with the CA and optional client
 * certificate of `etcd3.cacert`/`cert`/`key`), one POST with a deadline, and the endpoint type. No etcd semantics
 * here beyond "a reused keep-alive socket that fails says nothing about the member".
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { parseHostPort } from '../lib/net.js';
import { classify, type Outcome } from './etcd-codec.js';

export type EtcdProtocol = 'http' | 'https';

/** PEM contents (not paths): the store never reads files, its caller does (etcd-client-config.ts). */
export interface EtcdTlsMaterial {
  /** CA certificates the members' certificates are checked against; Node's default CAs when absent. */
  readonly ca?: string;
  /** Client certificate and key, for an etcd started with --client-cert-auth. Both or neither. */
  readonly cert?: string;
  readonly key?: string;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** As configured, for messages. */
  readonly text: string;
}

export function endpointsOf(hosts: readonly string[]): Endpoint[] {
  return hosts.map((h) => {
    const { host, port } = parseHostPort(h);
    return { host, port, text: h.trim() };
  });
}

export class EtcdTransport {
  /** keepAlive so the HA loop does not pay a TCP (and TLS) handshake per call; TCP keepalive also probes idle watch streams. */
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;

  constructor(
    readonly protocol: EtcdProtocol,
    tls: EtcdTlsMaterial = {},
  ) {
    if (protocol === 'http' && (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined)) {
      throw new Error('EtcdStore: a CA or client certificate needs protocol https');
    }
    if ((tls.cert === undefined) !== (tls.key === undefined))
      throw new Error('EtcdStore: a client certificate needs both cert and key');
    const keep = { keepAlive: true, keepAliveMsecs: 5_000 };
    if (protocol === 'https') {
      // The agent's TLS options apply to every request made through it (Node merges agent.options into each).
      this.agent = new HttpsAgent({ ...keep, ...definedOnly(tls), rejectUnauthorized: true });
      this.send = httpsRequest as unknown as typeof httpRequest;
    } else {
      this.agent = new HttpAgent(keep);
      this.send = httpRequest;
    }
  }

  /** Starts a POST; the caller writes the body and owns the response. */
  post(
    ep: Endpoint,
    path: string,
    headers: Readonly<Record<string, string>>,
    bodyLength: number,
    signal: AbortSignal,
    onResponse: (res: IncomingMessage) => void,
  ): ClientRequest {
    return this.send(
      {
        host: ep.host,
        port: ep.port,
        path,
        method: 'POST',
        agent: this.agent,
        signal,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': bodyLength },
      },
      onResponse,
    );
  }

  destroy(): void {
    this.agent.destroy();
  }
}

function definedOnly(tls: EtcdTlsMaterial): EtcdTlsMaterial {
  return Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)) as EtcdTlsMaterial;
}

/** One unary call to one member within `timeoutMs`, sorted into ok / refused / unavailable. */
export async function attempt(
  t: EtcdTransport,
  ep: Endpoint,
  path: string,
  payload: string,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
  closing: AbortSignal,
): Promise<Outcome> {
  const timeout = AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)));
  const signal = AbortSignal.any([closing, timeout]);
  // A pooled keep-alive socket the server has just closed fails on reuse; that says nothing about the member.
  for (let retry = 0; ; retry++) {
    try {
      const res = await post(t, ep, path, payload, headers, signal);
      return classify(res.status, res.body);
    } catch (err) {
      if (timeout.aborted) return { kind: 'unavailable', reason: `no answer within ${Math.floor(timeoutMs)} ms` };
      const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
      if (retry === 0 && e.reusedSocket === true && !signal.aborted) continue;
      return { kind: 'unavailable', reason: e.message };
    }
  }
}

function post(
  t: EtcdTransport,
  ep: Endpoint,
  path: string,
  payload: string,
  headers: Readonly<Record<string, string>>,
  signal: AbortSignal,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = t.post(ep, path, headers, Buffer.byteLength(payload), signal, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error('connection closed before the answer was complete'));
      });
    });
    req.on('error', (err: Error & { reusedSocket?: boolean }) => {
      err.reusedSocket = req.reusedSocket;
      reject(err);
    });
    req.end(payload);
  });
}
