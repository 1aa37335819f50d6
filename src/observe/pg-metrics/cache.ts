/**
 * A single-flight cache for one value: within `periodMs` of the last load's start every caller gets that load's
 * result; past it, the first caller starts one new load and every caller meanwhile awaits that same promise. So any
 * number of concurrent scrapers cause at most one load per period. `load` must not reject (it returns its failure
 * as a value, so a failure is cached like a success). `now` is injected for tests.
 */
export class SingleFlight<T> {
  private value: { at: number; promise: Promise<T> } | null = null;

  constructor(
    private readonly load: () => Promise<T>,
    private readonly periodMs: number,
    private readonly now: () => number,
  ) {}

  get(): Promise<T> {
    const t = this.now();
    const v = this.value;
    // A load still running is shared however old it is: a slow PostgreSQL never gets a second concurrent round.
    if (v && (t - v.at < this.periodMs || !this.settled.has(v.promise))) return v.promise;
    const promise = this.load().finally(() => this.settled.add(promise));
    this.value = { at: t, promise };
    return promise;
  }

  /** Settled promises (weakly held: a replaced one is collected with its value). */
  private readonly settled = new WeakSet<Promise<T>>();
}

/** `p`'s value, or `fallback()` when it does not settle within `ms` (p keeps running; its result is not lost). */
export async function within<T>(p: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback()), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
