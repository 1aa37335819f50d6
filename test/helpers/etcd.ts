import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { etcdArgs, findEtcdBinary, waitForEtcd, type EtcdServerTls } from '../../src/dcs/etcd-server.js';
import type { EtcdTlsMaterial } from '../../src/dcs/etcd-transport.js';
import { freePort, formatHostPort } from '../../src/lib/net.js';

export interface RunningEtcd extends AsyncDisposable {
  /** "host:port" of the client URL, as EtcdStore's `hosts` take it. */
  readonly endpoint: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL if it has not exited after 5 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 5000;
const START_TIMEOUT_MS = 15_000;

export interface EtcdTestOptions {
  /** TLS on the member (paths), and what the health check presents (PEM contents). */
  readonly tls?: { readonly server: EtcdServerTls; readonly client: EtcdTlsMaterial };
  readonly authTokenTtlSeconds?: number;
  /** Keep etcd's whole log in this file (tests grep it for passwords). */
  readonly logFile?: string;
}

/** Starts a single-member etcd with its data under `dir` on free loopback ports; waits until it is healthy. */
export async function startEtcd(dir: string, opts: EtcdTestOptions = {}): Promise<RunningEtcd> {
  const host = '127.0.0.1';
  const [clientPort, peerPort] = [await freePort(host), await freePort(host)];
  const args = etcdArgs({
    name: 'pgkeel-test',
    dataDir: join(dir, 'etcd-data'),
    clientHost: host,
    clientPort,
    peerPort,
    ...(opts.tls ? { tls: opts.tls.server } : {}),
    ...(opts.authTokenTtlSeconds !== undefined ? { authTokenTtlSeconds: opts.authTokenTtlSeconds } : {}),
  });
  const child = spawn(findEtcdBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    log = (log + chunk).slice(-4000);
    if (opts.logFile !== undefined) appendFileSync(opts.logFile, chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  await Promise.race([once(child, 'spawn'), once(child, 'error').then(([e]) => Promise.reject(e as Error))]);
  const pid = child.pid as number;

  const stop = async (): Promise<void> => {
    if (gone) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return; // already reaped
    }
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }, STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };

  const endpoint = formatHostPort(host, clientPort);
  const died = new AbortController();
  void exited.then(() => died.abort(new Error(`etcd exited during startup: ${log.trim().slice(-2000)}`)));
  try {
    await waitForEtcd(
      endpoint,
      START_TIMEOUT_MS,
      died.signal,
      opts.tls ? { protocol: 'https', tls: opts.tls.client } : { protocol: 'http' },
    );
  } catch (err) {
    await stop();
    throw new Error(`etcd did not start at ${endpoint}: ${(err as Error).message}\n${log.trim().slice(-2000)}`);
  }
  return { endpoint, pid, stop, [Symbol.asyncDispose]: stop };
}
