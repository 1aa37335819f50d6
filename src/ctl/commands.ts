/**
 * The `pgkeel ctl` commands that act on a cluster: each reads the DCS, refuses clearly (checks.ts) and then asks
 * the right member's REST API — the leader for switchover, pause and config, the candidate for a failover without
 * a leader, each named member for restart and reinit. Output goes through `CtlIo` so the CLI decides how to print
 * and how to ask for confirmation.
 */
import { stringify } from 'yaml';
import type { Cluster, Member } from '../dcs/layout.js';
import { formatScheduledAt, isPaused } from '../cluster/switchover.js';
import { mergePatch } from '../cluster/merge-patch.js';
import { checkFailover, checkSwitchover, parseScheduled } from './checks.js';
import type { CtlClient, RestAnswer } from './client.js';
import { configDiff } from './edit.js';
import { CtlError } from './errors.js';
import { listJson, listText } from './view.js';

export interface CtlIo {
  out(line: string): void;
  /** Asks a yes/no question; throws CTL_CONFIRM_NEEDED when nobody can answer (stdin is not a terminal). */
  confirm(question: string): Promise<boolean>;
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** How long a switchover may take on the server (2 × max(10, loop_wait) s) plus slack. */
const SWITCHOVER_TIMEOUT_MS = 150_000;

function memberOf(c: Cluster, name: string): Member {
  const m = c.members.get(name);
  if (!m)
    throw new CtlError(
      'CTL_UNKNOWN_MEMBER',
      `member ${name} does not exist (members: ${[...c.members.keys()].sort().join(', ')})`,
    );
  return m;
}

/** The leader's member record, else the first member that publishes a REST address. */
function leaderOrAny(c: Cluster, scope: string): Member {
  const l = c.leader ? c.members.get(c.leader.name) : undefined;
  if (l?.record.api_url) return l;
  const any = [...c.members.values()].filter((m) => m.record.api_url).sort((a, b) => a.name.localeCompare(b.name))[0];
  if (!any) throw new CtlError('CTL_REST_UNREACHABLE', `no member of cluster ${scope} publishes a REST address`);
  return any;
}

async function sure(io: CtlIo, force: boolean, question: string, what: string): Promise<void> {
  if (force) return;
  if (!(await io.confirm(question))) throw new CtlError('CTL_ABORTED', `${what} aborted`);
}

const stamp = (io: CtlIo) =>
  new Date(io.now())
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '');

function failed(what: string, m: Member, a: RestAnswer): CtlError {
  if (a.code === 401 || a.code === 403) {
    const need =
      a.code === 401
        ? 'restapi.authentication (the credentials its agent runs with)'
        : 'ctl.certfile and ctl.keyfile (a client certificate its restapi.cafile trusts)';
    return new CtlError(
      'CTL_REST_UNAUTHORIZED',
      `${what} refused by member ${m.name}: HTTP ${a.code}: ${a.text.trim()}; give a -c node.yml with ${need}, or --dir of a \`pgkeel up\` cluster`,
    );
  }
  return new CtlError('CTL_REST_FAILED', `${what} failed on member ${m.name}: HTTP ${a.code}: ${a.text.trim()}`);
}

export interface SwitchoverOptions {
  readonly leader?: string;
  readonly candidate?: string;
  readonly scheduled?: string;
  readonly force: boolean;
}

export async function switchover(client: CtlClient, io: CtlIo, o: SwitchoverOptions): Promise<void> {
  const scope = client.target.scope;
  const c = await client.cluster();
  const at = parseScheduled(o.scheduled, io.now());
  const leader = checkSwitchover(c, scope, {
    ...(o.leader ? { leader: o.leader } : {}),
    ...(o.candidate ? { candidate: o.candidate } : {}),
    ...(at !== undefined ? { scheduledAt: at } : {}),
  });
  io.out(listText(listJson(scope, c)));
  const when = at !== undefined ? ` at ${formatScheduledAt(at)}` : '';
  await sure(
    io,
    o.force,
    `Are you sure you want to switchover cluster ${scope}${when}, demoting current leader ${leader}${o.candidate ? ` in favour of ${o.candidate}` : ''}?`,
    'switchover',
  );
  const m = memberOf(c, leader);
  const body = {
    leader,
    candidate: o.candidate ?? null,
    scheduled_at: at !== undefined ? formatScheduledAt(at) : null,
  };
  const a = await client.rest(m, 'POST', '/switchover', body, SWITCHOVER_TIMEOUT_MS);
  if (a.code !== 200 && a.code !== 202) throw failed('switchover', m, a);
  io.out(`${stamp(io)} ${a.text.trim()}`);
  if (a.code === 200) io.out(listText(listJson(scope, await client.cluster())));
}

export async function failover(client: CtlClient, io: CtlIo, o: { candidate: string; force: boolean }): Promise<void> {
  const scope = client.target.scope;
  const c = await client.cluster();
  const leader = checkFailover(c, scope, o.candidate);
  io.out(listText(listJson(scope, c)));
  await sure(
    io,
    o.force,
    `Are you sure you want to failover cluster ${scope} to ${o.candidate}${leader ? `, demoting current leader ${leader}` : ''}?`,
    'failover',
  );
  const m = memberOf(c, leader ?? o.candidate);
  const a = await client.rest(
    m,
    'POST',
    '/failover',
    { candidate: o.candidate, ...(leader ? { leader } : {}) },
    SWITCHOVER_TIMEOUT_MS,
  );
  if (a.code !== 200 && a.code !== 202) throw failed('failover', m, a);
  io.out(`${stamp(io)} ${a.text.trim()}`);
  io.out(listText(listJson(scope, await client.cluster())));
}

/** Restarts each named member (all when none is named); returns how many failed. */
export async function restart(
  client: CtlClient,
  io: CtlIo,
  o: { members: readonly string[]; force: boolean },
): Promise<number> {
  const c = await client.cluster();
  const names = o.members.length ? o.members : [...c.members.keys()].sort();
  const targets = names.map((n) => memberOf(c, n));
  await sure(io, o.force, `Are you sure you want to restart members ${names.join(', ')}?`, 'restart');
  let failures = 0;
  for (const m of targets) {
    const a = await client
      .rest(m, 'POST', '/restart', {}, 180_000)
      .catch((err: CtlError) => ({ code: 0, text: err.message }));
    if (a.code === 200) io.out(`Success: restart on member ${m.name}`);
    else {
      failures++;
      io.out(`Failed: restart for member ${m.name}, status code=${a.code}, (${a.text.trim()})`);
    }
  }
  return failures;
}

export async function reinit(client: CtlClient, io: CtlIo, o: { member: string; force: boolean }): Promise<void> {
  const c = await client.cluster();
  const m = memberOf(c, o.member);
  if (c.leader?.name === o.member)
    throw new CtlError(
      'CTL_SAME_MEMBER',
      `member ${o.member} is the leader; a leader cannot be reinitialized (switch over first)`,
    );
  await sure(
    io,
    o.force,
    `Are you sure you want to reinitialize member ${o.member}? Its data directory is replaced by a fresh copy of the leader's.`,
    'reinit',
  );
  const a = await client.rest(m, 'POST', '/reinitialize', { force: true }, 60_000);
  if (a.code !== 200) throw failed('reinitialize', m, a);
  io.out(`Success: reinitialize for member ${m.name}`);
}

/** `pause` / `resume`: PATCH /config {pause: true|null} on the leader; with `wait`, until every member reports it. */
export async function setPause(
  client: CtlClient,
  io: CtlIo,
  o: { pause: boolean; wait: boolean; waitMs?: number },
): Promise<void> {
  const scope = client.target.scope;
  const c = await client.cluster();
  if (o.pause && isPaused(c)) throw new CtlError('CTL_ALREADY_PAUSED', `cluster ${scope} is already paused`);
  if (!o.pause && !isPaused(c)) throw new CtlError('CTL_NOT_PAUSED', `cluster ${scope} is not paused`);
  const m = leaderOrAny(c, scope);
  const a = await client.rest(m, 'PATCH', '/config', { pause: o.pause ? true : null });
  if (a.code !== 200) throw failed(o.pause ? 'pause' : 'resume', m, a);
  if (o.wait) {
    io.out(`Waiting for every member to ${o.pause ? 'pause' : 'resume'} ...`);
    const deadline = io.now() + (o.waitMs ?? 120_000);
    for (;;) {
      const now = await client.cluster();
      const behind = [...now.members.values()].filter((x) => (x.record.pause === true) !== o.pause).map((x) => x.name);
      if (behind.length === 0) break;
      if (io.now() > deadline)
        throw new CtlError(
          'CTL_TIMEOUT',
          `members ${behind.join(', ')} did not report pause=${o.pause} within ${Math.round((o.waitMs ?? 120_000) / 1000)} s`,
        );
      await io.sleep(500);
    }
  }
  io.out(`Success: cluster management is ${o.pause ? 'paused' : 'resumed'}`);
}

export async function showConfig(client: CtlClient): Promise<string> {
  const c = await client.cluster();
  return stringify(c.config?.value ?? {}).trimEnd();
}

/** Applies a merge patch through PATCH /config (validated there); returns false when it changes nothing. */
export async function editConfig(
  client: CtlClient,
  io: CtlIo,
  o: { patch: Record<string, unknown>; force: boolean },
): Promise<boolean> {
  const scope = client.target.scope;
  const c = await client.cluster();
  if (!c.config) throw new CtlError('CTL_NO_CLUSTER', `cluster ${scope} has no configuration in the DCS yet`);
  const diff = configDiff(c.config.value, mergePatch(c.config.value, o.patch));
  if (diff.length === 0) {
    io.out('Not changed');
    return false;
  }
  for (const l of diff) io.out(l);
  await sure(io, o.force, 'Apply these changes?', 'edit-config');
  const m = leaderOrAny(c, scope);
  const a = await client.rest(m, 'PATCH', '/config', o.patch);
  if (a.code === 400) {
    let problems: string[] = [a.text.trim()];
    try {
      const b = JSON.parse(a.text) as { problems?: Array<{ path: string; message: string }> };
      if (b.problems) problems = b.problems.map((p) => `  ${p.path}: ${p.message}`);
    } catch {
      // a text body: shown as it is
    }
    throw new CtlError('CTL_CONFIG_INVALID', `member ${m.name} refused the new configuration`, problems);
  }
  if (a.code !== 200) throw failed('edit-config', m, a);
  io.out('Configuration changed');
  return true;
}
