import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addWaits,
  emptyWaits,
  WAIT_BOUNDS_US,
  WAIT_BUCKETS,
  waitBucket,
  WaitHistogram,
  waitQuantileMs,
  waitsSince,
} from './wait-histogram.js';

describe('wait histogram: buckets', () => {
  it('has log2 bounds from 16 µs to 2^27 µs and a +Inf bucket', () => {
    assert.equal(WAIT_BOUNDS_US[0], 16);
    assert.equal(WAIT_BOUNDS_US[1], 32);
    assert.equal(WAIT_BOUNDS_US[WAIT_BOUNDS_US.length - 1], 2 ** 27);
    assert.equal(WAIT_BUCKETS, WAIT_BOUNDS_US.length + 1);
  });

  it('puts each wait in the first bucket whose upper bound holds it (bounds inclusive)', () => {
    const cases: [number, number][] = [
      [0, 0],
      [-5, 0],
      [Number.NaN, 0],
      [1, 0],
      [16, 0],
      [17, 1],
      [32, 1],
      [33, 2],
      [1000, 6], // (512, 1024]
      [1024, 6],
      [1025, 7],
      [2 ** 27, WAIT_BUCKETS - 2],
      [2 ** 27 + 1, WAIT_BUCKETS - 1],
      [1e12, WAIT_BUCKETS - 1],
    ];
    for (const [us, b] of cases) {
      assert.equal(waitBucket(us), b, `${us} µs`);
      const upper = WAIT_BOUNDS_US[b];
      if (us > 0 && upper !== undefined) assert.ok(us <= upper, `${us} ≤ ${upper}`);
      const lower = b === 0 ? 0 : (WAIT_BOUNDS_US[b - 1] as number);
      if (us > 0) assert.ok(us > lower, `${us} > ${lower}`);
    }
  });

  it('counts, sums and snapshots without sharing its arrays', () => {
    const h = new WaitHistogram();
    h.record(0);
    h.record(20);
    h.record(3000);
    const s = h.snapshot();
    assert.equal(s.count, 3);
    assert.equal(s.sumUs, 3020);
    assert.equal(s.counts.length, WAIT_BUCKETS);
    assert.equal(s.counts[0], 1);
    assert.equal(s.counts[1], 1);
    assert.equal(s.counts[8], 1); // (2048, 4096]
    h.record(0);
    assert.equal(s.counts[0], 1, 'a snapshot is a copy');
  });
});

describe('wait histogram: quantiles', () => {
  const hist = (...waits: number[]) => {
    const h = new WaitHistogram();
    for (const w of waits) h.record(w);
    return h.snapshot();
  };

  it('is 0 when nothing was recorded', () => {
    assert.equal(waitQuantileMs(emptyWaits(), 0.99), 0);
  });

  it('interpolates linearly inside the bucket, as histogram_quantile does', () => {
    // 100 waits, all in (1024, 2048] µs: the p50 is halfway through the bucket.
    const w = hist(...new Array<number>(100).fill(1500));
    assert.equal(waitQuantileMs(w, 0.5), (1024 + 512) / 1000);
    assert.equal(waitQuantileMs(w, 1), 2.048);
  });

  it('puts p99 in the slow tail when 1 % of the waits are slow', () => {
    const w = hist(...new Array<number>(98).fill(0), 5000, 5000);
    const p99 = waitQuantileMs(w, 0.99);
    assert.ok(p99 > 4.096 && p99 <= 8.192, `p99 ${p99} ms in (4.096, 8.192]`);
    assert.ok(waitQuantileMs(w, 0.5) <= 0.016, 'the median is in the first bucket');
  });

  it('caps a quantile in the +Inf bucket at the largest finite bound', () => {
    assert.equal(waitQuantileMs(hist(300e6), 0.99), 2 ** 27 / 1000);
  });

  it('adds and subtracts snapshots bucket by bucket', () => {
    const a = hist(0, 100);
    const b = hist(100, 1e6);
    const sum = addWaits(a, b);
    assert.equal(sum.count, 4);
    assert.equal(sum.sumUs, 1_000_200);
    assert.equal(sum.counts[waitBucket(100)], 2);
    const since = waitsSince(sum, a);
    assert.deepEqual(since, b);
  });
});
