/**
 * The effective dynamic settings: the DCS `config` key over the node's bootstrap.dcs defaults. Pure.
 */
import type { Cluster } from '../dcs/layout.js';
import { validate } from '../config/schema.js';
import { dynamicFields, type DynamicConfig, type NodeConfig } from '../config/node.js';
import type { HaSettings, Tags } from './view.js';

/** Merges the DCS config over bootstrap defaults; invalid DCS values are ignored (and reported) rather than fatal. */
export function effectiveDynamic(cfg: NodeConfig, cluster: Cluster | undefined): { config: DynamicConfig; problems: string[] } {
  const dcs = cluster?.config?.value ?? {};
  const base = cfg.bootstrap.dcs;
  const merged: Record<string, unknown> = { ...base, ...dcs, postgresql: { ...base.postgresql, ...((dcs['postgresql'] as object | undefined) ?? {}) } };
  const pause = merged['pause'];
  delete merged['pause'];
  // Keys pgkeel does not know (other Patroni settings) are kept in the DCS but not interpreted.
  const known: Record<string, unknown> = {};
  for (const k of Object.keys(dynamicFields)) if (k in merged) known[k] = merged[k];
  const { value, problems } = validate({ kind: 'object', doc: '', fields: dynamicFields }, known);
  if (problems.length) return { config: { ...base, pause: pause === true }, problems: problems.map((p) => `${p.path}: ${p.message}`) };
  const c = value as DynamicConfig;
  if (c.loop_wait + 2 * c.retry_timeout > c.ttl) return { config: { ...base, pause: pause === true }, problems: ['ttl: must be at least loop_wait + 2*retry_timeout; using the bootstrap values'] };
  c.pause = pause === true;
  return { config: c, problems: [] };
}

export function haSettings(d: DynamicConfig): HaSettings {
  return {
    ttl: d.ttl,
    loopWait: d.loop_wait,
    retryTimeout: d.retry_timeout,
    maximumLagOnFailover: d.maximum_lag_on_failover,
    synchronousMode: d.synchronous_mode,
    synchronousModeStrict: d.synchronous_mode_strict,
    synchronousNodeCount: d.synchronous_node_count,
    failsafeMode: d.failsafe_mode,
    primaryStartTimeout: d.primary_start_timeout,
    usePgRewind: d.postgresql.use_pg_rewind,
    paused: d.pause === true,
  };
}

export function tagsOf(cfg: NodeConfig): Tags {
  return { ...cfg.tags };
}
