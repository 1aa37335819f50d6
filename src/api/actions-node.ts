/**
 * POST /restart, /reinitialize and /reload: operator requests the agent's loop runs between cycles
 * (`Agent.request`). Bodies and codes follow Patroni's `do_POST_restart`, `do_POST_reinitialize`, `do_POST_reload`.
 */
import type { AgentPort, ApiDeps } from './ports.js';
import type { Logger } from '../lib/log.js';
import { sleep, text, type ActionOptions, type ActionResult } from './actions-common.js';

/**
 * Patroni's restart filters, checked against this node: `role` and `restart_pending` are honoured;
 * `schedule`, `postgres_version` and `timeout` are refused as not supported yet. Returns null when the restart
 * may run.
 */
export function restartRefusal(
  body: Record<string, unknown>,
  me: { role: string; pendingRestart: boolean },
): ActionResult | null {
  for (const [k, v] of Object.entries(body)) {
    if (v === null || v === undefined) continue;
    switch (k) {
      case 'schedule':
        return text(400, 'scheduled restarts are not supported yet');
      case 'postgres_version':
      case 'timeout':
        return text(400, `the restart filter "${k}" is not supported yet`);
      case 'role':
        if (v !== 'master' && v !== 'primary' && v !== 'replica')
          return text(400, 'PostgreSQL role should be either primary or replica');
        if ((v === 'replica') !== (me.role === 'replica'))
          return text(503, `restart conditions are not satisfied: role is ${me.role}, not ${v}`);
        break;
      case 'restart_pending':
        if (v === true && !me.pendingRestart)
          return text(503, 'restart conditions are not satisfied: no restart is pending');
        break;
      default:
        return text(400, `Unknown filter for the scheduled restart: ${k}`);
    }
  }
  return null;
}

export async function postRestart(body: Record<string, unknown>, agent: AgentPort, log: Logger): Promise<ActionResult> {
  const snap = agent.snapshot();
  const refusal = restartRefusal(body, {
    role: snap.role,
    pendingRestart: snap.gathered?.pgStatus?.pendingRestart === true,
  });
  if (refusal) return refusal;
  try {
    await agent.request('restart');
    return text(200, 'restarted successfully');
  } catch (err) {
    log.warn('restart request failed', { err });
    return text(503, `restart failed: ${(err as Error).message}`);
  }
}

/**
 * Answers once the re-clone has started (the agent is busy with something it was not busy with before) or the
 * request settled — a refusal (leader, no leader to clone from) comes within one cycle. The clone itself may take
 * long; its progress shows as the member state "creating replica".
 */
export async function postReinitialize(
  { agent, now }: ApiDeps,
  log: Logger,
  opts: ActionOptions,
): Promise<ActionResult> {
  const busy = () => agent.snapshot().memory.busy;
  const before = busy();
  const state: { settled: { ok: true } | { ok: false; err: Error } | null } = { settled: null };
  const p = agent.request('reinitialize').then(
    () => void (state.settled = { ok: true }),
    (err: Error) => void (state.settled = { ok: false, err }),
  );
  const started = () => busy() !== null && busy() !== before;
  const deadline = now() + (opts.reinitStartMs ?? 30_000);
  while (state.settled === null && !started() && now() < deadline) await Promise.race([p, sleep(100)]);
  const s = state.settled;
  if (s !== null && !s.ok) {
    log.warn('reinitialize refused', { err: s.err });
    return text(503, s.err.message);
  }
  if (s === null && !started()) return text(503, 'reinitialize did not start in time; look at the agent log');
  return text(200, 'reinitialize started');
}

export function postReload(agent: AgentPort, log: Logger): ActionResult {
  agent.request('reload').catch((err: Error) => log.warn('reload failed', { err }));
  return text(202, 'reload scheduled');
}
