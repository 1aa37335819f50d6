import { describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { Cluster, Member } from '../dcs/layout.js';
import { stamp, type ClusterEvent } from '../observe/events/event.js';
import type { CtlClient, RestAnswer } from './client.js';
import { CtlError } from './errors.js';
import { events } from './events.js';

const T0 = Date.parse('2026-12-03T03:00:00Z');

const ev = (s: number, member: string, kind: ClusterEvent['kind'], reason = `${kind} on ${member}`): ClusterEvent =>
  stamp({ at: T0 + s * 1000, member, timeline: 1, kind, reason, details: { observer: member } });

/** A client whose members answer from `lists` (a function: what they hold at each call); node3 never answers. */
function fakeClient(
  lists: () => Record<string, ClusterEvent[]>,
  paths: string[],
  eventFiles: { member: string; file: string }[] = [],
): CtlClient {
  const m = (name: string): [string, Member] => [
    name,
    {
      name,
      record: { conn_url: '', api_url: `http://${name}:8008/patroni`, state: 'running', role: 'replica' },
      modRevision: 1,
      lease: '1',
    },
  ];
  const members = new Map([m('node1'), m('node2'), m('node3')]);
  return {
    target: { eventFiles },
    cluster: async () => ({ members }) as unknown as Cluster,
    rest: async (mem: Member, _method: string, path: string): Promise<RestAnswer> => {
      paths.push(`${mem.name} ${path}`);
      if (mem.name === 'node3') throw new CtlError('CTL_REST_UNREACHABLE', 'GET /events on member node3 failed');
      const since = Number(new URL(path, 'http://x').searchParams.get('since') ?? 0);
      return { code: 200, text: JSON.stringify((lists()[mem.name] ?? []).filter((e) => e.at >= since)) };
    },
  } as unknown as CtlClient;
}

function io() {
  const out: string[] = [];
  const warn: string[] = [];
  return { out, warn, io: { out: (l: string) => out.push(l), warn: (l: string) => warn.push(l), now: () => T0 } };
}

describe('ctl events', () => {
  it('merges the reachable members in time order and names the unreachable one on stderr', async () => {
    const paths: string[] = [];
    const client = fakeClient(
      () => ({ node1: [ev(1, 'node1', 'restart'), ev(5, 'node1', 'stop')], node2: [ev(3, 'node2', 'clone')] }),
      paths,
    );
    const o = io();
    await events(client, { ...o.io, sleep: async () => {} }, { since: T0, json: true, follow: false });
    const got = JSON.parse(o.out.join('\n')) as ClusterEvent[];
    assert.deepEqual(
      got.map((e) => `${e.member} ${e.kind}`),
      ['node1 restart', 'node2 clone', 'node1 stop'],
    );
    assert.ok(paths.includes(`node1 /events?since=${T0}`), paths.join());
    assert.deepEqual(o.warn, ['pgkeel ctl events: GET /events on member node3 failed']);
  });

  it('reads the events file of a member that does not answer, or has left the DCS, when it is on this machine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-ctl-events-'));
    try {
      const lines = (es: ClusterEvent[]) => es.map((e) => JSON.stringify(e)).join('\n') + '\n';
      writeFileSync(join(dir, 'node3.jsonl'), lines([ev(-5, 'node3', 'restart'), ev(2, 'node3', 'crash')]));
      writeFileSync(join(dir, 'node4.jsonl'), lines([ev(4, 'node4', 'stop')]));
      const files = ['node1', 'node3', 'node4', 'node5'].map((m) => ({ member: m, file: join(dir, `${m}.jsonl`) }));
      const client = fakeClient(() => ({ node1: [ev(1, 'node1', 'restart')], node2: [] }), [], files);
      const o = io();
      await events(client, { ...o.io, sleep: async () => {} }, { since: T0, json: true, follow: false });
      const got = JSON.parse(o.out.join('\n')) as ClusterEvent[];
      // node1 answered (its file is not read); node3's event before `since` is left out; node5 has no file.
      assert.deepEqual(
        got.map((e) => `${e.member} ${e.kind}`),
        ['node1 restart', 'node3 crash', 'node4 stop'],
      );
      assert.ok(o.warn.some((w) => w.includes(`node3's events read from its agent's file ${dir}/node3.jsonl`)));
      assert.ok(!o.warn.some((w) => w.includes('node1.jsonl') || w.includes('node5')), o.warn.join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--follow prints each new event once, as it arrives, until stopped', async () => {
    const held: Record<string, ClusterEvent[]> = { node1: [ev(1, 'node1', 'restart')], node2: [] };
    const stop = new AbortController();
    let polls = 0;
    const o = io();
    const sleep = async () => {
      polls++;
      if (polls === 1) held['node2']?.push(ev(40, 'node2', 'promote'));
      if (polls === 3) stop.abort();
    };
    await events(
      fakeClient(() => held, []),
      { ...o.io, sleep },
      { since: undefined, json: true, follow: true, signal: stop.signal },
    );
    assert.deepEqual(
      o.out.map((l) => (JSON.parse(l) as ClusterEvent).kind),
      ['restart', 'promote'],
    );
    assert.equal(polls, 3);
  });
});
