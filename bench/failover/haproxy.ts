/**
 * HAProxy in front of either system with the stock Patroni recipe, so both have the same client path: clients
 * connect to one read-write port, HAProxy sends them to the member whose REST API answers `OPTIONS /primary` 200.
 * The timers are the fast ones from the benchmark brief (a check every 500 ms, 250 ms while changing state, down
 * after 2 failed checks, up after 1). HAProxy's own "Server … is UP/DOWN" lines are kept with their time, to show
 * where an outage went (detection by HAProxy vs promotion by the agents).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/lib/net.js';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { now } from './probe.js';

export const HAPROXY_BIN = '/usr/sbin/haproxy';

export interface Backend {
  readonly name: string;
  readonly pgPort: number;
  readonly apiPort: number;
}

export interface HaproxyEvent {
  readonly at: number;
  readonly server: string;
  readonly state: 'UP' | 'DOWN';
}

export function haproxyConfig(rwPort: number, backends: readonly Backend[]): string {
  const servers = backends.map((b) => `    server ${b.name} 127.0.0.1:${b.pgPort} maxconn 100 check port ${b.apiPort}`);
  return [
    'global',
    '    maxconn 200',
    '',
    'defaults',
    '    mode tcp',
    '    retries 2',
    '    timeout client 30m',
    '    timeout connect 4s',
    '    timeout server 30m',
    '    timeout check 5s',
    '',
    'listen primary',
    `    bind 127.0.0.1:${rwPort}`,
    '    option httpchk OPTIONS /primary',
    '    http-check expect status 200',
    '    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
    ...servers,
    '',
  ].join('\n');
}

export class Haproxy implements AsyncDisposable {
  readonly events: HaproxyEvent[] = [];
  private log = '';

  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    const onData = (d: Buffer) => {
      const text = d.toString();
      this.log = (this.log + text).slice(-8000);
      for (const m of text.matchAll(/Server primary\/(\S+) is (UP|DOWN)/g)) {
        this.events.push({ at: now(), server: m[1] as string, state: m[2] as 'UP' | 'DOWN' });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  /** Writes `dir`/haproxy.cfg and starts HAProxy in the foreground (-db) as our child. */
  static async start(dir: string, backends: readonly Backend[]): Promise<Haproxy> {
    const port = await freePort();
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig(port, backends));
    const child = spawn(HAPROXY_BIN, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const h = new Haproxy(port, child);
    await sleep(300);
    if (child.exitCode !== null || child.pid === undefined)
      throw new Error(`haproxy exited at start (code ${child.exitCode}): ${h.log.trim()}`);
    return h;
  }

  /** The UP/DOWN events between `from` and `to`, as "+1.23s node2 UP" relative to `origin`. */
  eventsBetween(from: number, to: number, origin: number): string[] {
    return this.events
      .filter((e) => e.at >= from && e.at <= to)
      .map((e) => `${((e.at - origin) / 1000).toFixed(2)}s ${e.server} ${e.state}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => pidAlive(pid) && process.kill(pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
