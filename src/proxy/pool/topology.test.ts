import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterKeys } from '../../dcs/layout.js';
import { MemoryStore } from '../../dcs/memory.js';
import type { Store, WatchHandle } from '../../dcs/store.js';
import { silentLogger } from '../../lib/log.js';
import { sleep } from '../../lib/proc.js';
import { DcsTopologySource } from './topology.js';

const keys = clusterKeys('demo');
const member = (name: string, port: number, role: string) =>
  JSON.stringify({ conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: '', state: 'running', role });

/** The store, except that its first `silent` watches never deliver anything (their etcd member vanished). */
function withSilentWatches(inner: MemoryStore, silent: number): { store: Store; watches: () => number } {
  let n = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'watchPrefix')
        return (...args: Parameters<Store['watchPrefix']>): WatchHandle => {
          n++;
          return n <= silent ? { close: async () => {} } : target.watchPrefix(...args);
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Store;
  return { store, watches: () => n };
}

describe('DcsTopologySource', () => {
  it('notices a silent watch by the leader key and follows the new leader', async () => {
    const mem = new MemoryStore({ now: () => Date.now() });
    await mem.put(keys.member('a'), member('a', 5001, 'primary'));
    await mem.put(keys.member('b'), member('b', 5002, 'replica'));
    await mem.put(keys.leader, 'a');
    const { store, watches } = withSilentWatches(mem, 1);
    const src = new DcsTopologySource(store, 'demo', 'service', silentLogger);
    const leader = (): string | undefined => src.current.leader?.name;
    try {
      await src.start(() => {});
      assert.equal(leader(), 'a');
      await mem.put(keys.member('b'), member('b', 5002, 'primary'));
      await mem.put(keys.member('a'), member('a', 5001, 'replica'));
      await mem.put(keys.leader, 'b');
      for (let i = 0; i < 50 && leader() !== 'b'; i++) await sleep(100);
      assert.equal(leader(), 'b', 'the new leader is followed although the first watch is silent');
      assert.equal(watches(), 2, 'the silent watch was replaced once');
      // The replacement watch delivers: a later change arrives without another replacement.
      await mem.put(keys.member('a'), member('a', 5001, 'primary'));
      await mem.put(keys.member('b'), member('b', 5002, 'replica'));
      await mem.put(keys.leader, 'a');
      for (let i = 0; i < 30 && leader() !== 'a'; i++) await sleep(50);
      assert.equal(leader(), 'a');
      assert.equal(watches(), 2);
    } finally {
      await src.close();
      await mem[Symbol.asyncDispose]();
    }
  });
});
