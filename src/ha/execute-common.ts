/**
 * What the executor's parts share: the input of one act step, the member address a clone or rewind goes to, the
 * managed configuration write and the user callbacks.
 */
import { archiveParameters, nodeBackupSettings } from '../backup/archiving.js';
import type { Cluster } from '../dcs/layout.js';
import type { CallbackName, DynamicConfig } from '../config/node.js';
import { slotNameFor, type ConfInput, type Upstream } from '../postgres/conf.js';
import type { HostPort, PgStatus } from '../postgres/local-instance.js';
import { runCallback } from './callbacks.js';
import type { AgentContext } from './state.js';
import { withSlotFeedback } from './logical-slots.js';

export interface ExecInput {
  readonly cluster: Cluster | undefined;
  readonly dynamic: DynamicConfig;
  readonly pgStatus: PgStatus | null;
  readonly shuttingDown: boolean;
}

/** Where a member's PostgreSQL listens, from the conn_url it published ("postgres://host:port/db"). */
export function memberAddress(cluster: Cluster | undefined, name: string): HostPort | null {
  const url = cluster?.members.get(name)?.record.conn_url;
  if (!url) return null;
  try {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) };
  } catch {
    return null;
  }
}

function upstreamFor(
  ctx: AgentContext,
  cluster: Cluster | undefined,
  leader: string | null,
  dyn: DynamicConfig,
): Upstream | null {
  if (!leader) return null;
  const addr = memberAddress(cluster, leader);
  if (!addr) return null;
  return { ...addr, slot: dyn.postgresql.use_slots ? slotNameFor(ctx.cfg.name) : null };
}

/** Writes the managed configuration for `role` (a replica follows `leader`); remembers whom we follow. */
export function writeConf(
  ctx: AgentContext,
  inp: ExecInput,
  role: 'primary' | 'replica',
  leader: string | null,
): { changed: boolean } {
  const { pg, mem } = ctx;
  const upstream = role === 'replica' ? upstreamFor(ctx, inp.cluster, leader, inp.dynamic) : null;
  mem.following = upstream ? leader : null;
  return pg.writeConfig(confInput(ctx, inp, role, upstream), role);
}

/** The managed configuration's input for `role` (a replica streams from `upstream`). */
export function confInput(
  ctx: AgentContext,
  inp: ExecInput,
  role: 'primary' | 'replica',
  upstream: Upstream | null,
): ConfInput {
  return {
    cfg: ctx.cfg,
    // Permanent logical slots (issue 14) keep hot_standby_feedback on: the copies need the leader's catalog rows.
    dcsParameters: withSlotFeedback(inp.dynamic),
    archive: archiveParameters(nodeBackupSettings(ctx.cfg, inp.dynamic.backup).settings, ctx.cfg.postgresql.data_dir),
    upstream,
    synchronousStandbyNames: role === 'primary' ? ctx.mem.synchronousStandbyNames : '',
  };
}

export function callback(ctx: AgentContext, name: CallbackName, role: string): void {
  runCallback(ctx, name, role);
}
