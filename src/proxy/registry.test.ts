import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryStore } from '../dcs/memory.js';
import { silentLogger } from '../lib/log.js';
import { proxiesPrefix, proxyId, proxyRecord, registerProxy } from './registry.js';

const STARTED = new Date('2026-12-03T08:00:00Z');

describe('proxy registry: the record', () => {
  it('names the key after the listen address and points at /metrics and /stats', () => {
    const r = proxyRecord({ rw: '127.0.0.1:6432', ro: '127.0.0.1:6433', metrics: '127.0.0.1:6434' }, 'v1', STARTED);
    assert.deepEqual(r, {
      id: '127.0.0.1_6432',
      listen: '127.0.0.1:6432',
      ro_listen: '127.0.0.1:6433',
      metrics_url: 'http://127.0.0.1:6434/metrics',
      stats_url: 'http://127.0.0.1:6434/stats',
      version: 'v1',
      started: '2026-12-03T08:00:00.000Z',
    });
    assert.equal(proxiesPrefix('demo', 'service'), '/service/demo/proxies/');
    assert.equal(proxyId('[::1]:6432'), '[__1]_6432');
  });

  it('leaves ro_listen out without a read-only listener and names this host for a wildcard bind', () => {
    const r = proxyRecord({ rw: '0.0.0.0:6432', ro: null, metrics: '0.0.0.0:9127' }, 'v1', STARTED, () => 'db-proxy-1');
    assert.equal('ro_listen' in r, false);
    assert.equal(r.stats_url, 'http://db-proxy-1:9127/stats');
  });
});

describe('proxy registry: the key', () => {
  const record = proxyRecord({ rw: '127.0.0.1:6432', ro: null, metrics: '127.0.0.1:6434' }, 'v1', STARTED);

  it('is written under a lease and disappears when the proxy stops', async () => {
    await using store = new MemoryStore({ now: () => 0 });
    const reg = await registerProxy({ store, scope: 'demo', namespace: 'service', record, log: silentLogger });
    assert.equal(reg.key, '/service/demo/proxies/127.0.0.1_6432');
    const kv = await store.get(reg.key);
    assert.deepEqual(JSON.parse(kv?.value ?? '{}'), record);
    assert.notEqual(kv?.lease, '0');
    await reg.stop();
    assert.equal(await store.get(reg.key), undefined);
  });

  it('is written again with a new lease when the old one expired (a DCS outage longer than the TTL)', async () => {
    let now = 0;
    await using store = new MemoryStore({ now: () => now });
    const reg = await registerProxy({
      store,
      scope: 'demo',
      namespace: 'service',
      record,
      log: silentLogger,
      ttlSeconds: 3, // renewed every second
    });
    const first = (await store.get(reg.key))?.lease;
    now += 4000;
    store.expireLeases();
    assert.equal(await store.get(reg.key), undefined);
    await sleep(1300);
    const again = await store.get(reg.key);
    assert.ok(again, 'the key is back');
    assert.notEqual(again.lease, first);
    await reg.stop();
    assert.equal(await store.get(reg.key), undefined);
  });
});
