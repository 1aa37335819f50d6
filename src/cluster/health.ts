/**
 * Replica health as every part of pgkeel judges it from the DCS alone: the leader choosing whom to hand over to
 * (src/ha/decide-leader.ts), the REST API checking a switchover (switchover.ts) and `pgkeel ctl` refusing one
 * (src/ctl/checks.ts) apply the same rule, so none of them can accept a candidate another would refuse.
 */
import type { Cluster } from '../dcs/layout.js';

/** A member the leader could hand over to, judged from its member record (the leader polls no peers). */
export function isHealthyReplica(c: Cluster, name: string, syncOnly: boolean): boolean {
  const m = c.members.get(name);
  if (!m || m.record.role !== 'replica' || m.record.state !== 'running' || m.record.tags?.['nofailover'] === true)
    return false;
  return !syncOnly || (c.sync?.standbys.includes(name) ?? false);
}
