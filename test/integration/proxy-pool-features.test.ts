/**
 * reserve_pool, max_prepared_statements and SET search_path tracking through the proxy against one real
 * PostgreSQL 15, with node-postgres clients. Assertions are on what the server and the admin console report
 * (backend pids, pg_stat_activity, pg_prepared_statements, SHOW DATABASES), never on how long anything took.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type pg from 'pg';
import { sleep } from '../../src/lib/proc.js';
import { connectClient, proxyFixture } from '../helpers/proxy.js';

const opened: pg.Client[] = [];
// Added before the fixture's hooks, so it runs first (hooks run in the order they are added): clients end before
// their proxies close.
afterEach(async () => {
  for (const c of opened.splice(0)) await c.end().catch(() => undefined);
});

// query_wait_timeout bounds a wait that only the feature under test can end: without it the test fails, not hangs.
const fx = proxyFixture('proxy-pool-features', {
  postgres: { maxConnections: 30 },
  proxy: { query_wait_timeout: 20 },
  setup,
});
const proxy = fx.proxy;

async function client(at: { host: string; port: number }, database = 'postgres'): Promise<pg.Client> {
  const c = await connectClient(at, { database });
  opened.push(c);
  return c;
}

/** Polls `read` until it returns `want` (or gives up after 15 s and returns the last value for the assertion). */
async function eventually<T>(read: () => Promise<T>, want: T): Promise<T> {
  let v = await read();
  for (let i = 0; i < 150 && v !== want; i++) {
    await sleep(100);
    v = await read();
  }
  return v;
}

/** A database, a schema and two tables (fixture setup, once PostgreSQL is up). */
async function setup(): Promise<void> {
  await fx.pg.sql('CREATE DATABASE reserve_db');
  await fx.pg.sql('CREATE SCHEMA a_schema');
  await fx.pg.sql("CREATE TABLE a_schema.t (v text); INSERT INTO a_schema.t VALUES ('a_schema')");
  await fx.pg.sql("CREATE TABLE public.t (v text); INSERT INTO public.t VALUES ('public')");
}

describe('proxy pool features against PostgreSQL 15', () => {
  it('reserve pool: with pool size 1 held by an open transaction, a second client is served by a reserve connection', async () => {
    const at = await proxy({ default_pool_size: 1, reserve_pool_size: 1, reserve_pool_timeout: 1 });
    const serversInDb = async (): Promise<number> =>
      Number(
        (
          await fx.pg.sql(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'reserve_db' AND backend_type = 'client backend'",
          )
        )[0]?.n,
      );
    const a = await client(at, 'reserve_db');
    const b = await client(at, 'reserve_db');
    await a.query('BEGIN');
    const pidA = (await a.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    // The pool's only connection stays linked to A: B's transaction can only run on a reserve connection.
    await b.query('BEGIN');
    const pidB = (await b.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    assert.notEqual(pidB, pidA);
    assert.equal(await serversInDb(), 2, 'pool_size 1 + 1 reserve connection on the server');

    const admin = await client(at, 'pgbouncer');
    const db = (await admin.query('SHOW DATABASES')).rows.find((r: { name: string }) => r.name === 'reserve_db');
    assert.equal(Number(db.pool_size), 1);
    assert.equal(Number(db.reserve_pool_size), 1);
    assert.equal(Number(db.current_connections), 2);
    const pool = (await admin.query('SHOW POOLS')).rows.find((r: { database: string }) => r.database === 'reserve_db');
    assert.equal(Number(pool.sv_active), 2);

    // B's transaction ends with nobody waiting: the connection above the pool size is closed, A's stays.
    await b.query('COMMIT');
    assert.equal(await eventually(serversInDb, 1), 1);
    assert.equal((await a.query('SELECT pg_backend_pid() AS pid')).rows[0].pid, pidA);
    await a.query('COMMIT');
  });

  it('max_prepared_statements 2: five named statements in turns on a pool of 1, the server connection never holds more than 2', async () => {
    const at = await proxy({ default_pool_size: 1, max_prepared_statements: 2 });
    const c = await client(at);
    const other = await client(at);
    const texts = Array.from({ length: 5 }, (_, i) => `SELECT $1::int + ${i} AS v, ${i} AS which`);
    const held = async (who: pg.Client): Promise<number> => {
      await who.query('BEGIN');
      const n = Number((await who.query('SELECT count(*) AS n FROM pg_prepared_statements')).rows[0].n);
      await who.query('COMMIT');
      return n;
    };
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < texts.length; i++) {
        // node-postgres sends Parse only the first time per name: later rounds Bind statements evicted meanwhile.
        const who = i % 2 === 0 ? c : other;
        const r = await who.query({ name: `q${i}`, text: texts[i] as string, values: [round * 10] });
        assert.deepEqual(r.rows[0], { v: round * 10 + i, which: i });
        const n = await held(c);
        assert.ok(n >= 1 && n <= 2, `the server connection holds ${n} prepared statements`);
      }
    }
    const admin = await client(at, 'pgbouncer');
    const servers = (await admin.query('SHOW SERVERS')).rows as { prepared_statements: string }[];
    assert.equal(servers.length, 1);
    assert.ok(Number(servers[0]?.prepared_statements) <= 2);
  });

  it('search_path set with SQL follows the client to another server connection and does not leak to others', async () => {
    const at = await proxy({ default_pool_size: 2 });
    const a = await client(at);
    const b = await client(at);
    const read = async (who: pg.Client): Promise<{ v: string; pid: number }> =>
      (await who.query('SELECT v, pg_backend_pid() AS pid FROM t')).rows[0];

    await a.query('SET search_path TO a_schema');
    // A SET in a transaction that rolls back is undone on the server, and must not be recorded either.
    await a.query('BEGIN');
    await a.query('SET search_path TO public');
    await a.query('ROLLBACK');
    const pidsA = new Set<number>();
    const pidsB = new Set<number>();
    for (let round = 0; round < 3; round++) {
      // B holds one server connection in a transaction, so A's next query runs on the other one, and vice versa.
      const [holder, runner] = round % 2 === 0 ? [b, a] : [a, b];
      await holder.query('BEGIN');
      const h = await read(holder);
      const r = await read(runner);
      await holder.query('COMMIT');
      const [ra, rb] = holder === a ? [h, r] : [r, h];
      assert.equal(ra.v, 'a_schema', `round ${round}: A resolves t in its schema`);
      assert.equal(rb.v, 'public', `round ${round}: B keeps the default search_path`);
      assert.notEqual(ra.pid, rb.pid);
      pidsA.add(ra.pid);
      pidsB.add(rb.pid);
    }
    assert.equal(pidsA.size, 2, 'A ran on both server connections');
    assert.equal(pidsB.size, 2, 'B ran on both server connections');

    await a.query('RESET search_path');
    await b.query('BEGIN');
    await read(b);
    assert.equal((await read(a)).v, 'public', 'after RESET, A gets the default back on the other connection');
    await b.query('COMMIT');
  });
});
