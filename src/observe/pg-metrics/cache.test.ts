import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SingleFlight, within } from './cache.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test('concurrent callers share one load; a second load starts only after the period', async () => {
  let t = 1000;
  let loads = 0;
  const c = new SingleFlight(
    async () => ++loads,
    5000,
    () => t,
  );
  const got = await Promise.all(Array.from({ length: 20 }, () => c.get()));
  assert.deepEqual(new Set(got), new Set([1]));
  assert.equal(loads, 1);
  t += 4999;
  assert.equal(await c.get(), 1);
  t += 1;
  assert.equal(await c.get(), 2);
  assert.equal(loads, 2);
});

test('a load still running past the period is shared, never doubled', async () => {
  let t = 0;
  let loads = 0;
  const d = deferred<string>();
  const c = new SingleFlight(
    () => {
      loads++;
      return d.promise;
    },
    1000,
    () => t,
  );
  const first = c.get();
  t = 10_000;
  const second = c.get();
  assert.equal(loads, 1);
  d.resolve('slow');
  assert.equal(await first, 'slow');
  assert.equal(await second, 'slow');
  await Promise.resolve();
  assert.equal(await c.get(), 'slow', 'the finished load is cached from its start, which is over a period ago...');
  assert.equal(loads, 2, '...so a new load was started');
});

test('within: the value when it comes in time, the fallback when it does not (without losing the value)', async () => {
  assert.equal(await within(Promise.resolve(7), 1000, () => 0), 7);
  const d = deferred<number>();
  assert.equal(await within(d.promise, 5, () => -1), -1);
  d.resolve(3);
  assert.equal(await d.promise, 3);
});
