/**
 * Real clients through the proxy against one real PostgreSQL: psql, pgbench in every query mode and both pool
 * modes, node-postgres (large rows, LISTEN/NOTIFY, cancellation, per-client parameters), COPY through psql, many
 * clients on a small pool, and authentication (trust, md5, SCRAM; to the server with md5 and SCRAM users).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/lib/proc.js';
import { buildCancelRequest, makeScramVerifier } from '../../src/protocol/index.js';
import { USERS } from '../helpers/postgres.js';
import { connectClient as client, proxyFixture } from '../helpers/proxy.js';

const fx = proxyFixture('proxy-clients', { postgres: { maxConnections: 30 }, proxy: { default_pool_size: 4 }, setup });
const proxy = fx.proxy;

const pgEnv = (at: { host: string; port: number }, user = 'postgres'): NodeJS.ProcessEnv => ({
  PGHOST: at.host,
  PGPORT: String(at.port),
  PGUSER: user,
  PGDATABASE: 'postgres',
});

async function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string) {
  const r = await run(cmd, args, {
    env,
    asPostgres: false,
    timeoutMs: 60_000,
    ...(input !== undefined ? { input } : {}),
  });
  return r;
}

/** The pgbench tables (fixture setup, once PostgreSQL is up). */
async function setup(): Promise<void> {
  const init = await sh('pgbench', ['-i', '-s', '1', '-q'], pgEnv(fx.pg));
  assert.equal(init.code, 0, init.stderr);
}

describe('proxy with real clients', () => {
  it('psql runs queries and the admin console answers SHOW', async () => {
    const at = await proxy();
    const r = await sh('psql', ['-XAtc', 'select 40 + 2'], pgEnv(at));
    assert.equal(r.stdout.trim(), '42', r.stderr);
    const pools = await sh('psql', ['-XAt', '-d', 'pgbouncer', '-c', 'SHOW POOLS'], pgEnv(at));
    assert.match(pools.stdout, /^postgres\|postgres\|/m, pools.stderr);
  });

  for (const mode of ['transaction', 'session'] as const) {
    for (const m of ['simple', 'extended', 'prepared'] as const) {
      it(`pgbench -M ${m} in ${mode} mode: 200 transactions per client, none failed`, async () => {
        const at = await proxy({ pool_mode: mode, default_pool_size: mode === 'session' ? 8 : 3 });
        const r = await sh('pgbench', ['-n', '-c', '6', '-j', '2', '-t', '200', '-M', m], pgEnv(at));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /number of transactions actually processed: 1200\/1200/);
        assert.match(r.stdout, /number of failed transactions: 0 /);
      });
    }
  }

  it('COPY FROM STDIN and TO STDOUT through psql', async () => {
    const at = await proxy();
    await fx.pg.sql('CREATE TABLE copy_t (id int, v text)');
    const rows = Array.from({ length: 5000 }, (_, i) => `${i}\tv${i}`).join('\n') + '\n';
    const into = await sh('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', '\\copy copy_t from stdin'], pgEnv(at), rows);
    assert.equal(into.code, 0, into.stderr);
    const out = await sh('psql', ['-X', '-c', '\\copy (select * from copy_t order by id) to stdout'], pgEnv(at));
    assert.equal(out.stdout, rows);
  });

  it('node-postgres: rows larger than 1 MB both ways', async () => {
    const at = await proxy();
    const c = await client(at);
    try {
      const big = 'x'.repeat(3 * 1024 * 1024);
      const r = await c.query('select $1::text as v, length($1::text) as n', [big]);
      assert.equal(r.rows[0].n, big.length);
      assert.equal(r.rows[0].v, big);
    } finally {
      await c.end();
    }
  });

  it('node-postgres: LISTEN/NOTIFY in session mode', async () => {
    const at = await proxy({ pool_mode: 'session' });
    const a = await client(at);
    const b = await client(at);
    try {
      await a.query('LISTEN chan');
      const got = new Promise<string>((resolve) => a.on('notification', (n) => resolve(n.payload ?? '')));
      await b.query("NOTIFY chan, 'hello'");
      assert.equal(await got, 'hello');
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('CancelRequest with the proxy-issued key cancels pg_sleep on the server', async () => {
    const at = await proxy();
    const c = await client(at);
    try {
      const keys = c as unknown as { processID: number; secretKey: number };
      const q = c.query('select pg_sleep(60)').then(
        () => null,
        (e: { code?: string }) => e.code,
      );
      // The proxy links a server when the query arrives; cancel once SHOW CLIENTS says the client is active.
      const admin = await client(at, { database: 'pgbouncer' });
      for (;;) {
        const r = await admin.query('SHOW CLIENTS');
        if (
          r.rows.some(
            (row: { remote_pid: number; state: string }) => row.remote_pid === keys.processID && row.state === 'active',
          )
        )
          break;
      }
      await admin.end();
      await new Promise<void>((resolve, reject) => {
        const s = connect({ host: at.host, port: at.port }, () =>
          s.end(buildCancelRequest(keys.processID, keys.secretKey)),
        );
        s.on('close', () => resolve());
        s.on('error', reject);
      });
      assert.equal(await q, '57014');
      assert.equal((await c.query('select 1 as one')).rows[0].one, 1, 'the client keeps working');
    } finally {
      await c.end();
    }
  });

  it('keeps application_name, TimeZone and options per client in transaction mode on a pool of 1', async () => {
    const at = await proxy({ default_pool_size: 1 });
    const a = await client(at, { application_name: 'app_a', options: '-c TimeZone=Asia/Tokyo' });
    const b = await client(at, { application_name: 'app_b' });
    try {
      for (let i = 0; i < 3; i++) {
        const ra = await a.query("select current_setting('application_name') as n, current_setting('TimeZone') as tz");
        const rb = await b.query("select current_setting('application_name') as n, current_setting('TimeZone') as tz");
        assert.deepEqual(ra.rows[0], { n: 'app_a', tz: 'Asia/Tokyo' });
        assert.equal(rb.rows[0].n, 'app_b');
        assert.notEqual(rb.rows[0].tz, 'Asia/Tokyo');
      }
      await a.query("SET application_name = 'renamed'");
      assert.equal((await b.query("select current_setting('application_name') as n")).rows[0].n, 'app_b');
      assert.equal((await a.query("select current_setting('application_name') as n")).rows[0].n, 'renamed');
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('500 concurrent clients share a pool of 20 server connections', async () => {
    const at = await proxy({ default_pool_size: 20, max_client_conn: 600 });
    const clients = await Promise.all(Array.from({ length: 500 }, () => client(at)));
    try {
      const results = await Promise.all(
        clients.map((c, i) => c.query('select $1::int as i, pg_backend_pid() as pid', [i])),
      );
      for (const [i, r] of results.entries()) assert.equal(r.rows[0].i, i);
      const pids = new Set(results.map((r) => r.rows[0].pid));
      assert.ok(pids.size <= 20, `at most 20 server connections, saw ${pids.size}`);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('authentication: md5 and SCRAM clients, 28P01 on a wrong password, server login with md5 and SCRAM users', async () => {
    const file = join(fx.dir, 'userlist.txt');
    writeFileSync(
      file,
      [
        `"${USERS.scram.user}" "${makeScramVerifier(USERS.scram.password, Buffer.alloc(16, 1))}"`,
        `"${USERS.md5.user}" "${USERS.md5.password}"`,
        '"postgres" ""',
      ].join('\n') + '\n',
    );
    for (const auth_type of ['md5', 'scram-sha-256'] as const) {
      const at = await proxy({ auth_type, auth_file: file });
      const md5c = await client(at, { user: USERS.md5.user, password: USERS.md5.password });
      assert.equal((await md5c.query('select current_user as u')).rows[0].u, USERS.md5.user);
      await md5c.end();
      // The SCRAM verifier in the auth file is not the server's: pass-through keys only fit a verifier with the
      // server's salt, so this user logs in to the server only when the file has its plaintext (next block).
      await assert.rejects(
        client(at, { user: USERS.md5.user, password: 'wrong' }),
        (e: { code?: string }) => e.code === '28P01',
      );
      await assert.rejects(client(at, { user: 'nobody', password: 'x' }), (e: { code?: string }) => e.code === '28P01');
    }
    writeFileSync(file, `"${USERS.scram.user}" "${USERS.scram.password}"\n`);
    const at = await proxy({ auth_type: 'scram-sha-256', auth_file: file });
    const sc = await client(at, { user: USERS.scram.user, password: USERS.scram.password });
    assert.equal((await sc.query('select current_user as u')).rows[0].u, USERS.scram.user);
    await sc.end();
  });

  it('a server that asks for a password the proxy does not have fails the client at once, naming the user', {
    timeout: 60_000,
  }, async () => {
    // trust towards clients and no auth file: the proxy has no password for md5_user, whom the server challenges.
    const at = await proxy({ client_login_timeout: 600 });
    await assert.rejects(client(at, { user: USERS.md5.user, password: USERS.md5.password }), (e: Error) =>
      /asks for a password for user "md5_user"/.test(e.message),
    );
  });
});
