/**
 * `workers: 2` against a real PostgreSQL: worker processes share the listener, pool limits are divided (the server
 * never sees more connections than the configured total), CancelRequests reach the worker that runs the query
 * whichever worker accepted them, the admin console and /metrics show all workers as one proxy, PAUSE reaches
 * every worker, and closing the proxy leaves no worker process.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import pg from 'pg';
import { pidAlive } from '../../src/lib/proc.js';
import { buildCancelRequest } from '../../src/protocol/index.js';
import type { RunningProxy } from '../../src/proxy/proxy.js';
import { workerOfPid } from '../../src/proxy/workers/workers-config.js';
import { connectClient, proxyFixture } from '../helpers/proxy.js';
import { sleep } from '../helpers/wait.js';

const fx = proxyFixture('proxy-workers', { postgres: { maxConnections: 30 }, setup });
let proxy: RunningProxy & { workerPids?: () => number[] };
let at: { host: string; port: number };
const POOL_TOTAL = 4;

const client = (opts: pg.ClientConfig = {}): Promise<pg.Client> => connectClient(at, opts);

const keysOf = (c: pg.Client) => c as unknown as { processID: number; secretKey: number };

function sendCancel(pid: number, secret: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const s = connect({ host: at.host, port: at.port }, () => s.end(buildCancelRequest(pid, secret)));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

/** Server connections the proxy holds (everything but the probe itself). */
async function proxyBackends(direct: pg.Client): Promise<number> {
  const r = await direct.query(
    "select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and usename = 'postgres'",
  );
  return r.rows[0].n as number;
}

/** One proxy for the whole file (fixture setup: it is closed after all tests). */
async function setup(): Promise<void> {
  const started = await fx.proxy(
    { metrics_listen: '127.0.0.1:0', workers: 2, default_pool_size: POOL_TOTAL, max_client_conn: 40 },
    { workerLog: null },
  );
  proxy = started.p;
  at = { host: started.host, port: started.port };
}

describe('proxy with workers: 2', () => {
  it('runs two worker processes that both serve clients', async () => {
    assert.equal(proxy.workerPids?.().length, 2);
    const clients = await Promise.all(Array.from({ length: 6 }, () => client()));
    try {
      const workers = new Set(clients.map((c) => workerOfPid(keysOf(c).processID)));
      assert.deepEqual([...workers].sort(), [0, 1], 'connections are spread over both workers');
      for (const c of clients) assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
      const admin = await client({ database: 'pgbouncer' });
      const rows = (await admin.query('SHOW CLIENTS')).rows as { ptr: string; database: string }[];
      await admin.end();
      const mine = rows.filter((r) => r.database === 'postgres');
      assert.equal(mine.length, 6, 'SHOW CLIENTS lists the clients of every worker');
      assert.deepEqual([...new Set(mine.map((r) => r.ptr.split(':')[0]))].sort(), ['w0', 'w1']);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('never opens more server connections than the configured pool in total', async () => {
    const direct = new pg.Client({ host: fx.pg.host, port: fx.pg.port, user: 'postgres', database: 'postgres' });
    await direct.connect();
    const clients = await Promise.all(Array.from({ length: 10 }, () => client()));
    try {
      let most = 0;
      const work = Promise.all(clients.map((c) => c.query('select pg_sleep(0.3)')));
      let finished = false;
      void work.finally(() => (finished = true));
      while (!finished) {
        most = Math.max(most, await proxyBackends(direct));
        await sleep(20);
      }
      await work;
      assert.ok(most <= POOL_TOTAL, `at most ${POOL_TOTAL} server connections, saw ${most}`);
      assert.ok(most >= 2, `both workers opened server connections, saw ${most}`);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
      await direct.end();
    }
  });

  it('routes a CancelRequest to the worker running the query, whichever worker accepts it', async () => {
    // Connect one at a time until each worker has two clients (the cluster hands connections out in turn, but
    // concurrent connects need not alternate exactly).
    const clients: pg.Client[] = [];
    try {
      const byWorker: pg.Client[][] = [[], []];
      while ((byWorker[0]!.length < 2 || byWorker[1]!.length < 2) && clients.length < 20) {
        const c = await client();
        clients.push(c);
        byWorker[workerOfPid(keysOf(c).processID)]!.push(c);
      }
      // Cancels for two clients of worker 0, then two of worker 1: the cancel connections alternate between the
      // workers, so whatever the order, some of them arrive at the other worker.
      const order = [...byWorker[0]!.slice(0, 2), ...byWorker[1]!.slice(0, 2)];
      assert.equal(order.length, 4, 'two clients on each worker');
      const results = order.map((c) =>
        c.query('select pg_sleep(60)').then(
          () => null,
          (e: { code?: string }) => e.code,
        ),
      );
      // Cancel once the server runs all four (a cancel that arrives before the query is ignored by PostgreSQL).
      const direct = new pg.Client({ host: fx.pg.host, port: fx.pg.port, user: 'postgres', database: 'postgres' });
      await direct.connect();
      for (;;) {
        const r = await direct.query(
          "select count(*)::int as n from pg_stat_activity where state = 'active' and query = 'select pg_sleep(60)'",
        );
        if (r.rows[0].n === 4) break;
        await sleep(10);
      }
      await direct.end();
      for (const c of order) await sendCancel(keysOf(c).processID, keysOf(c).secretKey);
      assert.deepEqual(await Promise.all(results), ['57014', '57014', '57014', '57014']);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('PAUSE and RESUME reach every worker; /metrics answers for all of them', async () => {
    const admin = await client({ database: 'pgbouncer' });
    try {
      await admin.query('PAUSE');
      const paused = (await admin.query('SHOW STATE')).rows as { key: string; value: string }[];
      assert.equal(
        paused.find((r) => r.key === 'paused')?.value,
        'yes',
        'SHOW STATE says paused only when every worker is',
      );
      await admin.query('RESUME');
      const resumed = (await admin.query('SHOW STATE')).rows as { key: string; value: string }[];
      assert.equal(resumed.find((r) => r.key === 'paused')?.value, 'no');
      const conf = (await admin.query('SHOW CONFIG')).rows as { key: string; value: string }[];
      assert.equal(
        conf.find((r) => r.key === 'default_pool_size')?.value,
        String(POOL_TOTAL),
        'SHOW CONFIG shows the total',
      );
    } finally {
      await admin.end();
    }
    const c = await client();
    assert.equal((await c.query('select 2 as two')).rows[0].two, 2, 'clients are served after RESUME');
    await c.end();
    const res = await fetch(`http://${proxy.metricsAddress}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^pgkeel_proxy_up 1$/m);
    assert.match(text, /pgkeel_proxy_client_logins_total\{database="postgres"\} \d+/);
  });

  it('stops every worker process on close', async () => {
    const pids = proxy.workerPids?.() ?? [];
    assert.equal(pids.length, 2);
    await proxy.close();
    for (const pid of pids) assert.equal(pidAlive(pid), false, `worker ${pid} is gone`);
  });
});
