/**
 * How long clients waited for a server connection, per pool: a fixed log2 histogram of microseconds, cheap enough
 * for the hot path (one `record` per server assignment: a clz32, an index, three additions; nothing allocated).
 *
 * Buckets: bucket 0 holds waits ≤ 16 µs (assignments that found an idle server record 0), bucket k holds waits in
 * (2^(k+3), 2^(k+4)] µs up to 2^27 µs (134 s, beyond query_wait_timeout's default of 120 s), and the last bucket
 * holds everything longer (+Inf). /metrics exposes them as the Prometheus histogram pgkeel_proxy_pool_wait_seconds;
 * /stats turns the counts of the last stats period into p99_wait_ms (`waitQuantileMs`).
 */

const FIRST_LOG2 = 4;
const LAST_LOG2 = 27;

/** Upper bounds of the finite buckets, microseconds: 16, 32, …, 2^27. The +Inf bucket follows them. */
export const WAIT_BOUNDS_US: readonly number[] = Array.from(
  { length: LAST_LOG2 - FIRST_LOG2 + 1 },
  (_, k) => 2 ** (k + FIRST_LOG2),
);

/** Finite buckets plus the +Inf bucket. */
export const WAIT_BUCKETS = WAIT_BOUNDS_US.length + 1;

/** A plain copy of a histogram (crosses worker IPC as JSON). `counts` are per bucket, not cumulative. */
export interface WaitCounts {
  readonly counts: readonly number[];
  readonly sumUs: number;
  readonly count: number;
}

/** The bucket a wait of `us` microseconds falls in (integer microseconds; negative and NaN count as 0). */
export function waitBucket(us: number): number {
  if (!(us > 2 ** FIRST_LOG2)) return 0;
  if (us > 2 ** LAST_LOG2) return WAIT_BUCKETS - 1;
  // ceil(log2(us)) for an integer us ≥ 2: the bit length of us - 1.
  return 32 - Math.clz32(Math.ceil(us) - 1) - FIRST_LOG2;
}

export class WaitHistogram {
  readonly counts = new Float64Array(WAIT_BUCKETS);
  sumUs = 0;
  count = 0;

  record(us: number): void {
    const i = waitBucket(us);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sumUs += us;
    this.count++;
  }

  snapshot(): WaitCounts {
    return { counts: Array.from(this.counts), sumUs: this.sumUs, count: this.count };
  }
}

export function emptyWaits(): WaitCounts {
  return { counts: new Array<number>(WAIT_BUCKETS).fill(0), sumUs: 0, count: 0 };
}

export function addWaits(a: WaitCounts, b: WaitCounts): WaitCounts {
  return {
    counts: a.counts.map((n, i) => n + (b.counts[i] ?? 0)),
    sumUs: a.sumUs + b.sumUs,
    count: a.count + b.count,
  };
}

/** The waits recorded since `prev` (a snapshot of the same histogram taken earlier). */
export function waitsSince(cur: WaitCounts, prev: WaitCounts): WaitCounts {
  return {
    counts: cur.counts.map((n, i) => Math.max(0, n - (prev.counts[i] ?? 0))),
    sumUs: Math.max(0, cur.sumUs - prev.sumUs),
    count: Math.max(0, cur.count - prev.count),
  };
}

/**
 * The q-quantile (0 < q ≤ 1) in milliseconds, interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does; a quantile in the +Inf bucket is the largest finite bound. 0 when nothing was recorded.
 */
export function waitQuantileMs(w: WaitCounts, q: number): number {
  const total = w.counts.reduce((s, n) => s + n, 0);
  if (total === 0) return 0;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < w.counts.length; i++) {
    const n = w.counts[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      const upper = WAIT_BOUNDS_US[i];
      if (upper === undefined) return (WAIT_BOUNDS_US[WAIT_BOUNDS_US.length - 1] as number) / 1000;
      const lower = i === 0 ? 0 : (WAIT_BOUNDS_US[i - 1] as number);
      return (lower + ((upper - lower) * (rank - below)) / n) / 1000;
    }
    below += n;
  }
  return (WAIT_BOUNDS_US[WAIT_BOUNDS_US.length - 1] as number) / 1000;
}
