/**
 * The two rules that override the situation table (decide.ts) for one cycle: an operator request from the REST
 * API (POST /restart, /reinitialize, /reload), and the wait after a failure. Pure, like the rest of decide.
 *
 * A request runs instead of whatever the situation would do, on a member not busy with a long action (it stays
 * queued meanwhile); one it cannot run is refused with a sentence the REST API answers 503 with, and the
 * situation decides the cycle as usual. The retry wait applies to every decision, a request's included.
 */
import { decision } from './decide-common.js';
import type { Action, Decision, Observed, OperatorRequest } from './view.js';

export type RequestStep = { readonly run: Decision } | { readonly refused: string };

function run(summary: string, actions: readonly Action[], role: Decision['role']): RequestStep {
  return { run: { ...decision(summary, actions, role), request: { outcome: 'run' } } };
}

/** What `kind` does on this member now, or why it cannot run. */
export function requestStep(o: Observed, kind: OperatorRequest): RequestStep {
  const leader = o.dcs.ok ? o.dcs.cluster.leader?.name : undefined;
  switch (kind) {
    case 'restart':
      if (!o.pg.running) return { refused: 'PostgreSQL is not running' };
      return run('restarting PostgreSQL on request', [{ kind: 'restart' }], o.lastRole);
    case 'reinitialize':
      // Also when the key names me but this cycle's renewal failed: the data directory may still be the newest.
      if (o.holdsLock || leader === o.me) return { refused: 'I am the leader; a leader cannot be reinitialized' };
      if (leader === undefined) return { refused: 'there is no leader to clone from' };
      return run(`reinitializing from ${leader} on request`, [{ kind: 'reclone', from: leader }], 'replica');
    case 'reload':
      return run('reloading the configuration on request', [{ kind: 'reload' }], o.lastRole);
  }
}

/** Kept while waiting: what keeps or gives up the leader key, and stopping a primary that must stop. */
const KEPT_WHILE_WAITING: ReadonlySet<Action['kind']> = new Set(['renew_lock', 'release_lock', 'demote']);

/**
 * A failed background operation (bootstrap, clone, start…) or a crash loop is not retried before
 * `retry.after` (crash-loop.ts): until then the cycle only keeps, releases or demotes, and says why it waits.
 * A running long action is left to finish.
 */
export function duringRetryWait(o: Observed, d: Decision): Decision {
  if (o.busy !== null || o.now >= o.retry.after) return d;
  const actions = d.actions.filter((a) => KEPT_WHILE_WAITING.has(a.kind));
  return { ...d, summary: `waiting before retrying after a failure (${o.retry.lastError ?? 'unknown'})`, actions };
}
