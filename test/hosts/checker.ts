/**
 * What clients would see during a fault, measured from the root namespace:
 * - `SplitBrainChecker` writes to every node directly every 100 ms (a row naming the node) and records which nodes
 *   acknowledged a write in each round; a round in which two nodes acknowledged is a split-brain interval.
 * - `ProxyWriter` writes through the proxy every 20 ms and `LibpqWriter` through libpq's multi-host failover (psql with
 *   `target_session_attrs=read-write`), each recording every acknowledged id, every error by SQLSTATE, and the
 *   longest gap between two acknowledged writes (the outage a client saw).
 * Both are bounded in time and stop by themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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

/** What every probe client records: acknowledged ids, errors by SQLSTATE, the longest wait between two acks. */
abstract class ProbeWriter {
  readonly acked: number[] = [];
  readonly errors = new Map<string, number>();
  /** Longest time between two acknowledged writes, ms. */
  maxGapMs = 0;
  protected stopped = false;
  protected running: Promise<void> | null = null;
  private lastAck = 0;

  constructor(
    protected readonly table: string,
    protected readonly intervalMs: number,
  ) {}

  /** Writes one id; resolves true when acknowledged, else records the error and resolves false. */
  protected abstract write(id: number): Promise<boolean>;
  protected abstract prepare(): Promise<void>;
  protected abstract release(): Promise<void>;

  async start(maxMs = 300_000): Promise<void> {
    await this.prepare();
    const until = Date.now() + maxMs;
    this.lastAck = Date.now();
    // Unique across writers on the same table (one per scenario): ids from this writer's start time.
    let id = Date.now() * 1000;
    this.running = (async () => {
      while (!this.stopped && Date.now() < until) {
        const started = Date.now();
        if (await this.write(id)) {
          this.acked.push(id);
          const now = Date.now();
          this.maxGapMs = Math.max(this.maxGapMs, now - this.lastAck);
          this.lastAck = now;
        }
        id++;
        await sleep(Math.max(0, this.intervalMs - (Date.now() - started)));
      }
    })();
  }

  protected fail(code: string): false {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    return false;
  }

  /**
   * Acknowledged writes missing from the node `query` runs on (asynchronous replication can lose the last ones on a
   * crash; synchronous mode must not).
   */
  async lostOn(query: (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>): Promise<number> {
    if (this.acked.length === 0) return 0;
    const rows = await query(`SELECT count(*)::int AS n FROM ${this.table} WHERE id = ANY($1::bigint[])`, [this.acked]);
    return this.acked.length - Number(rows[0]?.['n'] ?? 0);
  }

  /** The gap still open at the end counts too. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.running;
    this.maxGapMs = Math.max(this.maxGapMs, Date.now() - this.lastAck);
    await this.release();
  }
}

/** Writes through the proxy (node-postgres, one connection, reconnecting after any error). */
export class ProxyWriter extends ProbeWriter {
  private client: pg.Client | null = null;

  constructor(
    private readonly at: { host: string; port: number },
    intervalMs = 20,
  ) {
    super('proxy_probe', intervalMs);
  }

  protected async prepare(): Promise<void> {
    const c = await this.connect();
    await c.query('CREATE TABLE IF NOT EXISTS proxy_probe (id bigint PRIMARY KEY)');
  }

  protected async write(id: number): Promise<boolean> {
    try {
      const cl = this.client ?? (await this.connect());
      await cl.query('INSERT INTO proxy_probe (id) VALUES ($1)', [id]);
      return true;
    } catch (err) {
      void this.client?.end().catch(() => {});
      this.client = null;
      return this.fail((err as { code?: string }).code ?? 'no-sqlstate');
    }
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({ ...this.at, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 60_000 });
    c.on('error', () => {});
    await c.connect();
    this.client = c;
    return c;
  }

  protected async release(): Promise<void> {
    await this.client?.end().catch(() => {});
  }
}

/**
 * Writes through libpq's own multi-host failover, as an application without a proxy would: one long-lived `psql`
 * with `host=n1,n2,n3 target_session_attrs=read-write`, fed one INSERT at a time; when the connection breaks psql
 * exits (non-interactive) and a new one connects to whichever host is writable then. Each INSERT is followed by an
 * `\echo` marker, so an acknowledgement is the id printed before its marker.
 */
export class LibpqWriter extends ProbeWriter {
  private psql: ChildProcess | null = null;
  private lines: string[] = [];
  private waiter: (() => void) | null = null;
  private lastError = '';
  private spawnedAt = 0;

  constructor(
    private readonly hosts: readonly { host: string; port: number }[],
    private readonly password: string,
    intervalMs = 20,
  ) {
    super('libpq_probe', intervalMs);
  }

  conninfo(): string {
    return [
      `host=${this.hosts.map((h) => h.host).join(',')}`,
      `port=${this.hosts.map((h) => h.port).join(',')}`,
      'user=postgres dbname=postgres target_session_attrs=read-write application_name=libpq_probe',
      // A vanished host costs 2 s per connection attempt; a request in flight to it fails after 4 s.
      'connect_timeout=2 tcp_user_timeout=4000 keepalives_idle=2 keepalives_interval=1 keepalives_count=2',
    ].join(' ');
  }

  protected async prepare(): Promise<void> {
    // The table is created by the first successful INSERT's session; make sure it exists first.
    this.spawn();
    this.psql?.stdin?.write('CREATE TABLE IF NOT EXISTS libpq_probe (id bigint PRIMARY KEY);\n\\echo ready\n');
    await this.until((l) => l === 'ready', 30_000);
  }

  private spawn(): void {
    const p = spawn('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=0', '-v', 'VERBOSITY=verbose', this.conninfo()], {
      env: { ...process.env, PGPASSWORD: this.password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.psql = p;
    this.spawnedAt = Date.now();
    this.lines = [];
    let buf = '';
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i = buf.indexOf('\n');
      while (i >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
      }
      this.waiter?.();
    });
    p.stderr?.on('data', (d: Buffer) => {
      this.lastError = d.toString('utf8');
    });
    p.stdin?.on('error', () => {});
    p.on('exit', () => {
      if (this.psql === p) this.psql = null;
      this.waiter?.();
    });
  }

  /** Waits for a stdout line matching `done`; false when psql exited or the time ran out. */
  private async until(done: (line: string) => boolean, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    const p = this.psql;
    while (Date.now() < end) {
      if (this.lines.some(done)) return true;
      if (this.psql !== p || p === null) return false;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 200);
      });
      this.waiter = null;
    }
    return false;
  }

  protected async write(id: number): Promise<boolean> {
    if (!this.psql) {
      // psql exits at once when no host is writable: at most 4 connection attempts a second, not 50.
      if (Date.now() - this.spawnedAt < 250) return this.fail('connection');
      this.spawn();
    }
    const p = this.psql as ChildProcess;
    this.lines = [];
    this.lastError = '';
    p.stdin?.write(`INSERT INTO libpq_probe (id) VALUES (${id}) RETURNING id;\n\\echo end ${id}\n`);
    const marker = `end ${id}`;
    const ended = await this.until((l) => l === marker, 30_000);
    if (ended && this.lines.includes(String(id))) return true;
    if (!ended && this.psql === p) p.kill('SIGKILL'); // hung: our own child, by pid
    const code = /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/.exec(this.lastError);
    return this.fail(code?.[1] ?? (ended ? 'error' : 'connection'));
  }

  protected async release(): Promise<void> {
    const p = this.psql;
    this.psql = null;
    if (!p || p.exitCode !== null) return;
    p.stdin?.end();
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    await Promise.race([exited, sleep(2000)]);
    if (p.exitCode === null) p.kill('SIGKILL');
  }
}
