/**
 * A local mesh made by `pgkeel up --dir D --mesh N --port-base P` as tests reach it: a superuser connection to site
 * K's leader (1 node per site: node1 on P + 40(K−1) + 11), one-shot queries, and the pids to SIGKILL in `after`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pidAlive } from '../../src/lib/proc.js';
import { cli } from './cluster.js';

export const SITE_SPAN = 40;

export function meshSites(dir: () => string, base: () => number) {
  const sitePort = (k: number) => base() + SITE_SPAN * (k - 1) + 11;
  const connect = async (k: number) => {
    const saved = JSON.parse(readFileSync(join(dir(), `site${k}`, 'cluster.json'), 'utf8')) as {
      superuser: { password: string };
    };
    const c = new pg.Client({
      host: '127.0.0.1',
      port: sitePort(k),
      user: 'postgres',
      password: saved.superuser.password,
      database: 'postgres',
      connectionTimeoutMillis: 5000,
    });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  const query = async (k: number, sql: string, params: unknown[] = []) => {
    const c = await connect(k);
    try {
      return (await c.query(sql, params)).rows as Record<string, unknown>[];
    } finally {
      await c.end().catch(() => {});
    }
  };
  /** Live pids of every site's etcd, proxy, node1 agent and postmaster. */
  const pids = (sites: readonly number[]) =>
    sites.flatMap((k) =>
      ['etcd/etcd.pid', 'proxy.pid', 'node1/agent.pid', 'node1/data/postmaster.pid']
        .map((f) => {
          try {
            return Number(readFileSync(join(dir(), `site${k}`, f), 'utf8').split('\n')[0]);
          } catch {
            return 0;
          }
        })
        .filter((p) => p > 0 && pidAlive(p)),
    );
  /** `down --dir D`, then SIGKILL whatever of `sites` still runs (by pid). */
  const stop = async (sites: readonly number[]) => {
    await cli(['down', '--dir', dir()], 120_000).catch(() => undefined);
    for (const pid of pids(sites)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  return { sitePort, connect, query, pids, stop };
}
