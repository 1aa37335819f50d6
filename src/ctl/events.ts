/**
 * `pgkeel ctl events`: asks every member the DCS lists for its events (GET /events?since=) and merges them into one
 * time line (src/observe/events/merge.ts). A member that does not answer is named on stderr; when its agent's events
 * file is on this machine (`--dir`: every node of the local cluster; `-c`: the node's own) the file is read instead,
 * so after a crash the dead member's part of the story — up to its last event — is still told.
 */
import { readEventsFile } from '../observe/events/recorder.js';
import type { Member } from '../dcs/layout.js';
import { isClusterEvent, type ClusterEvent } from '../observe/events/event.js';
import { eventsText, mergeEvents, writesDown, writesDownText } from '../observe/events/merge.js';
import type { CtlClient } from './client.js';
import { CtlError } from './errors.js';

export interface EventsIo {
  readonly out: (line: string) => void;
  readonly warn: (line: string) => void;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** At most this long per member: a hung member must not hold up the story. */
const MEMBER_TIMEOUT_MS = 3000;
/** --follow polls this often. */
export const FOLLOW_EVERY_MS = 2000;
/** --follow remembers this many events to merge new ones with (an agent keeps 1000). */
const FOLLOW_KEEP = 5000;

async function memberEvents(client: CtlClient, m: Member, since: number | undefined, io: EventsIo) {
  const path = since === undefined ? '/events' : `/events?since=${Math.floor(since)}`;
  try {
    const a = await client.rest(m, 'GET', path, undefined, MEMBER_TIMEOUT_MS);
    if (a.code !== 200) {
      io.warn(`pgkeel ctl events: member ${m.name} answered ${a.code} to GET ${path}: ${a.text.trim().slice(0, 200)}`);
      return null;
    }
    const body: unknown = JSON.parse(a.text);
    return Array.isArray(body) ? body.filter(isClusterEvent) : [];
  } catch (err) {
    const msg = err instanceof CtlError ? err.message : `GET ${path} on member ${m.name}: ${(err as Error).message}`;
    io.warn(`pgkeel ctl events: ${msg}`);
    return null;
  }
}

/** The events file of a member whose agent did not answer (or has no record in the DCS any more). */
function fileEvents(member: string, file: string, since: number | undefined, io: EventsIo): ClusterEvent[] {
  try {
    const events = readEventsFile(file);
    if (events === null) return [];
    io.warn(`pgkeel ctl events: ${member}'s events read from its agent's file ${file}`);
    return since === undefined ? events : events.filter((e) => e.at >= since);
  } catch (err) {
    io.warn(`pgkeel ctl events: cannot read ${member}'s events file ${file}: ${(err as Error).message}`);
    return [];
  }
}

/** Every reachable member's events at or after `since`, merged. */
export async function collectEvents(
  client: CtlClient,
  since: number | undefined,
  io: EventsIo,
): Promise<ClusterEvent[]> {
  const c = await client.cluster();
  const members = [...c.members.values()];
  const answers = await Promise.all(members.map((m) => memberEvents(client, m, since, io)));
  const answered = new Set(members.filter((_, i) => answers[i] !== null).map((m) => m.name));
  const lists = answers.map((a) => a ?? []);
  for (const f of client.target.eventFiles ?? [])
    if (!answered.has(f.member)) lists.push(fileEvents(f.member, f.file, since, io));
  return mergeEvents(lists);
}

export interface EventsOptions {
  readonly since: number | undefined;
  readonly json: boolean;
  readonly follow: boolean;
  /** --follow stops when this aborts (Ctrl-C). */
  readonly signal?: AbortSignal;
}

const line = (e: ClusterEvent) =>
  [
    e.time,
    e.member,
    e.timeline ?? '-',
    e.kind + (e.details?.['outcome'] ? `(${String(e.details['outcome'])})` : ''),
    e.reason,
  ].join('  ');

export async function events(client: CtlClient, io: EventsIo, o: EventsOptions): Promise<void> {
  let shown = await collectEvents(client, o.since, io);
  if (!o.follow) {
    io.out(o.json ? JSON.stringify(shown, null, 2) : eventsText(shown));
    return;
  }
  const print = (es: readonly ClusterEvent[]) => {
    for (const e of es) io.out(o.json ? JSON.stringify(e) : line(e));
  };
  print(shown);
  const told = new Set<string>();
  const tell = () => {
    for (const w of writesDown(shown)) {
      const key = `${w.lostAt} ${w.newLeader}`;
      if (!o.json && !told.has(key)) io.out(writesDownText(w));
      told.add(key);
    }
  };
  tell();
  while (!o.signal?.aborted) {
    await io.sleep(FOLLOW_EVERY_MS);
    if (o.signal?.aborted) break;
    // Ask again from a little before the newest shown, so the same happening seen late by another member merges.
    const from = shown.length ? (shown.at(-1) as ClusterEvent).at - 30_000 : o.since;
    let fresh: ClusterEvent[];
    try {
      fresh = await collectEvents(client, from, io);
    } catch (err) {
      io.warn(`pgkeel ctl events: ${(err as Error).message}`);
      continue;
    }
    const keys = new Set(shown.map((e) => JSON.stringify(e)));
    const merged = mergeEvents([shown, fresh]);
    print(merged.filter((e) => !keys.has(JSON.stringify(e))));
    shown = merged.slice(-FOLLOW_KEEP);
    tell();
  }
}
