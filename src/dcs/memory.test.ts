import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as flush } from 'node:timers/promises';
import { MemoryStore } from './memory.js';
import { storeContract } from './store.contract.js';
import { StoreError, type WatchEvent } from './store.js';

function fakeClock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

storeContract('MemoryStore', async () => {
  const clock = fakeClock();
  const store = new MemoryStore({ now: clock.now });
  return {
    store,
    async advance(ms: number) {
      clock.advance(ms);
      store.expireLeases();
      await flush(); // lets queued watch deliveries run
    },
    async [Symbol.asyncDispose]() {
      await store.close();
    },
  };
});

function watchRecorder(): {
  events: WatchEvent[];
  errors: Error[];
  onEvents(e: readonly WatchEvent[]): void;
  onError(e: Error): void;
} {
  const r = {
    events: [] as WatchEvent[],
    errors: [] as Error[],
    onEvents: (e: readonly WatchEvent[]) => void r.events.push(...e),
    onError: (e: Error) => void r.errors.push(e),
  };
  return r;
}

describe('MemoryStore specifics', () => {
  it('expires a lease exactly at its deadline by the injected clock', async () => {
    const clock = fakeClock();
    await using store = new MemoryStore({ now: clock.now });
    const lease = await store.grantLease(10);
    await store.put('/k', 'v', { lease });
    clock.advance(9_999);
    assert.equal((await store.get('/k'))?.value, 'v');
    clock.advance(1);
    assert.equal(await store.get('/k'), undefined);
  });

  it('delivers watch events after the write returns, never inside it', async () => {
    await using store = new MemoryStore({ now: fakeClock().now });
    const rec = watchRecorder();
    const w = store.watchPrefix('/', store.revision + 1, rec);
    const put = store.put('/a', '1');
    const during = rec.events.length;
    await put;
    await flush();
    assert.equal(during, 0);
    assert.equal(rec.events.length, 1);
    await w.close();
  });

  it('ends a watch from a compacted revision with exactly one onError and no events', async () => {
    await using store = new MemoryStore({ now: fakeClock().now });
    await store.put('/a', '1');
    const from = store.revision;
    await store.put('/a', '2');
    store.compact(store.revision);
    const rec = watchRecorder();
    store.watchPrefix('/', from, rec);
    await store.put('/a', '3');
    await flush();
    assert.equal(rec.errors.length, 1);
    assert.ok(rec.errors[0] instanceof StoreError && rec.errors[0].code === 'DCS_REQUEST');
    assert.deepEqual(rec.events, []);
  });

  it('keeps only historyLimit revisions for watches', async () => {
    await using store = new MemoryStore({ now: fakeClock().now, historyLimit: 2 });
    for (let i = 0; i < 5; i++) await store.put('/a', String(i));
    const rec = watchRecorder();
    store.watchPrefix('/', store.revision - 2, rec);
    await flush();
    assert.equal(rec.errors.length, 1);
    const ok = watchRecorder();
    store.watchPrefix('/', store.revision - 1, ok);
    await flush();
    assert.deepEqual(
      ok.events.map((e) => (e.type === 'put' ? e.kv.value : '')),
      ['3', '4'],
    );
  });

  it('setUnavailable rejects calls with DCS_UNAVAILABLE and breaks open watches once', async () => {
    await using store = new MemoryStore({ now: fakeClock().now });
    const rec = watchRecorder();
    store.watchPrefix('/', 1, rec);
    store.setUnavailable(true);
    await assert.rejects(store.get('/a'), (e: unknown) => e instanceof StoreError && e.code === 'DCS_UNAVAILABLE');
    store.setUnavailable(true);
    await flush();
    assert.equal(rec.errors.length, 1);
    store.setUnavailable(false);
    await store.put('/a', '1');
    await flush();
    assert.deepEqual(rec.events, [], 'a broken watch stays broken');
  });
});
