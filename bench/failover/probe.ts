/**
 * The client side of the benchmark: one INSERT every 20 ms through HAProxy's read-write port, reconnecting after
 * any error, every acknowledged id recorded with the time its INSERT returned.
 *
 * Not test/helpers/scenario.ts `WriteProbe`: that one picks a writable member itself (the client path would differ
 * between systems) and keeps no timestamps, which are the whole point here. The loop is otherwise the same: an id
 * whose INSERT failed is never reused (it may or may not have been committed), a failed connect counts as a failed
 * attempt, and the probe sleeps `intervalMs` after every attempt.
 */
import pg from 'pg';
import { sleep } from '../../src/lib/proc.js';

export const PROBE_TABLE = 'failover_probe';
export const PROBE_DDL = `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (trial text NOT NULL, id int NOT NULL, PRIMARY KEY (trial, id))`;

/** Monotonic milliseconds; every time in a trial is measured with this clock. */
export const now = (): number => performance.now();

export interface Ack {
  readonly id: number;
  readonly at: number;
}

export interface ProbeTarget {
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export class HaproxyProbe {
  readonly acks: Ack[] = [];
  /** Times of failed attempts (connect or INSERT). */
  readonly failures: number[] = [];
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(
    private readonly target: ProbeTarget,
    /** Rows are keyed by trial, so one table serves every trial of a cluster. */
    readonly trial: string,
    private readonly intervalMs = 20,
  ) {}

  start(maxMs: number): void {
    this.done = this.loop(now() + maxMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /**
   * Writes are flowing: over the last `ms`, no failed attempt, an ack near both ends of the window and no gap
   * between two acks longer than 500 ms (25 missed writes).
   */
  flowing(ms: number): boolean {
    const t = now();
    const from = t - ms;
    const lastFailure = this.failures.at(-1);
    if (lastFailure !== undefined && lastFailure >= from) return false;
    let prev = from;
    for (let i = this.firstAckAfter(from); i < this.acks.length; i++) {
      const at = (this.acks[i] as Ack).at;
      if (at - prev > 500) return false;
      prev = at;
    }
    return t - prev <= 500;
  }

  /**
   * The longest write outage around a fault at `faultAt`: the largest gap between two consecutive acks where the
   * later one came after the fault (so the gap from the last ack before the fault counts). Null when no write was
   * acknowledged after the fault.
   */
  outageMs(faultAt: number): number | null {
    const i = this.firstAckAfter(faultAt);
    if (i >= this.acks.length) return null;
    let worst = 0;
    for (let k = Math.max(1, i); k < this.acks.length; k++) {
      worst = Math.max(worst, (this.acks[k] as Ack).at - (this.acks[k - 1] as Ack).at);
    }
    return worst;
  }

  private firstAckAfter(t: number): number {
    let lo = 0;
    let hi = this.acks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.acks[mid] as Ack).at < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: this.target.port,
      user: this.target.user,
      password: this.target.password,
      database: 'postgres',
      connectionTimeoutMillis: 2000,
      query_timeout: 5000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
  }

  private async loop(deadline: number): Promise<void> {
    let id = 0;
    let client: pg.Client | null = null;
    while (!this.stopped && now() < deadline) {
      id++;
      try {
        client ??= await this.connect();
        await client.query(`INSERT INTO ${PROBE_TABLE} (trial, id) VALUES ($1, $2)`, [this.trial, id]);
        this.acks.push({ id, at: now() });
      } catch {
        this.failures.push(now());
        await client?.end().catch(() => {});
        client = null;
      }
      await sleep(this.intervalMs);
    }
    await client?.end().catch(() => {});
  }
}
