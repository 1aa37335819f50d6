/**
 * The proxy `pgkeel up` starts, against a real cluster: the read-write port reaches the leader, the read-only port a
 * replica, and a planned switchover under load is invisible to clients in transaction mode — the same open session
 * keeps working, and pgbench finishes with 0 failed transactions.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { healthyStatus, leaderOf, startCluster, cli } from '../helpers/cluster.js';
import { superuserPassword } from '../helpers/scenario.js';
import { sleep } from '../helpers/wait.js';

function pgbench(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('/usr/lib/postgresql/15/bin/pgbench', args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('proxy in front of a pgkeel up cluster', () => {
  it('routes rw to the leader and ro to replicas, and hides a switchover from an open session and from pgbench', async () => {
    await using c = await startCluster({ name: 'proxy-up' });
    const up = await c.up();
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /proxy up: read-write/);
    const s = await healthyStatus(c);
    assert.ok(s.proxy, 'status --json lists the proxy');
    const rwPort = Number(s.proxy.rw.split(':')[1]);
    const roPort = Number(s.proxy.ro.split(':')[1]);
    const leader = leaderOf(s);
    assert.ok(leader);
    const password = superuserPassword(c);

    const session = new pg.Client({
      host: '127.0.0.1',
      port: rwPort,
      user: 'postgres',
      password,
      database: 'postgres',
    });
    await session.connect();
    try {
      const [rw] = (await session.query('SELECT inet_server_port() AS port, pg_is_in_recovery() AS rec')).rows;
      assert.deepEqual([rw.port, rw.rec], [leader.port, false], 'rw reaches the leader');
      const ro = new pg.Client({ host: '127.0.0.1', port: roPort, user: 'postgres', password, database: 'postgres' });
      await ro.connect();
      const [r] = (await ro.query('SELECT inet_server_port() AS port, pg_is_in_recovery() AS rec')).rows;
      await ro.end();
      assert.equal(r.rec, true, 'ro reaches a replica');
      assert.ok(s.members.some((m) => m.port === r.port && m.role !== 'leader'));

      const env = {
        PGPASSWORD: password,
        PGHOST: '127.0.0.1',
        PGPORT: String(rwPort),
        PGUSER: 'postgres',
        PGDATABASE: 'postgres',
      };
      const init = await pgbench(['-i', '-s', '1', '-q'], { ...env, PGPORT: String(leader.port) });
      assert.equal(init.code, 0, init.out);

      await session.query('CREATE TABLE sw (i int)');
      let ok = 0;
      const errors: string[] = [];
      let stop = false;
      const writer = (async () => {
        while (!stop) {
          try {
            await session.query('INSERT INTO sw VALUES (1)');
            ok++;
          } catch (err) {
            errors.push(`${(err as { code?: string }).code} ${(err as Error).message}`);
          }
          await sleep(50);
        }
      })();
      const bench = pgbench(['-c', '4', '-j', '2', '-T', '12', '-n', '-M', 'prepared'], env);
      await sleep(3000);
      const candidate = s.members.find((m) => m.role !== 'leader');
      assert.ok(candidate);
      const sw = await cli(['ctl', 'switchover', '--dir', c.dir, '--candidate', candidate.name, '--force'], 120_000);
      assert.equal(sw.code, 0, sw.stdout + sw.stderr);
      const result = await bench;
      stop = true;
      await writer;

      assert.equal(result.code, 0, result.out);
      assert.match(result.out, /number of failed transactions: 0 /, result.out);
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(result.out)?.[1] ?? 0);
      assert.ok(processed > 100, result.out);
      assert.deepEqual(errors, [], 'the open session saw no error across the switchover');
      assert.ok(ok > 50);
      const [after] = (await session.query('SELECT inet_server_port() AS port')).rows;
      assert.equal(after.port, candidate.port, 'the same session now runs on the new leader');
    } finally {
      await session.end().catch(() => {});
    }
  });
});
