/**
 * The one test suite every Store implementation passes (see the contract in `store.ts`). Implementations register
 * it from their own test file with a factory; `advance(ms)` moves the store's time (a fake clock for MemoryStore, a
 * real sleep for etcd), so lease tests use TTLs of 2 s and margins that hold for etcd's expiry granularity (~0.5 s).
 *
 * Tests share nothing but the store: each works under its own key prefix, so a real etcd can serve them all.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyValue, Store, WatchEvent } from './store.js';
import { StoreError } from './store.js';
import { eventually, watchRecorder } from '../../test/helpers/wait.js';

export interface StoreHarness {
  readonly store: Store;
  /** Lets `ms` of the store's time pass. */
  advance(ms: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const TTL_S = 2;
/** How long after its TTL an expired lease's keys are surely gone (etcd checks expiry every 500 ms). */
const EXPIRY_SLACK_MS = 1500;

let prefixes = 0;
function freshPrefix(): string {
  return `/pgkeel-contract/${process.pid}-${++prefixes}/`;
}

async function rejectsWith(p: Promise<unknown>, code: StoreError['code']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

function describeEvent(e: WatchEvent): string {
  return e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : `delete ${e.key}`;
}

async function mustGet(store: Store, key: string): Promise<KeyValue> {
  const kv = await store.get(key);
  assert.ok(kv, `expected ${key} to exist`);
  return kv;
}

export function storeContract(name: string, make: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    it('get returns undefined for a missing key and what put wrote, with revisions', async () => {
      await using h = await make();
      const p = freshPrefix();
      assert.equal(await h.store.get(`${p}a`), undefined);
      await h.store.put(`${p}a`, 'one');
      const first = await mustGet(h.store, `${p}a`);
      assert.deepEqual(
        { key: first.key, value: first.value, lease: first.lease },
        { key: `${p}a`, value: 'one', lease: '0' },
      );
      assert.ok(first.modRevision > 0);
      assert.equal(first.createRevision, first.modRevision);
      await h.store.put(`${p}a`, 'two');
      const second = await mustGet(h.store, `${p}a`);
      assert.equal(second.value, 'two');
      assert.equal(second.createRevision, first.createRevision);
      assert.ok(second.modRevision > first.modRevision);
    });

    it('keeps UTF-8 keys and values intact', async () => {
      await using h = await make();
      const key = `${freshPrefix()}ключ/ü`;
      await h.store.put(key, 'värde ✓ {"a":"}"}\n');
      assert.equal((await mustGet(h.store, key)).value, 'värde ✓ {"a":"}"}\n');
    });

    it('getPrefix returns only keys under the prefix, in key order, at a revision covering them', async () => {
      await using h = await make();
      const p = freshPrefix();
      const outside = `${p.slice(0, -1)}x`; // shares the prefix minus its slash
      for (const k of ['b', 'a/2', 'c', 'a/1']) await h.store.put(`${p}${k}`, k);
      await h.store.put(outside, 'outside');
      const snap = await h.store.getPrefix(p);
      assert.deepEqual(
        snap.kvs.map((kv) => kv.key),
        ['a/1', 'a/2', 'b', 'c'].map((k) => `${p}${k}`),
      );
      assert.deepEqual(
        snap.kvs.map((kv) => kv.value),
        ['a/1', 'a/2', 'b', 'c'],
      );
      const [a1, a2, b, c] = snap.kvs.map((kv) => kv.modRevision) as [number, number, number, number];
      // Written b, a/2, c, a/1: every write to any key moves the store revision on.
      assert.ok(b < a2 && a2 < c && c < a1, `write order: b=${b} a/2=${a2} c=${c} a/1=${a1}`);
      assert.ok(snap.revision > a1, 'the outside write came later and is covered by the snapshot revision');
      assert.deepEqual((await h.store.getPrefix(`${p}nothing/`)).kvs, []);
    });

    it('create writes only when the key is absent', async () => {
      await using h = await make();
      const key = `${freshPrefix()}leader`;
      assert.equal(await h.store.create(key, 'node1'), true);
      assert.equal(await h.store.create(key, 'node2'), false);
      assert.equal((await mustGet(h.store, key)).value, 'node1');
    });

    it('compareAndPut on value', async () => {
      await using h = await make();
      const key = `${freshPrefix()}k`;
      assert.equal(
        await h.store.compareAndPut(key, 'x', { value: '' }),
        false,
        'a value comparison on a missing key fails',
      );
      assert.equal(await h.store.get(key), undefined);
      await h.store.put(key, 'a');
      assert.equal(await h.store.compareAndPut(key, 'b', { value: 'wrong' }), false);
      assert.equal((await mustGet(h.store, key)).value, 'a');
      assert.equal(await h.store.compareAndPut(key, 'b', { value: 'a' }), true);
      assert.equal((await mustGet(h.store, key)).value, 'b');
    });

    it('compareAndPut on modRevision', async () => {
      await using h = await make();
      const key = `${freshPrefix()}k`;
      await h.store.put(key, 'a');
      const stale = (await mustGet(h.store, key)).modRevision;
      await h.store.put(key, 'b');
      const current = (await mustGet(h.store, key)).modRevision;
      assert.equal(await h.store.compareAndPut(key, 'c', { modRevision: stale }), false);
      assert.equal((await mustGet(h.store, key)).value, 'b');
      assert.equal(
        await h.store.compareAndPut(key, 'c', { value: 'b', modRevision: stale }),
        false,
        'every given field must hold',
      );
      assert.equal(await h.store.compareAndPut(key, 'c', { value: 'b', modRevision: current }), true);
      const after = await mustGet(h.store, key);
      assert.equal(after.value, 'c');
      assert.ok(after.modRevision > current);
    });

    it('compareAndPut on exists', async () => {
      await using h = await make();
      const key = `${freshPrefix()}k`;
      assert.equal(await h.store.compareAndPut(key, 'a', { exists: true }), false);
      assert.equal(await h.store.get(key), undefined);
      assert.equal(await h.store.compareAndPut(key, 'a', { exists: false }), true);
      assert.equal(await h.store.compareAndPut(key, 'b', { exists: false }), false);
      assert.equal((await mustGet(h.store, key)).value, 'a');
      assert.equal(await h.store.compareAndPut(key, 'b', { exists: true }), true);
      assert.equal((await mustGet(h.store, key)).value, 'b');
    });

    it('delete and compareAndDelete', async () => {
      await using h = await make();
      const key = `${freshPrefix()}k`;
      assert.equal(await h.store.delete(key), false);
      await h.store.put(key, 'a');
      const rev = (await mustGet(h.store, key)).modRevision;
      assert.equal(await h.store.compareAndDelete(key, { value: 'b' }), false);
      assert.equal(await h.store.compareAndDelete(key, { modRevision: rev + 1 }), false);
      assert.equal((await mustGet(h.store, key)).value, 'a');
      assert.equal(await h.store.compareAndDelete(key, { value: 'a', modRevision: rev }), true);
      assert.equal(await h.store.get(key), undefined);
      await h.store.put(key, 'again');
      assert.equal(await h.store.delete(key), true);
      assert.equal(await h.store.get(key), undefined);
    });

    it('deletePrefix deletes only under the prefix and counts', async () => {
      await using h = await make();
      const p = freshPrefix();
      const outside = `${p.slice(0, -1)}x`;
      for (const k of ['a', 'b/c', 'd']) await h.store.put(`${p}${k}`, k);
      await h.store.put(outside, 'stays');
      assert.equal(await h.store.deletePrefix(p), 3);
      assert.deepEqual((await h.store.getPrefix(p)).kvs, []);
      assert.equal((await mustGet(h.store, outside)).value, 'stays');
      assert.equal(await h.store.deletePrefix(p), 0);
    });

    it('refuses a put with an unknown lease (DCS_REQUEST) and changes nothing', async () => {
      await using h = await make();
      const key = `${freshPrefix()}k`;
      const lease = await h.store.grantLease(TTL_S);
      await h.store.revokeLease(lease);
      await rejectsWith(h.store.put(key, 'v', { lease }), 'DCS_REQUEST');
      assert.equal(await h.store.get(key), undefined);
    });

    describe('leases', { concurrency: true }, () => {
      it('a key written with a lease vanishes after expiry, and watchers see the delete', async () => {
        await using h = await make();
        const p = freshPrefix();
        const lease = await h.store.grantLease(TTL_S);
        assert.notEqual(lease, '0');
        assert.equal(await h.store.create(`${p}leader`, 'node1', { lease }), true);
        await h.store.put(`${p}member`, 'node1', { lease });
        await h.store.put(`${p}config`, '{}');
        const leader = await mustGet(h.store, `${p}leader`);
        assert.equal(leader.lease, lease);
        const rec = watchRecorder();
        const watch = h.store.watchPrefix(p, leader.modRevision + 1, rec);
        try {
          await h.advance(TTL_S * 1000 + EXPIRY_SLACK_MS);
          assert.equal(await h.store.get(`${p}leader`), undefined);
          assert.equal(await h.store.get(`${p}member`), undefined);
          assert.equal((await mustGet(h.store, `${p}config`)).value, '{}', 'keys without the lease stay');
          assert.equal(await h.store.keepAlive(lease), false, 'an expired lease cannot be renewed');
          await eventually('the expiry deletes', () => rec.events.length >= 4);
          const seen = rec.events.map(describeEvent);
          assert.deepEqual(seen.slice(0, 2), [`put ${p}member=node1`, `put ${p}config={}`]);
          assert.deepEqual(seen.slice(2).sort(), [`delete ${p}leader`, `delete ${p}member`]);
          assert.deepEqual(rec.errors, []);
        } finally {
          await watch.close();
        }
      });

      it('keepAlive extends a lease past its first deadline', async () => {
        await using h = await make();
        const key = `${freshPrefix()}leader`;
        const lease = await h.store.grantLease(TTL_S);
        await h.store.put(key, 'node1', { lease });
        await h.advance(TTL_S * 1000 * 0.8);
        assert.equal(await h.store.keepAlive(lease), true);
        await h.advance(TTL_S * 1000 * 0.8); // 1.6 × TTL after the grant
        assert.equal((await mustGet(h.store, key)).value, 'node1');
        assert.equal(await h.store.keepAlive(lease), true);
        await h.store.revokeLease(lease);
      });

      it('revoke deletes the keys at once; keepAlive then says false; revoking again is harmless', async () => {
        await using h = await make();
        const p = freshPrefix();
        const lease = await h.store.grantLease(TTL_S);
        await h.store.put(`${p}a`, '1', { lease });
        await h.store.put(`${p}b`, '2', { lease });
        const before = (await h.store.getPrefix(p)).revision;
        await h.store.revokeLease(lease);
        const snap = await h.store.getPrefix(p);
        assert.deepEqual(snap.kvs, []);
        assert.ok(snap.revision > before);
        assert.equal(await h.store.keepAlive(lease), false);
        await h.store.revokeLease(lease);
      });

      it('a put without a lease detaches the key from its lease', async () => {
        await using h = await make();
        const key = `${freshPrefix()}k`;
        const lease = await h.store.grantLease(TTL_S);
        await h.store.put(key, 'leased', { lease });
        await h.store.put(key, 'plain');
        assert.equal((await mustGet(h.store, key)).lease, '0');
        await h.store.revokeLease(lease);
        assert.equal((await mustGet(h.store, key)).value, 'plain');
      });
    });

    it('watch replays from a revision, follows live changes in order, and stops after close', async () => {
      await using h = await make();
      const p = freshPrefix();
      await h.store.put(`${p}a`, '1');
      const from = (await mustGet(h.store, `${p}a`)).modRevision;
      await h.store.put(`${p.slice(0, -1)}x`, 'outside');
      await h.store.put(`${p}b`, '2');
      await h.store.delete(`${p}a`);
      const rec = watchRecorder();
      const watch = h.store.watchPrefix(p, from, rec);
      const later = watchRecorder();
      let laterWatch: { close(): Promise<void> } | undefined;
      try {
        await eventually('the replayed events', () => rec.events.length >= 3);
        await h.store.put(`${p}c`, '3');
        await eventually('the live event', () => rec.events.length >= 4);
        assert.deepEqual(rec.events.map(describeEvent), [`put ${p}a=1`, `put ${p}b=2`, `delete ${p}a`, `put ${p}c=3`]);
        const mods = rec.events.map((e) => (e.type === 'put' ? e.kv.modRevision : e.modRevision));
        assert.equal(mods[0], from);
        assert.ok(
          mods.every((m, i) => i === 0 || m > (mods[i - 1] as number)),
          `increasing: ${mods.join(',')}`,
        );
        assert.ok((rec.revisions.at(-1) as number) >= (mods[3] as number));
        await watch.close();

        // A second watch proves the next write was delivered; the closed one must not have seen it.
        const now = (await h.store.getPrefix(p)).revision;
        laterWatch = h.store.watchPrefix(p, now + 1, later);
        await h.store.put(`${p}d`, '4');
        await eventually('the second watch', () => later.events.length >= 1);
        assert.deepEqual(later.events.map(describeEvent), [`put ${p}d=4`]);
        assert.equal(rec.events.length, 4);
        assert.deepEqual([...rec.errors, ...later.errors], []);
      } finally {
        await watch.close();
        await laterWatch?.close();
      }
    });

    it('a closed store rejects every call with DCS_CLOSED and ends new watches with onError', async () => {
      await using h = await make();
      const key = `${freshPrefix()}k`;
      await h.store.put(key, 'v');
      await h.store.close();
      await h.store.close();
      await rejectsWith(h.store.get(key), 'DCS_CLOSED');
      await rejectsWith(h.store.getPrefix(key), 'DCS_CLOSED');
      await rejectsWith(h.store.put(key, 'w'), 'DCS_CLOSED');
      await rejectsWith(h.store.create(key, 'w'), 'DCS_CLOSED');
      await rejectsWith(h.store.compareAndPut(key, 'w', { value: 'v' }), 'DCS_CLOSED');
      await rejectsWith(h.store.delete(key), 'DCS_CLOSED');
      await rejectsWith(h.store.compareAndDelete(key, {}), 'DCS_CLOSED');
      await rejectsWith(h.store.deletePrefix(key), 'DCS_CLOSED');
      await rejectsWith(h.store.grantLease(TTL_S), 'DCS_CLOSED');
      await rejectsWith(h.store.keepAlive('1'), 'DCS_CLOSED');
      await rejectsWith(h.store.revokeLease('1'), 'DCS_CLOSED');
      const rec = watchRecorder();
      h.store.watchPrefix(key, 1, rec);
      await eventually('onError', () => rec.errors.length > 0);
      assert.ok(rec.errors[0] instanceof StoreError && rec.errors[0].code === 'DCS_CLOSED');
      assert.equal(rec.errors.length, 1);
    });
  });
}
