/**
 * The effective dynamic settings: the DCS `config` key over the node's bootstrap.dcs defaults. Pure.
 */
import type { Cluster } from '../dcs/layout.js';
import { validate, type Schema } from '../config/schema.js';
import { dynamicFields, type DynamicConfig, type NodeConfig } from '../config/node.js';
import { localOnlyProblems, refusedDynamicNames } from '../config/pg-params.js';
import type { HaSettings, Tags } from './view.js';

const PARAMETERS = (dynamicFields['postgresql'] as Extract<Schema, { kind: 'object' }>).fields['parameters'] as Schema;

/**
 * The DCS's postgresql.parameters an agent may apply: anyone with write access to etcd can write the config key,
 * so each parameter is checked here, one by one — a malformed name or value, or a local-only parameter this node's
 * file does not allow (archive_command, ...), is dropped and reported; the rest still applies.
 */
function applicableParameters(
  raw: unknown,
  allowed: readonly string[],
): { parameters: Record<string, unknown>; problems: string[] } {
  const path = 'postgresql.parameters';
  const { value, problems } = validate(PARAMETERS, raw, path);
  const parameters = (value ?? {}) as Record<string, unknown>;
  const refused = localOnlyProblems(parameters, path, allowed);
  for (const name of refusedDynamicNames(parameters, allowed)) delete parameters[name];
  return { parameters, problems: [...problems, ...refused].map((p) => `${p.path}: ${p.message}`) };
}

/** Merges the DCS config over bootstrap defaults; invalid DCS values are ignored (and reported) rather than fatal. */
export function effectiveDynamic(
  cfg: NodeConfig,
  cluster: Cluster | undefined,
): { config: DynamicConfig; problems: string[] } {
  const dcs = cluster?.config?.value ?? {};
  const base = cfg.bootstrap.dcs;
  const dcsPg = Object.hasOwn(dcs, 'postgresql') ? dcs['postgresql'] : undefined;
  const pg: Record<string, unknown> = {
    ...base.postgresql,
    ...(dcsPg !== null && typeof dcsPg === 'object' ? dcsPg : {}),
  };
  const params = applicableParameters(pg['parameters'], cfg.postgresql.allow_dynamic_parameters);
  pg['parameters'] = params.parameters;
  const merged: Record<string, unknown> = { ...base, ...dcs, postgresql: pg };
  const pause = merged['pause'];
  delete merged['pause'];
  // Keys pgkeel does not know (other Patroni settings) are kept in the DCS but not interpreted.
  const known: Record<string, unknown> = {};
  for (const k of Object.keys(dynamicFields)) if (Object.hasOwn(merged, k)) known[k] = merged[k];
  const { value, problems } = validate({ kind: 'object', doc: '', fields: dynamicFields }, known);
  if (problems.length)
    return {
      config: { ...base, pause: pause === true },
      problems: [...params.problems, ...problems.map((p) => `${p.path}: ${p.message}`)],
    };
  const c = value as DynamicConfig;
  if (c.loop_wait + 2 * c.retry_timeout > c.ttl)
    return {
      config: { ...base, pause: pause === true },
      problems: [...params.problems, 'ttl: must be at least loop_wait + 2*retry_timeout; using the bootstrap values'],
    };
  c.pause = pause === true;
  return { config: c, problems: params.problems };
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
