import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, request, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { sleep } from '../helpers/wait.js';
import { EtcdStore } from '../../src/dcs/etcd.js';
import { storeContract } from '../../src/dcs/store.contract.js';
import { StoreError, type WatchEvent } from '../../src/dcs/store.js';
import { freePort } from '../../src/lib/net.js';
import { startEtcd, type RunningEtcd } from '../helpers/etcd.js';
import { tempDir } from '../helpers/tmp.js';
import { eventually, watchRecorder } from '../helpers/wait.js';

const TIMEOUT_MS = 2000;

function isStoreError(code: StoreError['code'], ...mentions: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const m of mentions) assert.match(err.message, new RegExp(m.replace(/[.[\]]/g, '\\$&')));
    return true;
  };
}

/** etcd's compaction is not part of the Store port; the test drives it through the gateway directly. */
async function compact(endpoint: string, revision: number): Promise<void> {
  const [host, port] = endpoint.split(':') as [string, string];
  const body = JSON.stringify({ revision: String(revision), physical: true });
  await new Promise<void>((resolve, reject) => {
    const req = request({ host, port: Number(port), path: '/v3/kv/compaction', method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`compaction: HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('EtcdStore against a real etcd', () => {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let etcd: RunningEtcd | undefined;
  const endpoint = (): string => {
    assert.ok(etcd, 'etcd did not start');
    return etcd.endpoint;
  };

  before(async () => {
    dir = await tempDir('etcd');
    etcd = await startEtcd(dir.path);
  });
  after(async () => {
    await etcd?.stop();
    await dir?.[Symbol.asyncDispose]();
  });

  storeContract('EtcdStore', async () => {
    const store = new EtcdStore({ hosts: [endpoint()], requestTimeoutMs: TIMEOUT_MS });
    return {
      store,
      advance: async (ms: number) => void (await sleep(ms)),
      [Symbol.asyncDispose]: () => store.close(),
    };
  });

  it('tries the next endpoint when one is down', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    await using store = new EtcdStore({ hosts: [dead, endpoint()], requestTimeoutMs: TIMEOUT_MS });
    await store.put('/failover/k', 'v');
    assert.equal((await store.get('/failover/k'))?.value, 'v');
  });

  it('ends a watch from a compacted revision with exactly one onError and no events', async () => {
    await using store = new EtcdStore({ hosts: [endpoint()], requestTimeoutMs: TIMEOUT_MS });
    await store.put('/compact/k', '1');
    const from = (await store.get('/compact/k'))?.modRevision ?? 0;
    await store.put('/compact/k', '2');
    await compact(endpoint(), (await store.getPrefix('/compact/')).revision);
    const rec = watchRecorder();
    const watch = store.watchPrefix('/compact/', from, rec);
    try {
      await eventually('onError', () => rec.errors.length > 0);
      await store.put('/compact/k', '3');
      await sleep(200);
      assert.equal(rec.errors.length, 1);
      assert.match(rec.errors[0]?.message ?? '', /compacted/);
      assert.deepEqual(rec.events, []);
    } finally {
      await watch.close();
    }
  });

  it('refuses half of a credential pair (authentication itself is tested in etcd-secure.test.ts)', () => {
    assert.throws(
      () => new EtcdStore({ hosts: [endpoint()], requestTimeoutMs: TIMEOUT_MS, username: 'root' }),
      /both username and password/,
    );
    assert.throws(
      () => new EtcdStore({ hosts: [endpoint()], requestTimeoutMs: TIMEOUT_MS, password: 'x' }),
      /both username and password/,
    );
  });
});

describe('EtcdStore when etcd fails', () => {
  it('rejects with DCS_UNAVAILABLE naming every endpoint when none listens', async () => {
    const a = `127.0.0.1:${await freePort()}`;
    const b = `127.0.0.1:${await freePort()}`;
    await using store = new EtcdStore({ hosts: [a, b], requestTimeoutMs: TIMEOUT_MS });
    await assert.rejects(store.get('/k'), isStoreError('DCS_UNAVAILABLE', a, b));
  });

  it('never hangs: a member that accepts but never answers costs at most the request timeout', async () => {
    const sockets = new Set<Socket>();
    const silent = createTcpServer((s) => void sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      await using store = new EtcdStore({ hosts: [`127.0.0.1:${port}`], requestTimeoutMs: 300 });
      const t0 = performance.now();
      await assert.rejects(
        store.keepAlive('1'),
        isStoreError('DCS_UNAVAILABLE', `127.0.0.1:${port}`, 'no answer within'),
      );
      const took = performance.now() - t0;
      assert.ok(took >= 250 && took < 1000, `took ${took} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('a watch whose connection breaks reports onError once; messages split anywhere are reassembled', async () => {
    const kv = {
      key: Buffer.from('/w/a').toString('base64'),
      value: Buffer.from('1').toString('base64'),
      create_revision: '5',
      mod_revision: '5',
    };
    const stream =
      JSON.stringify({ result: { header: { revision: '4' }, created: true } }) +
      '\n' +
      JSON.stringify({ result: { header: { revision: '5' }, events: [{ kv }] } }) +
      '\n' +
      JSON.stringify({
        result: { header: { revision: '6' }, events: [{ type: 'DELETE', kv: { key: kv.key, mod_revision: '6' } }] },
      }) +
      '\n';
    let res: ServerResponse | undefined;
    const server = createHttpServer((req, r) => {
      res = r;
      req.resume();
      r.writeHead(200, { 'content-type': 'application/json' });
      // Three bytes at a time: splits inside keys, strings and between objects.
      void (async () => {
        for (let i = 0; i < stream.length; i += 3) {
          r.write(stream.slice(i, i + 3));
          await sleep(1);
        }
      })();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await using store = new EtcdStore({ hosts: [`127.0.0.1:${port}`], requestTimeoutMs: TIMEOUT_MS });
      const rec = watchRecorder();
      const watch = store.watchPrefix('/w/', 5, rec);
      await eventually('both events', () => rec.events.length >= 2);
      assert.deepEqual(rec.events, [
        { type: 'put', kv: { key: '/w/a', value: '1', createRevision: 5, modRevision: 5, lease: '0' } },
        { type: 'delete', key: '/w/a', modRevision: 6 },
      ]);
      assert.equal(rec.errors.length, 0);
      res?.socket?.destroy();
      await eventually('onError', () => rec.errors.length > 0);
      await sleep(100);
      assert.equal(rec.errors.length, 1);
      assert.ok(rec.errors[0] instanceof StoreError && rec.errors[0].code === 'DCS_UNAVAILABLE');
      await watch.close();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('a watch on a real etcd that stops reports onError once', async () => {
    await using dir = await tempDir('etcd-stop');
    await using etcd = await startEtcd(dir.path);
    await using store = new EtcdStore({ hosts: [etcd.endpoint], requestTimeoutMs: TIMEOUT_MS });
    await store.put('/stop/a', '1');
    const rec = watchRecorder();
    const watch = store.watchPrefix('/stop/', 1, rec);
    await eventually('the replayed put', () => rec.events.length === 1);
    await etcd.stop();
    await eventually('onError', () => rec.errors.length > 0);
    await sleep(100);
    assert.equal(rec.errors.length, 1);
    await watch.close();
    await assert.rejects(store.get('/stop/a'), isStoreError('DCS_UNAVAILABLE', etcd.endpoint));
  });
});
