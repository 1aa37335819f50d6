import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../dcs/memory.js';
import { StoreError } from '../dcs/store.js';
import { DrillHooks } from './drill.js';

function setup() {
  let t = 1_000_000;
  const now = () => t;
  const inner = new MemoryStore({ now });
  const hooks = new DrillHooks(now);
  return { inner, hooks, store: hooks.wrap(inner), advance: (ms: number) => void (t += ms) };
}

const unavailable = (e: unknown) =>
  e instanceof StoreError && e.code === 'DCS_UNAVAILABLE' && /isolated from the DCS \(\d+ s left\)/.test(e.message);

describe('DrillHooks', () => {
  it('passes every call through when no drill runs', async () => {
    const { store, hooks } = setup();
    await store.put('/k', 'v');
    assert.equal((await store.get('/k'))?.value, 'v');
    assert.equal(hooks.active(), null);
  });

  it('isolate: every call fails as DCS_UNAVAILABLE until the window ends, then works again', async () => {
    const { store, inner, hooks, advance } = setup();
    const lease = await store.grantLease(10);
    await store.put('/k', 'v');
    hooks.isolate(5);
    assert.deepEqual(hooks.active(), { fault: 'isolate', until: 1_000_000 + 5000 });
    await assert.rejects(store.get('/k'), unavailable);
    await assert.rejects(store.getPrefix('/'), unavailable);
    await assert.rejects(store.put('/k', 'w'), unavailable);
    await assert.rejects(store.compareAndPut('/k', 'w', { value: 'v' }), unavailable);
    await assert.rejects(store.keepAlive(lease), unavailable);
    assert.equal((await inner.get('/k'))?.value, 'v', 'nothing reached the store');
    advance(5000);
    assert.equal(hooks.active(), null);
    await store.put('/k', 'w');
    assert.equal((await inner.get('/k'))?.value, 'w');
  });

  it('isolate ends open watches with an error, and a watch started meanwhile ends at once', async () => {
    const { store, inner, hooks, advance } = setup();
    const errors: Error[] = [];
    const seen: string[] = [];
    store.watchPrefix('/', 1, {
      onEvents: (evs) => seen.push(...evs.map((e) => (e.type === 'put' ? e.kv.key : e.key))),
      onError: (e) => errors.push(e),
    });
    await inner.put('/a', '1');
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, ['/a']);
    hooks.isolate(3);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(errors.length, 1);
    assert.ok(unavailable(errors[0]));
    await inner.put('/b', '2');
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, ['/a'], 'no event after the watch ended');
    store.watchPrefix('/', 1, {
      onEvents: () => assert.fail('no events while isolated'),
      onError: (e) => errors.push(e),
    });
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(errors.length, 2);
    advance(3000);
    const later: string[] = [];
    store.watchPrefix('/', 1, {
      onEvents: (evs) => later.push(...evs.map((e) => e.type)),
      onError: (e) => errors.push(e),
    });
    await new Promise((r) => setTimeout(r, 5));
    assert.ok(later.length >= 2, 'a watch after the window replays history');
  });

  it('crash: a window of its own, reported as the active fault', () => {
    const { hooks, advance } = setup();
    hooks.crash(2);
    assert.equal(hooks.crashed(), true);
    assert.equal(hooks.isolated(), false);
    assert.equal(hooks.active()?.fault, 'crash');
    advance(2000);
    assert.equal(hooks.crashed(), false);
  });
});
