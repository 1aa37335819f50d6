/**
 * Running Debian's etcd (package `etcd-server`, etcd 3.4) for tests and local clusters: where the binary is, the
 * flags of a single-member cluster on loopback, and waiting until it serves. Starting and stopping the process is
 * the caller's (it owns the child's lifetime).
 */
import { accessSync, constants } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { delimiter, join } from 'node:path';
import { sleep } from '../lib/proc.js';
import { formatHostPort, parseHostPort } from '../lib/net.js';
import type { EtcdProtocol, EtcdTlsMaterial } from './etcd-transport.js';

/** Returns the path of an executable `etcd`; throws with the install hint when there is none. */
export function findEtcdBinary(): string {
  const dirs = ['/usr/bin', '/usr/local/bin', ...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = join(dir, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new Error("etcd is not installed; install Debian's package with `apt-get install etcd-server`");
}

export interface EtcdMemberOptions {
  readonly name: string;
  readonly dataDir: string;
  /** Loopback or another local address; peers listen on the same host. */
  readonly clientHost: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** TLS on the client and peer URLs (paths of PEM files). */
  readonly tls?: EtcdServerTls;
  /** Lifetime of etcd's simple auth tokens (etcd's default 300 s). */
  readonly authTokenTtlSeconds?: number;
}

export interface EtcdServerTls {
  /** The member's certificate (SANs must name clientHost) and key. */
  readonly cert: string;
  readonly key: string;
  /** CA that signed client (and peer) certificates. */
  readonly ca: string;
  /** Refuse clients without a certificate signed by `ca` (--client-cert-auth). */
  readonly clientCertAuth: boolean;
}

/** Flags (etcd 3.4 names, see `etcd --help`) for a new single-member cluster. */
export function etcdArgs(o: EtcdMemberOptions): string[] {
  const scheme = o.tls ? 'https' : 'http';
  const client = `${scheme}://${formatHostPort(o.clientHost, o.clientPort)}`;
  const peer = `${scheme}://${formatHostPort(o.clientHost, o.peerPort)}`;
  const tls = o.tls
    ? [
        '--cert-file',
        o.tls.cert,
        '--key-file',
        o.tls.key,
        '--trusted-ca-file',
        o.tls.ca,
        ...(o.tls.clientCertAuth ? ['--client-cert-auth'] : []),
        // The peer port stays closed to anyone without a certificate from the same CA, even on a single member.
        '--peer-cert-file',
        o.tls.cert,
        '--peer-key-file',
        o.tls.key,
        '--peer-trusted-ca-file',
        o.tls.ca,
        '--peer-client-cert-auth',
      ]
    : [];
  const ttl = o.authTokenTtlSeconds !== undefined ? ['--auth-token-ttl', String(o.authTokenTtlSeconds)] : [];
  return [
    ...tls,
    ...ttl,
    '--name',
    o.name,
    '--data-dir',
    o.dataDir,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `${o.name}=${peer}`,
    '--initial-cluster-state',
    'new',
    // A token per member name keeps two local clusters from accepting each other's peers.
    '--initial-cluster-token',
    `pgkeel-${o.name}`,
    // etcd's defaults, stated because lease TTLs (minimum ~1.5 × election timeout) and failover timing depend on them.
    '--heartbeat-interval',
    '100',
    '--election-timeout',
    '1000',
    // Keep an hour of history so watches can resume after a blip without the data dir growing forever.
    '--auto-compaction-mode',
    'periodic',
    '--auto-compaction-retention',
    '1h',
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
    '--log-level',
    'warn',
  ];
}

/**
 * Resolves once etcd at `endpoint` ("host:port") reports itself healthy on GET /health (which requires a leader),
 * polling every 50 ms; rejects after `timeoutMs` naming the last answer, or when `signal` aborts.
 */
export async function waitForEtcd(
  endpoint: string,
  timeoutMs: number,
  signal?: AbortSignal,
  client: { protocol: EtcdProtocol; tls?: EtcdTlsMaterial } = { protocol: 'http' },
): Promise<void> {
  const { host, port } = parseHostPort(endpoint);
  const until = performance.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    signal?.throwIfAborted();
    const left = until - performance.now();
    if (left <= 0) throw new Error(`etcd at ${endpoint} was not healthy within ${timeoutMs} ms (last: ${last})`);
    try {
      const { status, body } = await getOnce(host, port, '/health', Math.min(1000, left), client, signal);
      if (status === 200 && /"health"\s*:\s*"?true/.test(body)) return;
      last = `HTTP ${status} ${body.trim().slice(0, 200)}`;
    } catch (err) {
      signal?.throwIfAborted();
      last = (err as Error).message;
    }
    await sleep(50, signal);
  }
}

function getOnce(
  host: string,
  port: number,
  path: string,
  timeoutMs: number,
  client: { protocol: EtcdProtocol; tls?: EtcdTlsMaterial },
  outer?: AbortSignal,
): Promise<{ status: number; body: string }> {
  const timeout = AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)));
  const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
  return new Promise((resolve, reject) => {
    const base = { host, port, path, method: 'GET', agent: false as const, signal };
    const onRes = (res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    };
    const req =
      client.protocol === 'https' ? httpsRequest({ ...base, ...client.tls }, onRes) : httpRequest(base, onRes);
    req.on('error', (err) => reject(timeout.aborted ? new Error(`no answer within ${Math.floor(timeoutMs)} ms`) : err));
    req.end();
  });
}
