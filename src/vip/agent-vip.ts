/**
 * How the agent (src/ha/agent.ts) uses the VIP: `vipFor` builds the controller for a node config that has a `vip`
 * section (Linux network, the guard process) and warns when PostgreSQL would not answer on the address;
 * `vipCycleInput` reads one HA cycle's observation and decision into the policy's input.
 */
import { readFileSync } from 'node:fs';
import type { NodeConfig } from '../config/node.js';
import type { Observed, Decision, Busy } from '../ha/view.js';
import { parseListen } from '../lib/net.js';
import type { Logger } from '../lib/log.js';
import { vipListenWarning } from './config.js';
import { VipGuard } from './guard.js';
import { LinuxVipNet } from './net.js';
import { VipController, type VipCycleInput } from './vip.js';

function nonlocalBind(): boolean | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '1';
  } catch {
    return null;
  }
}

export function vipFor(cfg: NodeConfig, log: Logger): VipController | null {
  const vip = cfg.vip;
  if (!vip) return null;
  const warning = vipListenWarning(vip, parseListen(cfg.postgresql.listen).hosts, nonlocalBind());
  if (warning) log.warn(warning, { vip: vip.address });
  const guard = new VipGuard({ address: vip.address, prefix: vip.netmask, dev: vip.interface }, log, cfg.log.format);
  return new VipController(vip, new LinuxVipNet(), guard, log.child({ component: 'vip' }));
}

const LEAVING: ReadonlySet<Busy['what'] | Decision['actions'][number]['kind']> = new Set(['demote', 'restart']);

/** The policy's input from a cycle: what was observed, what was decided, and what is running now. */
export function vipCycleInput(
  o: Observed,
  d: Decision,
  busy: Busy | null,
  shuttingDown: boolean,
  now: number,
): VipCycleInput {
  const renew = o.lastRenew;
  return {
    holdsLock: o.holdsLock,
    writablePrimary: o.pg.accepting && o.pg.inRecovery === false,
    demoting: d.actions.some((a) => LEAVING.has(a.kind)) || (busy !== null && LEAVING.has(busy.what)),
    shuttingDown,
    leaseLeftMs: renew?.ok ? Math.max(0, renew.at + o.settings.ttl * 1000 - now) : 0,
  };
}
