/**
 * The drill's probe client: one INSERT every 20 ms into `pgkeel_drill`, on whichever server takes writes, recording
 * every acknowledged id with the time its acknowledgement arrived. After any error it drops the connection and looks
 * for a writable server again (`SHOW transaction_read_only` = off), among the endpoints its `Endpoints` gives: the
 * hosts of a `--dsn` in order (node-postgres has no multi-host URLs, so this is libpq's target_session_attrs=
 * read-write done here), or the member the DCS names leader now.
 */
import pg from 'pg';
import { sleep } from '../lib/proc.js';
import type { Ack } from './measure.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface ProbeLogin {
  readonly user: string;
  readonly password?: string;
  readonly database: string;
  /** node-postgres' `ssl` option (false: plain). */
  readonly ssl: pg.ClientConfig['ssl'];
}

/** Where to look for the writable server, asked again at every reconnect. */
export type Endpoints = () => Promise<readonly Endpoint[]>;

export const DRILL_TABLE = 'pgkeel_drill';
const CONNECT_MS = 1000;
const QUERY_MS = 2000;

export class Probe {
  private acks: Ack[] = [];
  private stopped = true;
  private loopDone: Promise<void> = Promise.resolve();
  private client: pg.Client | null = null;
  /** Failed attempts this round (connect or write). */
  failures = 0;

  constructor(
    private readonly login: ProbeLogin,
    private readonly endpoints: Endpoints,
    /** Tells this drill's rows from any other's. */
    readonly drillId: string,
    private readonly now: () => number = Date.now,
    private readonly intervalMs = 20,
  ) {}

  private async open(ep: Endpoint): Promise<pg.Client> {
    const c = new pg.Client({
      host: ep.host,
      port: ep.port,
      user: this.login.user,
      ...(this.login.password !== undefined ? { password: this.login.password } : {}),
      database: this.login.database,
      ssl: this.login.ssl,
      application_name: 'pgkeel drill',
      connectionTimeoutMillis: CONNECT_MS,
      query_timeout: QUERY_MS,
    });
    c.on('error', () => {});
    await c.connect().catch(async (err: unknown) => {
      await c.end().catch(() => {});
      throw err;
    });
    return c;
  }

  /** The first endpoint that takes writes; throws the last reason when none does. */
  async writable(): Promise<pg.Client> {
    let last = 'no endpoint to try (the DCS names no leader)';
    for (const ep of await this.endpoints()) {
      let c: pg.Client | null = null;
      try {
        c = await this.open(ep);
        const r = await c.query('SHOW transaction_read_only');
        if (r.rows[0]?.transaction_read_only === 'off') return c;
        last = `${ep.host}:${ep.port} is read-only`;
      } catch (err) {
        last = `${ep.host}:${ep.port}: ${(err as Error).message}`;
      }
      await c?.end().catch(() => {});
    }
    throw new Error(last);
  }

  /** Runs `fn` on a writable server, retrying for up to `timeoutMs` (the cluster may still be settling). */
  async onLeader<T>(fn: (c: pg.Client) => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      try {
        const c = await this.writable();
        try {
          return await fn(c);
        } finally {
          await c.end().catch(() => {});
        }
      } catch (err) {
        if (this.now() >= deadline) throw err;
        await sleep(250);
      }
    }
  }

  /** Creates the table when missing. */
  async prepare(): Promise<void> {
    await this.onLeader((c) =>
      c.query(
        `CREATE TABLE IF NOT EXISTS ${DRILL_TABLE} (drill text NOT NULL, round int NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (drill, round, id))`,
      ),
    );
  }

  start(round: number): void {
    this.acks = [];
    this.failures = 0;
    this.stopped = false;
    this.loopDone = this.loop(round);
  }

  /** Acknowledged so far this round, in order. */
  acked(): readonly Ack[] {
    return this.acks;
  }

  async stop(): Promise<readonly Ack[]> {
    this.stopped = true;
    await this.loopDone;
    return this.acks;
  }

  private async loop(round: number): Promise<void> {
    let id = 0;
    while (!this.stopped) {
      const began = this.now();
      id++; // an id whose INSERT failed is never reused: it may or may not have been committed
      try {
        this.client ??= await this.writable();
        await this.client.query(`INSERT INTO ${DRILL_TABLE} (drill, round, id) VALUES ($1, $2, $3)`, [
          this.drillId,
          round,
          id,
        ]);
        this.acks.push({ id, at: this.now() });
      } catch {
        this.failures++;
        await this.client?.end().catch(() => {});
        this.client = null;
      }
      await sleep(Math.max(0, this.intervalMs - (this.now() - began)));
    }
    await this.client?.end().catch(() => {});
    this.client = null;
  }

  /** The ids of `round` the writable server has now. */
  async present(round: number): Promise<Set<number>> {
    const rows = await this.onLeader(
      async (c) =>
        (await c.query(`SELECT id FROM ${DRILL_TABLE} WHERE drill = $1 AND round = $2`, [this.drillId, round])).rows,
    );
    return new Set(rows.map((r: { id: string }) => Number(r.id)));
  }

  /** Deletes this drill's rows (the table stays for the next drill). */
  async cleanup(): Promise<void> {
    await this.onLeader((c) => c.query(`DELETE FROM ${DRILL_TABLE} WHERE drill = $1`, [this.drillId]));
  }
}
