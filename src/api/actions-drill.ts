/**
 * POST /drill {"fault": "crash"|"isolate", "seconds": N}: starts a fault on this member for `pgkeel drill`
 * (src/ha/drill.ts, docs/drill.md). The server has already checked the credentials; this endpoint additionally
 * refuses (403) unless the operator opted in — `restapi.allow_drills: true` — on an API that requires credentials at
 * all (`restapi.authentication`), so an open loopback API can never be made to kill its PostgreSQL.
 */
import { DRILL_FAULTS, MAX_DRILL_SECONDS, type DrillFault } from '../ha/drill.js';
import type { Logger } from '../lib/log.js';
import { text, type ActionResult } from './actions-common.js';
import type { ApiDeps } from './ports.js';

/** Why this node refuses every drill, or null when drills are allowed. */
export function drillRefusal(restapi: ApiDeps['cfg']['restapi']): string | null {
  if (!restapi.allow_drills)
    return 'drills are disabled on this member: set restapi.allow_drills: true in its config (staging clusters only)';
  if (!restapi.authentication?.username)
    return 'drills need REST authentication: set restapi.authentication on this member as well as restapi.allow_drills';
  return null;
}

/** The body's fault and seconds, or a 400 answer. */
export function parseDrillBody(body: Record<string, unknown>): { fault: DrillFault; seconds: number } | ActionResult {
  const { fault, seconds } = body;
  if (typeof fault !== 'string' || !(DRILL_FAULTS as readonly string[]).includes(fault))
    return text(400, `fault must be one of ${DRILL_FAULTS.join(', ')}`);
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DRILL_SECONDS)
    return text(400, `seconds must be an integer from 1 to ${MAX_DRILL_SECONDS}`);
  for (const k of Object.keys(body))
    if (k !== 'fault' && k !== 'seconds') return text(400, `unknown field "${k}" (expected fault, seconds)`);
  return { fault: fault as DrillFault, seconds };
}

export async function postDrill(body: Record<string, unknown>, deps: ApiDeps, log: Logger): Promise<ActionResult> {
  const refusal = drillRefusal(deps.cfg.restapi);
  if (refusal) return text(403, refusal);
  const req = parseDrillBody(body);
  if ('code' in req) return req;
  if (!deps.agent.drill) return text(503, 'this agent runs without drill hooks');
  try {
    const summary = await deps.agent.drill(req.fault, req.seconds);
    log.warn(`drill started by REST request: ${summary}`, { drill: req.fault, seconds: req.seconds });
    return text(200, summary);
  } catch (err) {
    return text(409, `drill refused: ${(err as Error).message}`);
  }
}
