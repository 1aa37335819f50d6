/**
 * The I/O edge of permanent slots (policy: logical-slots.ts). One keeper per agent (`keeperFor(ctx)`), shared by the
 * leader's upkeep (what to publish in `/status`) and the loop's replica step (copy, restart, advance):
 *
 * - local SQL as the superuser over the unix socket, one connection per database (a logical slot is advanced from
 *   a session in its own database);
 * - the leader's slot file, `pg_replslot/<name>/state`, read with `pg_read_binary_file` over a superuser
 *   connection to the leader and written into the local data directory (owned by postgres, 0600, fsynced with its
 *   directories). PostgreSQL loads it at the next start, so the caller restarts once for all copies.
 */
import { closeSync, constants, fchownSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Cluster } from '../dcs/layout.js';
import type { DynamicConfig } from '../config/node.js';
import { parseListen } from '../lib/net.js';
import { chownForPostgres, postgresIdentity } from '../lib/proc.js';
import { formatLsn, parseLsn } from '../postgres/lsn.js';
import type { HostPort } from '../postgres/local-instance.js';
import {
  leaderSlotReport,
  permanentLogicalSlots,
  permanentPhysicalSlots,
  planReplicaSlots,
  type LogicalSlotRow,
  type LogicalSlotsView,
  type PermanentLogicalSlot,
} from './logical-slots.js';
import { memberAddress } from './execute-common.js';
import type { AgentContext } from './state.js';

/** A slot whose copy did not show up after the restart is not copied again before this (no restart loop). */
export const COPY_RETRY_MS = 60_000;
/** A copy ahead of the leader's published position for this many quiet cycles in a row is stale: copied again. */
export const STALE_AFTER_CYCLES = 10;
const TIMEOUT_MS = 5000;

interface LocalSlots {
  readonly rows: LogicalSlotRow[];
  readonly replayLsn: number | null;
  readonly hotStandbyFeedback: boolean;
}

const keepers = new WeakMap<AgentContext, LogicalSlotKeeper>();

/** The agent's keeper (created on first use). */
export function keeperFor(ctx: AgentContext): LogicalSlotKeeper {
  let k = keepers.get(ctx);
  if (!k) keepers.set(ctx, (k = new LogicalSlotKeeper(ctx)));
  return k;
}

export class LogicalSlotKeeper {
  private readonly clients = new Map<string, pg.Client>();
  private local: ReadonlySet<string> | null = null;
  private lastProblems = '';
  private readonly copiedAt = new Map<string, number>();
  private readonly aheadCycles = new Map<string, number>();

  constructor(private readonly ctx: AgentContext) {}

  /**
   * What decide's promotion guard sees: the permanent logical slots and which exist here as last seen. Before the
   * first look no copy counts as present, so a freshly started agent is not promoted on a guess.
   */
  view(dynamic: DynamicConfig): LogicalSlotsView | undefined {
    const permanent = permanentLogicalSlots(dynamic).map((s) => s.name);
    return permanent.length ? { permanent, local: this.local ?? new Set() } : undefined;
  }

  /**
   * Leader, each cycle: creates missing permanent physical slots; returns each permanent logical slot's
   * confirmed_flush_lsn for `/status` (null when there are no permanent slots). A missing logical slot is logged,
   * never created (it would start at the current position and skip what its subscriber has not received).
   */
  async leaderPositions(dynamic: DynamicConfig): Promise<Record<string, number> | null> {
    const physical = permanentPhysicalSlots(dynamic);
    for (const name of physical)
      await this.ctx.pg
        .createSlot(name)
        .catch((err) => this.ctx.log.warn(`could not create permanent slot ${name}`, { err }));
    const permanent = permanentLogicalSlots(dynamic);
    if (!permanent.length) return null;
    try {
      const { rows } = await this.readLocal();
      const report = leaderSlotReport(permanent, rows);
      this.local = new Set(rows.map((r) => r.name));
      this.note([
        ...report.missing.map(
          (n) =>
            `permanent logical slot ${n} is missing on the leader; pgkeel does not create it (a slot created now would skip the changes its subscriber has not received)`,
        ),
        ...report.mismatched.map((n) => `logical slot ${n} does not match its permanent slot's database or plugin`),
      ]);
      return { ...report.positions };
    } catch (err) {
      this.ctx.log.warn('could not read the logical slots', { err });
      return null;
    }
  }

  /**
   * Replica, each quiet cycle: advances the copies to the leader's published positions and copies the slots it
   * lacks from `leader`. Returns true when copies were written and PostgreSQL must restart to load them.
   */
  async replicaCycle(cluster: Cluster | undefined, dynamic: DynamicConfig, leader: string | null): Promise<boolean> {
    const permanent = permanentLogicalSlots(dynamic);
    if (!permanent.length) return false;
    const local = await this.readLocal();
    const plan = planReplicaSlots({ permanent, published: cluster?.status?.slots ?? null, ...localInput(local) });
    this.local = new Set(local.rows.map((r) => r.name).filter((n) => !plan.ahead.includes(n)));
    this.note(plan.problems);
    const stale: PermanentLogicalSlot[] = [];
    for (const s of permanent) {
      const n = plan.ahead.includes(s.name) ? (this.aheadCycles.get(s.name) ?? 0) + 1 : 0;
      this.aheadCycles.set(s.name, n);
      if (n < STALE_AFTER_CYCLES) continue;
      this.ctx.log.warn(`the copy of logical slot ${s.name} stays ahead of the leader's: dropping it to copy it again`);
      await this.query('postgres', 'SELECT pg_drop_replication_slot($1)', [s.name]).then(
        () => stale.push(s),
        (err) => this.ctx.log.warn(`could not drop the stale copy of logical slot ${s.name}`, { err }),
      );
      this.aheadCycles.set(s.name, 0);
    }
    for (const a of plan.advance) {
      await this.query(a.database, 'SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [
        a.name,
        formatLsn(a.lsn),
      ]).catch((err) => this.ctx.log.warn(`could not advance the copy of logical slot ${a.name}`, { err }));
    }
    const now = this.ctx.now();
    const due = [...plan.copy, ...stale].filter((s) => now - (this.copiedAt.get(s.name) ?? -Infinity) >= COPY_RETRY_MS);
    const from = leader && leader !== this.ctx.cfg.name ? memberAddress(cluster, leader) : null;
    if (!due.length || !from) return false;
    let copied = 0;
    for (const slot of due) {
      this.copiedAt.set(slot.name, now);
      try {
        this.writeState(slot.name, await this.readLeaderState(from, slot));
        copied++;
        this.ctx.log.info(`copied logical slot ${slot.name} from leader ${leader}`);
      } catch (err) {
        this.ctx.log.warn(`could not copy logical slot ${slot.name} from leader ${leader}`, { err });
      }
    }
    return copied > 0;
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.end().catch(() => {})));
  }

  private note(problems: readonly string[]): void {
    const text = problems.join('\n');
    if (text !== this.lastProblems && text) for (const p of problems) this.ctx.log.warn(p);
    this.lastProblems = text;
  }

  private async readLocal(): Promise<LocalSlots> {
    const rows = await this.query<{ n: string; d: string; p: string; c: string | null }>(
      'postgres',
      `SELECT slot_name AS n, database AS d, plugin AS p, confirmed_flush_lsn::text AS c
         FROM pg_replication_slots WHERE slot_type = 'logical'`,
    );
    const st = await this.query<{ r: string | null; h: string }>(
      'postgres',
      `SELECT pg_last_wal_replay_lsn()::text AS r, current_setting('hot_standby_feedback') AS h`,
    );
    return {
      rows: rows.map((r) => ({ name: r.n, database: r.d, plugin: r.p, confirmedFlush: parseLsn(r.c) })),
      replayLsn: parseLsn(st[0]?.r ?? null),
      hotStandbyFeedback: st[0]?.h === 'on',
    };
  }

  private async query<R extends Record<string, unknown>>(
    db: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> {
    let c = this.clients.get(db);
    if (!c) {
      const { socket_dir, listen } = this.ctx.cfg.postgresql;
      c = this.superuser({ host: socket_dir, port: parseListen(listen).port }, db);
      const mine = c;
      c.on('error', () => {
        if (this.clients.get(db) === mine) this.clients.delete(db);
      });
      await c.connect().catch(async (err) => {
        await mine.end().catch(() => {});
        throw err;
      });
      this.clients.set(db, c);
    }
    try {
      return (await c.query(sql, params)).rows as R[];
    } catch (err) {
      if (!(err as { code?: string }).code) {
        this.clients.delete(db);
        await c.end().catch(() => {});
      }
      throw err;
    }
  }

  /** A superuser session (the agent's credentials) at `at`: the local socket directory or another member. */
  private superuser(at: HostPort, database: string): pg.Client {
    const su = this.ctx.cfg.postgresql.authentication.superuser;
    const limits = { connectionTimeoutMillis: TIMEOUT_MS, query_timeout: TIMEOUT_MS };
    return new pg.Client({
      ...at,
      user: su.username,
      password: su.password,
      database,
      application_name: 'pgkeel',
      ...limits,
    });
  }

  /** The leader's state file of `slot`, after checking the slot there is the permanent one. */
  private async readLeaderState(from: HostPort, slot: PermanentLogicalSlot): Promise<Buffer> {
    const c = this.superuser(from, 'postgres');
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query(
        `SELECT pg_read_binary_file('pg_replslot/' || slot_name || '/state') AS state
           FROM pg_replication_slots
          WHERE slot_name = $1 AND slot_type = 'logical' AND database = $2 AND plugin = $3`,
        [slot.name, slot.database, slot.plugin],
      );
      const state = (r.rows[0] as { state?: Buffer } | undefined)?.state;
      if (!state?.length)
        throw new Error(`the leader has no logical slot ${slot.name} for ${slot.database}/${slot.plugin}`);
      return state;
    } finally {
      await c.end().catch(() => {});
    }
  }

  /** pg_replslot/<name>/state in the local data directory: postgres's, 0600 (directory 0700), fsynced. */
  private writeState(name: string, state: Buffer): void {
    const slots = join(this.ctx.cfg.postgresql.data_dir, 'pg_replslot');
    const dir = join(slots, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    chownForPostgres(dir);
    const file = join(dir, 'state');
    const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const id = postgresIdentity();
      if (id) fchownSync(fd, id.uid, id.gid);
      writeSync(fd, state);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    for (const d of [dir, slots]) {
      const dfd = openSync(d, constants.O_RDONLY);
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    }
  }
}

function localInput(l: LocalSlots): { local: LogicalSlotRow[]; replayLsn: number | null; hotStandbyFeedback: boolean } {
  return { local: l.rows, replayLsn: l.replayLsn, hotStandbyFeedback: l.hotStandbyFeedback };
}
