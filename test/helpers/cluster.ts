/**
 * Integration-test fixture: a real local cluster started through the real CLI (`pgkeel up --detach`) in a temp dir
 * on a free port range, and always torn down — `pgkeel down`, then SIGKILL by pid of anything still alive (agents,
 * postmasters, etcd) — even when the test failed.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { StatusJson } from '../../src/local/status.js';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { tempDir } from './tmp.js';

export const repoRoot = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
export const pgkeelBin = join(repoRoot, 'bin', 'pgkeel');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(
  args: readonly string[],
  timeoutMs = 180_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CliResult> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [pgkeelBin, ...args],
      { timeout: timeoutMs, env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        res({ code, stdout, stderr });
      },
    );
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** A base port P such that P..P+span-1 (default 30) are all free right now, below the ephemeral range (32768+)
 *  where outgoing connections would otherwise take a port between this check and the cluster's start. */
export async function freePortBase(span = 30): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (1270 - Math.ceil((span - 30) / 10))) * 10;
    let ok = true;
    for (let p = base; p < base + span && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no free range of ${span} ports found`);
}

export interface TestCluster extends AsyncDisposable {
  readonly dir: string;
  readonly portBase: number;
  status(): Promise<StatusJson>;
  up(extra?: string[]): Promise<CliResult>;
  down(): Promise<CliResult>;
  query(port: number, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Every pid that belongs to this cluster now (agents, postmasters, etcd). */
  pids(): number[];
  waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
}

function readPidFile(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export async function startCluster(opts: { nodes?: number; name?: string } = {}): Promise<TestCluster> {
  const tmp = await tempDir(opts.name ?? 'cluster');
  const dir = join(tmp.path, 'c');
  const portBase = await freePortBase();
  const nodes = opts.nodes ?? 3;
  let password = '';
  const nodeNames = Array.from({ length: nodes }, (_, i) => `node${i + 1}`);
  const c: TestCluster = {
    dir,
    portBase,
    async up(extra = []) {
      return cli([
        'up',
        '--detach',
        '--dir',
        dir,
        '--port-base',
        String(portBase),
        '--nodes',
        String(nodes),
        '--timeout',
        '120',
        ...extra,
      ]);
    },
    async down() {
      return cli(['down', '--dir', dir], 120_000);
    },
    async status() {
      const r = await cli(['status', '--dir', dir, '--json'], 30_000);
      return JSON.parse(r.stdout) as StatusJson;
    },
    async query(port, sql, params = []) {
      if (!password)
        password = (JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { superuser: { password: string } })
          .superuser.password;
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        password,
        database: 'postgres',
        connectionTimeoutMillis: 5000,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query(sql, params)).rows as Record<string, unknown>[];
      } catch (err) {
        // Keep the SQLSTATE (`code`) and the original error for assertions; add where it happened.
        const e = new Error(`query on port ${port} failed (${sql.slice(0, 60)}): ${(err as Error).message}`, {
          cause: err,
        });
        throw Object.assign(e, { code: (err as { code?: string }).code });
      } finally {
        await client.end().catch(() => {});
      }
    },
    pids() {
      const files = [
        join(dir, 'etcd', 'etcd.pid'),
        join(dir, 'proxy.pid'),
        ...nodeNames.flatMap((n) => [join(dir, n, 'agent.pid'), join(dir, n, 'data', 'postmaster.pid')]),
      ];
      return files.map(readPidFile).filter((p): p is number => p !== null && pidAlive(p));
    },
    async waitFor(what, fn, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let lastErr: unknown;
      while (Date.now() < deadline) {
        try {
          const v = await fn();
          if (v !== undefined && v !== false) return v as never;
        } catch (err) {
          lastErr = err;
        }
        await sleep(250);
      }
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`,
      );
    },
    async [Symbol.asyncDispose]() {
      if (existsSync(join(dir, 'cluster.json'))) await c.down().catch(() => {});
      // Whatever survived a failed down: kill by pid, never by name.
      for (const pid of c.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await tmp[Symbol.asyncDispose]();
    },
  };
  return c;
}

export function leaderOf(s: StatusJson) {
  return s.members.find((m) => m.role === 'leader');
}

export function isHealthy(s: StatusJson, nodes: number): boolean {
  return (
    !!leaderOf(s) &&
    leaderOf(s)?.state === 'running' &&
    s.members.filter((m) => m.role !== 'leader' && m.state === 'streaming').length === nodes - 1
  );
}

/** Polls `status --json` until one leader runs and every other member streams. */
export async function healthyStatus(c: TestCluster, nodes = 3, timeoutMs = 60_000): Promise<StatusJson> {
  return c.waitFor(
    'a healthy cluster',
    async () => {
      const s = await c.status();
      return isHealthy(s, nodes) ? s : undefined;
    },
    timeoutMs,
  );
}

/** Polls until a member other than `previous` leads and runs; returns that status. */
export async function newLeaderStatus(c: TestCluster, previous: string, timeoutMs = 30_000): Promise<StatusJson> {
  return c.waitFor(
    `a leader other than ${previous}`,
    async () => {
      const s = await c.status();
      const l = leaderOf(s);
      return l && l.name !== previous && l.state === 'running' ? s : undefined;
    },
    timeoutMs,
  );
}
