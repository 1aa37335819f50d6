/**
 * What clients would see during a fault, measured from the root namespace:
 * - `SplitBrainChecker` writes to every node directly every 100 ms (a row naming the node) and records which nodes
 *   acknowledged a write in each round; a round in which two nodes acknowledged is a split-brain interval.
 * - `ProxyWriter` writes through the proxy every 50 ms, recording each acknowledged id, every error by SQLSTATE, and
 *   the longest gap between two acknowledged writes (the outage a client saw).
 * Both are bounded in time and stop by themselves.
 */
import pg from 'pg';
import { sleep } from '../../src/lib/proc.js';

export interface Round {
  readonly at: number;
  readonly acked: readonly string[];
}

export class SplitBrainChecker {
  readonly rounds: Round[] = [];
  /** Ids each node acknowledged. */
  readonly acked = new Map<string, number[]>();
  private stopped = false;
  private running: Promise<void> | null = null;
  private readonly clients = new Map<string, pg.Client | null>();
  private next = 1;

  constructor(
    private readonly nodes: readonly string[],
    private readonly addr: (node: string) => { host: string; port: number },
    private readonly password: string,
  ) {}

  /** Creates the probe table (through `leader`) and starts writing; stops after `maxMs` at the latest. */
  async start(leaderQuery: (sql: string) => Promise<unknown>, maxMs = 300_000): Promise<void> {
    await leaderQuery(
      'CREATE TABLE IF NOT EXISTS split_probe (id bigint PRIMARY KEY, node text, at timestamptz DEFAULT clock_timestamp())',
    );
    const until = Date.now() + maxMs;
    this.running = (async () => {
      while (!this.stopped && Date.now() < until) {
        const started = Date.now();
        const results = await Promise.all(this.nodes.map((n) => this.writeTo(n)));
        this.rounds.push({ at: started, acked: this.nodes.filter((_, i) => results[i]) });
        await sleep(Math.max(0, 100 - (Date.now() - started)));
      }
    })();
  }

  private async writeTo(node: string): Promise<boolean> {
    const id = this.next++;
    let c = this.clients.get(node) ?? null;
    try {
      if (!c) {
        c = new pg.Client({
          ...this.addr(node),
          user: 'postgres',
          password: this.password,
          database: 'postgres',
          connectionTimeoutMillis: 300,
          query_timeout: 300,
        });
        c.on('error', () => {});
        this.clients.set(node, c);
        await c.connect();
      }
      await c.query('INSERT INTO split_probe (id, node) VALUES ($1, $2)', [id, node]);
      const list = this.acked.get(node) ?? [];
      list.push(id);
      this.acked.set(node, list);
      return true;
    } catch {
      this.clients.set(node, null);
      void c?.end().catch(() => {});
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    for (const c of this.clients.values()) await c?.end().catch(() => {});
  }

  /** Rounds in which more than one node acknowledged a write. */
  splitBrainRounds(): Round[] {
    return this.rounds.filter((r) => r.acked.length > 1);
  }
}

export class ProxyWriter {
  readonly acked: number[] = [];
  readonly errors = new Map<string, number>();
  private lastAck = 0;
  /** Longest time between two acknowledged writes, ms. */
  maxGapMs = 0;
  private stopped = false;
  private running: Promise<void> | null = null;
  private client: pg.Client | null = null;

  constructor(private readonly at: { host: string; port: number }) {}

  async start(maxMs = 300_000): Promise<void> {
    const c = await this.connect();
    await c.query('CREATE TABLE IF NOT EXISTS proxy_probe (id bigint PRIMARY KEY)');
    const until = Date.now() + maxMs;
    this.lastAck = Date.now();
    // Unique across writers on the same table (one per scenario): ids from this writer's start time.
    let id = Date.now() * 1000;
    this.running = (async () => {
      while (!this.stopped && Date.now() < until) {
        const started = Date.now();
        try {
          const cl = this.client ?? (await this.connect());
          await cl.query('INSERT INTO proxy_probe (id) VALUES ($1)', [id]);
          this.acked.push(id);
          const now = Date.now();
          this.maxGapMs = Math.max(this.maxGapMs, now - this.lastAck);
          this.lastAck = now;
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'no-sqlstate';
          this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
          void this.client?.end().catch(() => {});
          this.client = null;
        }
        id++;
        await sleep(Math.max(0, 50 - (Date.now() - started)));
      }
    })();
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({ ...this.at, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 60_000 });
    c.on('error', () => {});
    await c.connect();
    this.client = c;
    return c;
  }

  /**
   * Acknowledged writes missing from `leader` now (asynchronous replication can lose the last ones on a crash).
   * `query` runs SQL on the node that leads after the fault.
   */
  async lostOn(query: (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>): Promise<number> {
    if (this.acked.length === 0) return 0;
    const rows = await query('SELECT count(*)::int AS n FROM proxy_probe WHERE id = ANY($1::bigint[])', [this.acked]);
    return this.acked.length - Number(rows[0]?.['n'] ?? 0);
  }

  /** The gap still open at the end counts too. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    this.maxGapMs = Math.max(this.maxGapMs, Date.now() - this.lastAck);
    await this.client?.end().catch(() => {});
  }
}
