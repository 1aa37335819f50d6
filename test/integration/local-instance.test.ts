/**
 * PostgresInstance passes the LocalInstance contract (src/postgres/local-instance.contract.ts) against a real
 * PostgreSQL 15: each story gets its own temp directory and a free loopback port; whatever it started is stopped
 * by PID (pg_ctl immediate, then SIGKILL of the postmaster) in dispose, also when the story failed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { configFromObject } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/log.js';
import { freePort } from '../../src/lib/net.js';
import { pidAlive, run, sleep } from '../../src/lib/proc.js';
import { PostgresInstance } from '../../src/postgres/instance.js';
import { localInstanceContract } from '../../src/postgres/local-instance.contract.js';
import { tempDir } from '../helpers/tmp.js';

const SU = { username: 'postgres', password: 'contract-su' };

/** Stops whatever postmaster the data directory names, by PID. */
async function killPostmaster(dataDir: string, binDir: string): Promise<void> {
  let pid = 0;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!(pid > 0) || !pidAlive(pid)) return;
  await run(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10', '-s'], {
    timeoutMs: 20_000,
  }).catch(() => undefined);
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  for (let i = 0; i < 100 && pidAlive(pid); i++) await sleep(20);
}

localInstanceContract('PostgresInstance (PostgreSQL 15)', async () => {
  const dir = await tempDir('local-instance');
  const port = await freePort('127.0.0.1');
  const nowhere = { host: '127.0.0.1', port: await freePort('127.0.0.1') };
  const cfg = configFromObject(
    {
      scope: 'contract',
      name: 'node1',
      postgresql: {
        listen: `127.0.0.1:${port}`,
        data_dir: 'data',
        authentication: { superuser: SU, replication: { password: 'contract-rep' } },
      },
    },
    'test',
    {},
    dir.path,
  );
  const instance = new PostgresInstance(cfg, silentLogger);
  const clients: pg.Client[] = [];
  return {
    instance,
    self: { host: '127.0.0.1', port },
    nowhere,
    conf: (ssn = '') => ({ cfg, dcsParameters: {}, upstream: null, synchronousStandbyNames: ssn }),
    openTransaction: async () => {
      const c = new pg.Client({
        host: '127.0.0.1',
        port,
        user: SU.username,
        password: SU.password,
        database: 'postgres',
      });
      c.on('error', () => {});
      clients.push(c);
      await c.connect();
      await c.query('BEGIN');
      await c.query('SELECT 1');
      return async () => {
        await c.query('COMMIT');
        await c.end();
      };
    },
    [Symbol.asyncDispose]: async () => {
      for (const c of clients) await c.end().catch(() => {});
      await instance.disconnect();
      await killPostmaster(cfg.postgresql.data_dir, cfg.postgresql.bin_dir);
      await dir[Symbol.asyncDispose]();
    },
  };
});
