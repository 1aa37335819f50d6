import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import { Pool, type PoolIO, type PoolLimits, type PooledServer, type Waiter } from './pool.js';

interface FakeServer extends PooledServer {
  readonly n: number;
}

function harness(limits: Partial<PoolLimits> = {}) {
  const opened: number[] = [];
  const closed: [number, string][] = [];
  let openResult: true | ProxyError = true;
  let n = 0;
  const io: PoolIO<FakeServer> = {
    open: () => {
      if (openResult === true) opened.push(++n);
      return openResult;
    },
    close: (s, why) => void closed.push([s.n, why]),
  };
  const pool = new Pool<FakeServer>(
    io,
    {
      size: 2,
      reserveSize: 0,
      reserveWaitMs: 0,
      minSize: 0,
      queryWaitMs: 1000,
      serverIdleMs: 0,
      serverLifetimeMs: 0,
      retryMs: 100,
      ...limits,
    },
    'db/u',
  );
  const server = (id: number, now = 0): FakeServer => ({ n: id, closeNeeded: false, createdAt: now, idleSince: 0 });
  const waiter = () => {
    const w = { got: [] as FakeServer[], errors: [] as ProxyError[] } as {
      got: FakeServer[];
      errors: ProxyError[];
    } & Waiter<FakeServer>;
    w.assign = (s) => void w.got.push(s);
    w.fail = (e) => void w.errors.push(e);
    return w;
  };
  return { pool, opened, closed, server, waiter, setOpen: (r: true | ProxyError) => (openResult = r) };
}

describe('Pool', () => {
  it('queues a client and opens one server per waiter up to the pool size', () => {
    const h = harness({ size: 2 });
    const ws = [h.waiter(), h.waiter(), h.waiter()];
    for (const w of ws) assert.equal(h.pool.request(w, 0), null);
    assert.deepEqual(h.opened, [1, 2], 'two opens for three waiters with size 2');
    h.pool.connected(h.server(1), 5);
    h.pool.connected(h.server(2), 6);
    assert.equal(ws[0]?.got[0]?.n, 1);
    assert.equal(ws[1]?.got[0]?.n, 2);
    assert.equal(h.pool.waiting, 1);
  });

  it('hands a released server to the first waiter, else keeps it idle (LIFO)', () => {
    const h = harness({ size: 1 });
    const a = h.waiter();
    const b = h.waiter();
    h.pool.request(a, 0);
    const s = h.server(1);
    h.pool.connected(s, 1);
    assert.equal(h.pool.request(b, 2), null);
    h.pool.release(s, 3);
    assert.deepEqual(b.got, [s]);
    h.pool.release(s, 4);
    assert.equal(h.pool.idle.length, 1);
    assert.equal(h.pool.request(h.waiter(), 5), s, 'an idle server is returned synchronously');
  });

  it('fails waiters after query_wait_timeout with the stall reason', () => {
    const h = harness();
    h.setOpen(new ProxyError(ProxyErrorCode.NoLeader, 'no leader to route to'));
    const w = h.waiter();
    h.pool.request(w, 0);
    h.pool.tick(999);
    assert.equal(w.errors.length, 0);
    h.pool.tick(1000);
    assert.equal(w.errors[0]?.code, ProxyErrorCode.NoLeader);
    assert.match(w.errors[0]?.message ?? '', /no leader.*waited 1\.0 s/);
  });

  it('a network failure retries after retryMs; a refused login fails every waiter', () => {
    const h = harness();
    const w = h.waiter();
    h.pool.request(w, 0);
    h.pool.connectFailed(new ProxyError(ProxyErrorCode.ServerLogin, 'refused'), false, 10);
    h.pool.tick(50);
    assert.deepEqual(h.opened, [1], 'no retry before retryMs');
    h.pool.tick(110);
    assert.deepEqual(h.opened, [1, 2]);
    h.pool.connectFailed(new ProxyError(ProxyErrorCode.ServerRefused, 'password authentication failed'), true, 120);
    assert.equal(w.errors[0]?.code, ProxyErrorCode.ServerRefused);
    assert.equal(h.pool.waiting, 0);
  });

  it('pause queues clients; resume serves them; fenced servers close instead of being reused', () => {
    const h = harness({ size: 2 });
    const s1 = h.server(1);
    const s2 = h.server(2);
    h.pool.request(h.waiter(), 0);
    h.pool.request(h.waiter(), 0);
    h.pool.connected(s1, 0);
    h.pool.connected(s2, 0);
    h.pool.release(s1, 1); // s1 idle, s2 active
    h.pool.pause();
    h.pool.fence(() => true, 'leader changing');
    assert.deepEqual(h.closed, [[1, 'leader changing']]);
    assert.equal(s2.closeNeeded, true);
    const w = h.waiter();
    assert.equal(h.pool.request(w, 2), null);
    h.pool.release(s2, 3);
    assert.deepEqual(h.closed[1], [2, 'fenced']);
    assert.equal(w.got.length, 0, 'paused: nothing handed out');
    h.pool.resume(4);
    assert.equal(h.opened.length, 3, 'resume opens a connection for the waiter');
  });

  it('closes idle servers after server_idle_timeout and old ones at server_lifetime', () => {
    const h = harness({ size: 3, serverIdleMs: 100, serverLifetimeMs: 1000 });
    const a = h.server(1, 0);
    h.pool.request(h.waiter(), 0);
    h.pool.connected(a, 0);
    h.pool.release(a, 10);
    h.pool.tick(109);
    assert.equal(h.closed.length, 0);
    h.pool.tick(110);
    assert.deepEqual(h.closed, [[1, 'server_idle_timeout']]);
    const b = h.server(2, 0);
    h.pool.request(h.waiter(), 0);
    h.pool.connected(b, 0);
    h.pool.release(b, 1000);
    assert.deepEqual(h.closed[1], [2, 'server_lifetime']);
  });

  it('keeps min_pool_size open while it has clients', () => {
    const h = harness({ size: 5, minSize: 2 });
    h.pool.tick(0);
    assert.equal(h.opened.length, 0, 'no clients: nothing opened');
    h.pool.clients = 1;
    h.pool.tick(1);
    assert.equal(h.opened.length, 2);
  });

  it('reserve: one extra server per waiter overdue by reserveWaitMs, at most reserveSize extra', () => {
    const h = harness({ size: 1, reserveSize: 2, reserveWaitMs: 1000, queryWaitMs: 0 });
    const holder = h.waiter();
    h.pool.request(holder, 0);
    h.pool.connected(h.server(1), 0);
    const [a, b, c] = [h.waiter(), h.waiter(), h.waiter()];
    h.pool.request(a, 0);
    h.pool.request(b, 500);
    h.pool.request(c, 600);
    h.pool.tick(999);
    assert.deepEqual(h.opened, [1], 'nobody overdue: the pool stays at its size');
    h.pool.tick(1000);
    assert.deepEqual(h.opened, [1, 2], 'one waiter overdue: one reserve server');
    h.pool.tick(1200);
    assert.deepEqual(h.opened, [1, 2], 'the open in flight already serves the overdue waiter');
    h.pool.tick(1500);
    assert.deepEqual(h.opened, [1, 2, 3], 'second waiter overdue');
    h.pool.tick(1600);
    assert.deepEqual(h.opened, [1, 2, 3], 'reserve used up (size 1 + reserve 2)');
    h.pool.connected(h.server(2), 1700);
    h.pool.connected(h.server(3), 1700);
    assert.equal(a.got[0]?.n, 2);
    assert.equal(b.got[0]?.n, 3);
    assert.equal(h.pool.total, 3);
  });

  it('reserve: a server that would fall idle above the pool size is closed; within the size it stays idle', () => {
    const h = harness({ size: 1, reserveSize: 1, reserveWaitMs: 100 });
    const s1 = h.server(1);
    const s2 = h.server(2);
    h.pool.request(h.waiter(), 0);
    h.pool.connected(s1, 0);
    const late = h.waiter();
    h.pool.request(late, 0);
    h.pool.tick(100);
    h.pool.connected(s2, 110);
    assert.deepEqual(late.got, [s2]);
    h.pool.release(s2, 120);
    assert.deepEqual(h.closed, [[2, 'reserve_pool: not needed any more']]);
    h.pool.remove(s2, 121);
    h.pool.release(s1, 130);
    assert.deepEqual(h.pool.idle, [s1], 'back within the size: kept');
  });

  it('reserve: reserveWaitMs 0 or reserveSize 0 never opens beyond the size', () => {
    for (const limits of [
      { reserveSize: 1, reserveWaitMs: 0 },
      { reserveSize: 0, reserveWaitMs: 100 },
    ]) {
      const h = harness({ size: 1, queryWaitMs: 0, ...limits });
      h.pool.request(h.waiter(), 0);
      h.pool.connected(h.server(1), 0);
      h.pool.request(h.waiter(), 0);
      h.pool.tick(10_000);
      assert.deepEqual(h.opened, [1], JSON.stringify(limits));
    }
  });

  it('cancel removes a waiter', () => {
    const h = harness({ size: 1 });
    const a = h.waiter();
    h.pool.request(a, 0);
    h.pool.cancel(a);
    h.pool.connected(h.server(1), 1);
    assert.equal(a.got.length, 0);
    assert.equal(h.pool.idle.length, 1);
  });
});
