/**
 * The proxy following a Patroni-layout cluster in a real etcd, with hand-written keys. One PostgreSQL plays two
 * "nodes": each node is a TCP forwarder in front of it, so the test can see which node a connection went to and can
 * kill a node's connections. Given node1 leads and node2 replicates:
 * - writes go to node1, reads to node2; a lagging replica is not used for reads;
 * - a planned switchover (failover key, then leader key → node2) queues new transactions and resumes them on node2
 *   with no error, closing connections to node1;
 * - a transaction in flight on a node that dies gets 08006 naming the node;
 * - with no leader, new transactions wait and proceed once a leader is named (or fail after query_wait_timeout).
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sleep } from '../helpers/wait.js';
import pg from 'pg';
import { EtcdStore } from '../../src/dcs/etcd.js';
import { clusterKeys } from '../../src/dcs/layout.js';
import { silentLogger } from '../../src/lib/log.js';
import { proxyConfigFromObject } from '../../src/proxy/config.js';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy.js';
import { startEtcd, type RunningEtcd } from '../helpers/etcd.js';
import { startPostgres, type RunningPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

interface Forwarder {
  readonly port: number;
  /** Connections accepted so far. */
  accepted: number;
  readonly open: Set<Socket>;
  killAll(): void;
  /** Stops moving bytes without closing anything, like a host whose link went down: nothing refuses. */
  freeze(): void;
  close(): Promise<void>;
}

async function forwarder(target: { host: string; port: number }): Promise<Forwarder> {
  const open = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  const f = { accepted: 0, open } as Forwarder & { accepted: number };
  const server: Server = createServer((down) => {
    f.accepted++;
    const up = connect(target);
    open.add(down);
    pairs.add([down, up]);
    down.on('close', () => {
      for (const p of pairs) if (p[0] === down) pairs.delete(p);
    });
    const done = (): void => {
      open.delete(down);
      down.destroy();
      up.destroy();
    };
    down.pipe(up).on('error', done);
    up.pipe(down).on('error', done);
    down.on('close', done).on('error', done);
    up.on('close', done).on('error', done);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return Object.assign(f, {
    port,
    killAll: () => {
      for (const s of [...open]) s.destroy();
    },
    freeze: () => {
      for (const [down, up] of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
    close: async () => {
      for (const s of [...open]) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

const keys = clusterKeys('demo');
let dir: { path: string } & AsyncDisposable;
let etcd: RunningEtcd;
let store: EtcdStore;
let pgsrv: RunningPostgres;
let node1: Forwarder;
let node2: Forwarder;
const proxies: RunningProxy[] = [];

const member = (f: Forwarder, role: string, lsn: number) =>
  JSON.stringify({
    conn_url: `postgres://127.0.0.1:${f.port}/postgres`,
    api_url: 'http://127.0.0.1:1/patroni',
    state: 'running',
    role,
    xlog_location: lsn,
    replay_lsn: lsn,
  });

async function leads(leader: 'node1' | 'node2', leaderLsn = 1000): Promise<void> {
  const [l, r] = leader === 'node1' ? [node1, node2] : [node2, node1];
  const other = leader === 'node1' ? 'node2' : 'node1';
  await store.put(keys.member(leader), member(l, 'master', leaderLsn));
  await store.put(keys.member(other), member(r, 'replica', 1000));
  await store.put(keys.leader, leader);
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const v = await fn();
    if (v) return v;
    await sleep(20);
  }
  throw new Error(`never happened: ${what}`);
}

async function client(addr: string, database = 'postgres'): Promise<pg.Client> {
  const [host, port] = addr.split(':') as [string, string];
  const c = new pg.Client({ host, port: Number(port), user: 'postgres', database });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function show(addr: string, what: string): Promise<Record<string, unknown>[]> {
  const a = await client(addr, 'pgbouncer');
  try {
    return (await a.query(`SHOW ${what}`)).rows as Record<string, unknown>[];
  } finally {
    await a.end();
  }
}

async function proxy(extra: Record<string, unknown> = {}): Promise<RunningProxy> {
  const cfg = proxyConfigFromObject(
    {
      listen: '127.0.0.1:0',
      ro_listen: '127.0.0.1:0',
      auth_type: 'trust',
      etcd: { hosts: [etcd.endpoint], scope: 'demo' },
      default_pool_size: 2,
      max_lag: 1000,
      ro_fallback_to_leader: true,
      query_wait_timeout: 60,
      ...extra,
    },
    'test',
  );
  const p = await startProxy(cfg, { log: silentLogger });
  proxies.push(p);
  return p;
}

before(async () => {
  dir = await tempDir('proxy-dcs');
  etcd = await startEtcd(dir.path);
  store = new EtcdStore({ hosts: [etcd.endpoint], requestTimeoutMs: 2000 });
  pgsrv = await startPostgres(dir.path, { maxConnections: 20 });
  node1 = await forwarder(pgsrv);
  node2 = await forwarder(pgsrv);
  await leads('node1');
});

after(async () => {
  for (const p of proxies) await p.close();
  await node1?.close();
  await node2?.close();
  await store?.close();
  await etcd?.stop();
  await pgsrv?.stop();
  await dir?.[Symbol.asyncDispose]();
});

describe('proxy following the DCS', () => {
  it('routes writes to the leader and reads to the replica; a lagging replica is excluded', async () => {
    const p = await proxy();
    const rw = await client(p.rwAddress);
    const ro = await client(p.roAddress as string);
    await rw.query('select 1');
    await ro.query('select 1');
    const servers = await show(p.rwAddress, 'SERVERS');
    assert.deepEqual(
      servers.map((s) => `${s['database']}:${s['port']}`).sort(),
      [`postgres:${node1.port}`, `postgres@ro:${node2.port}`].sort(),
    );
    await leads('node1', 100_000); // node2 is now 99,000 bytes behind, max_lag is 1000
    await eventually('node2 excluded', async () =>
      (await show(p.rwAddress, 'TOPOLOGY')).some((r) => r['node'] === 'node2' && r['eligible'] === 'no'),
    );
    await ro.query('select 1');
    const after = await show(p.rwAddress, 'SERVERS');
    assert.ok(
      after.every((s) => s['port'] === node1.port),
      'reads fell back to the leader; node2 connections fenced',
    );
    await leads('node1');
    await rw.end();
    await ro.end();
  });

  it('planned switchover: new transactions queue, then run on the new leader without an error', async () => {
    const p = await proxy();
    const c = await client(p.rwAddress);
    await c.query('select 1');
    await store.put(keys.failover, JSON.stringify({ leader: 'node1', member: 'node2' }));
    await eventually('pause', async () =>
      (await show(p.rwAddress, 'STATE')).some((r) => r['key'] === 'paused' && r['value'] === 'yes'),
    );
    const q = c.query('select 42 as v');
    await eventually('client queued', async () =>
      (await show(p.rwAddress, 'CLIENTS')).some((r) => r['database'] === 'postgres' && r['state'] === 'waiting'),
    );
    await leads('node2');
    await store.delete(keys.failover);
    assert.equal((await q).rows[0].v, 42);
    const servers = await show(p.rwAddress, 'SERVERS');
    assert.ok(
      servers.length > 0 && servers.every((s) => s['port'] === node2.port),
      'only connections to the new leader remain',
    );
    await c.end();
  });

  it('a transaction in flight on a node that dies gets 08006 naming the node', async () => {
    await leads('node2');
    const p = await proxy();
    const c = await client(p.rwAddress);
    await c.query('BEGIN');
    const q = c.query('select pg_sleep(30)').then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    await eventually('query running', async () =>
      (await show(p.rwAddress, 'CLIENTS')).some((r) => r['database'] === 'postgres' && r['state'] === 'active'),
    );
    node2.killAll();
    const err = await q;
    assert.equal(err?.code, '08006');
    assert.match(err?.message ?? '', /node2/);
    await c.end().catch(() => undefined);
  });

  it('the leader key on a member that is not primary yet: writes wait, then run once it reports itself primary', async () => {
    await leads('node1');
    const p = await proxy();
    const c = await client(p.rwAddress);
    await c.query('select 1');
    await store.put(keys.member('node2'), member(node2, 'replica', 1000));
    await store.put(keys.leader, 'node2'); // the key is taken before pg_ctl promote has finished
    await eventually('holding', async () => (await show(p.rwAddress, 'TOPOLOGY')).every((r) => r['role'] !== 'leader'));
    const q = c.query('select 8 as v');
    await eventually('client queued', async () =>
      (await show(p.rwAddress, 'CLIENTS')).some((r) => r['database'] === 'postgres' && r['state'] === 'waiting'),
    );
    assert.ok(
      (await show(p.rwAddress, 'SERVERS')).every((s) => s['port'] !== node2.port),
      'nothing was sent to the member still in recovery',
    );
    await store.put(keys.member('node2'), member(node2, 'master', 1000));
    assert.equal((await q).rows[0].v, 8);
    assert.ok((await show(p.rwAddress, 'SERVERS')).every((s) => s['port'] === node2.port));
    await c.end();
  });

  it('a statement in flight on a host that vanished (nothing refuses) fails with 08006 as soon as the key moves', async () => {
    await leads('node2');
    const p = await proxy();
    const c = await client(p.rwAddress);
    await c.query('BEGIN');
    await c.query('select 1');
    node2.freeze();
    const q = c.query('select 2').then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    await eventually('query sent', async () =>
      (await show(p.rwAddress, 'CLIENTS')).some((r) => r['database'] === 'postgres' && r['state'] === 'active'),
    );
    await leads('node1');
    const err = await q; // without the cut this waits for TCP's retransmission timeout (minutes)
    assert.equal(err?.code, '08006');
    assert.match(err?.message ?? '', /node2/);
    await c.end().catch(() => undefined);
    node2.killAll();
  });

  it('no leader: new transactions wait and proceed once a leader is named', async () => {
    const p = await proxy();
    const c = await client(p.rwAddress);
    await store.delete(keys.leader);
    await eventually('pause', async () => (await show(p.rwAddress, 'TOPOLOGY')).every((r) => r['role'] !== 'leader'));
    const q = c.query('select 7 as v');
    await eventually('client queued', async () =>
      (await show(p.rwAddress, 'CLIENTS')).some((r) => r['database'] === 'postgres' && r['state'] === 'waiting'),
    );
    await leads('node1');
    assert.equal((await q).rows[0].v, 7);
    await c.end();
  });

  it('no leader for longer than query_wait_timeout: 08006 for the waiting client', async () => {
    await store.delete(keys.leader);
    const p = await proxy({ query_wait_timeout: 1 });
    const c = await client(p.rwAddress).catch((e: { code?: string }) => e);
    const err =
      c instanceof pg.Client
        ? await c.query('select 1').then(
            () => null,
            (e: { code?: string }) => e,
          )
        : c;
    assert.equal((err as { code?: string } | null)?.code, '08006');
    await leads('node1');
  });
});
