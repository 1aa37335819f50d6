/**
 * `pgkeel ready -c node.yml`: waits until this node's agent answers GET /liveness with 200 — it has finished an HA
 * cycle (src/api/health.ts) — on its own REST API (restapi.connect_address, over https with the node's CA and
 * client certificate when the config says so). The systemd unit runs it as ExecStartPost, so `systemctl start`
 * returns once the agent works and fails when it never does (docs/deploy.md, "Why Type=exec").
 *
 * Readiness is the agent's, not PostgreSQL's: a replica may clone for hours, which no start timeout should cover.
 */
import { memberApiUrl, restClientOptions, restRequest } from '../cluster/rest-client.js';
import type { NodeConfig } from '../config/node.js';

export interface ReadyDeps {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** GET url → status code; rejects on a network error. */
  readonly get: (url: URL) => Promise<number>;
}

export function livenessUrl(cfg: Pick<NodeConfig, 'restapi'>): URL {
  return new URL(memberApiUrl(cfg).replace(/\/patroni$/, '/liveness'));
}

/** The real GET, with the node's REST client options (CA, client certificate). */
export function restGetter(cfg: Pick<NodeConfig, 'restapi' | 'ctl'>): ReadyDeps['get'] {
  const opts = restClientOptions(cfg);
  return async (url) => (await restRequest(url, 'GET', opts, undefined, 2_000)).code;
}

/** Polls until 200 (returns the attempts' last answer) or the deadline; never throws on a refused connection. */
export async function waitLive(
  url: URL,
  timeoutMs: number,
  deps: ReadyDeps,
  intervalMs = 500,
): Promise<{ ok: boolean; last: string }> {
  const deadline = deps.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const code = await deps.get(url);
      if (code === 200) return { ok: true, last: '200' };
      last = `HTTP ${code}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (deps.now() >= deadline) return { ok: false, last };
    await deps.sleep(intervalMs);
  }
}
