/**
 * POST /switchover, POST /failover and DELETE /switchover: check the request (src/cluster/switchover.ts), write the
 * `/failover` key only if no request is pending, wake the agent, and — for a request that is not scheduled —
 * poll the DCS until another member holds the leader key (Patroni `poll_failover_result`).
 */
import { encodeJson } from '../dcs/layout.js';
import type { Logger } from '../lib/log.js';
import { sleep, text, type ActionOptions, type ActionResult } from './actions-common.js';
import type { ApiDeps } from './ports.js';
import { planSwitchover, type SwitchoverKind, type SwitchoverPlan } from '../cluster/switchover.js';

const cap = (k: SwitchoverKind) => (k === 'switchover' ? 'Switchover' : 'Failover');

/**
 * Writes `/failover` if no request is pending. A key whose value names neither leader nor member (Patroni clears
 * it by writing `{}`) counts as absent and is replaced with a compare-and-swap on its revision.
 */
async function writeRequest(
  { agent, store, keys }: ApiDeps,
  plan: SwitchoverPlan,
): Promise<'ok' | { pending: string }> {
  const value = encodeJson(plan.value);
  const kv = await store.get(keys.failover);
  if (kv === undefined)
    return (await store.create(keys.failover, value)) ? 'ok' : { pending: '(written concurrently)' };
  const c = await agent.readCluster();
  if (c.failover) return { pending: kv.value };
  return (await store.compareAndPut(keys.failover, value, { modRevision: kv.modRevision }))
    ? 'ok'
    : { pending: '(written concurrently)' };
}

async function pollResult(
  { agent, cfg, now: clock }: ApiDeps,
  kind: SwitchoverKind,
  plan: SwitchoverPlan,
  opts: ActionOptions,
): Promise<ActionResult> {
  const loopWait = agent.snapshot().gathered?.dynamic.loop_wait ?? cfg.bootstrap.dcs.loop_wait;
  const waitMs = opts.waitMs ? opts.waitMs(loopWait) : 2 * Math.max(10, loopWait) * 1000;
  const interval = opts.pollIntervalMs ?? 1000;
  const deadline = clock() + waitMs;
  const verb = kind === 'switchover' ? 'switched' : 'failed';
  while (clock() < deadline) {
    await sleep(interval);
    try {
      const c = await agent.readCluster();
      const now = c.leader?.name;
      if (now !== undefined && now !== plan.fromLeader) {
        if (!plan.candidate || plan.candidate === now) return text(200, `Successfully ${verb} over to "${now}"`);
        return text(
          200,
          `${kind === 'switchover' ? 'Switched' : 'Failed'} over to "${now}" instead of "${plan.candidate}"`,
        );
      }
      // The leader (or the candidate) deletes a request it cannot carry out.
      if (!c.failover) return text(503, `${cap(kind)} failed`);
    } catch {
      // The DCS did not answer this time; keep polling until the deadline.
    }
  }
  return text(503, `${cap(kind)} status unknown`);
}

export async function postSwitchover(
  kind: SwitchoverKind,
  body: Record<string, unknown>,
  deps: ApiDeps,
  log: Logger,
  opts: ActionOptions,
): Promise<ActionResult> {
  let plan: ReturnType<typeof planSwitchover>;
  try {
    plan = planSwitchover(kind, await deps.agent.readCluster(), body, deps.now());
  } catch (err) {
    return text(503, `cannot read the cluster from the DCS: ${(err as Error).message}`);
  }
  if (plan.refused) {
    log.info(`${kind} request refused: ${plan.body}`, { code: plan.code, request: body });
    return text(plan.code, plan.body);
  }
  let written: Awaited<ReturnType<typeof writeRequest>>;
  try {
    written = await writeRequest(deps, plan);
  } catch (err) {
    return text(503, `failed to write ${kind} key into DCS: ${(err as Error).message}`);
  }
  if (written !== 'ok') {
    return text(
      409,
      `a switchover or failover is already pending: ${written.pending}; wait for it or cancel it with DELETE /switchover`,
    );
  }
  log.info(`${kind} requested`, { failover: plan.value });
  deps.agent.poke();
  if (plan.scheduled) return text(202, `${cap(kind)} scheduled`);
  return pollResult(deps, kind, plan, opts);
}

/** DELETE /switchover: 200 deleted / 404 nothing scheduled / 409 the request changed while we looked. */
export async function deleteSwitchover({ agent, store, keys }: ApiDeps): Promise<ActionResult> {
  try {
    const f = (await agent.readCluster()).failover;
    if (!f?.scheduledAt) return text(404, 'no switchover is scheduled');
    if (!(await store.compareAndDelete(keys.failover, { modRevision: f.modRevision })))
      return text(409, 'the switchover request changed meanwhile; look again');
    agent.poke();
    return text(200, 'scheduled switchover deleted');
  } catch (err) {
    return text(503, `cannot reach the DCS: ${(err as Error).message}`);
  }
}
