import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/log.js';
import { EventRecorder, eventsFileFor } from './recorder.js';
import type { EventDraft } from './event.js';
import { testState } from './fixture.js';

function tmp(): { dir: string } & Disposable {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-events-'));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

function logs() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { log, lines };
}

const draft = (i: number): EventDraft => ({
  at: 1_000_000 + i * 1000,
  member: 'node1',
  timeline: 1,
  kind: 'restart',
  reason: `restart number ${i}`,
  details: { observer: 'node1' },
});

describe('EventRecorder', () => {
  it('keeps the newest `capacity` events in memory and filters by since', () => {
    const { log } = logs();
    const r = new EventRecorder({ log, file: null, capacity: 5 });
    r.record([0, 1, 2, 3, 4, 5, 6, 7].map(draft));
    assert.deepEqual(
      r.since().map((e) => e.reason),
      [3, 4, 5, 6, 7].map((i) => `restart number ${i}`),
    );
    assert.deepEqual(
      r.since(1_000_000 + 6_000).map((e) => e.at),
      [1_006_000, 1_007_000],
    );
    assert.equal(r.since()[0]?.time, new Date(1_003_000).toISOString());
  });

  it('logs every event as one structured line', () => {
    const { log, lines } = logs();
    new EventRecorder({ log, file: null }).record([draft(1), draft(2)]);
    assert.equal(lines.length, 2);
    assert.equal(lines[0]?.['msg'], 'event restart (node1): restart number 1');
    assert.equal((lines[1]?.['event'] as { kind?: string } | undefined)?.kind, 'restart');
  });

  it('an agent restarted reads back what it recorded before', () => {
    using t = tmp();
    const file = eventsFileFor(join(t.dir, 'data'));
    assert.equal(file, join(t.dir, 'data.events.jsonl'));
    const { log } = logs();
    const a = new EventRecorder({ log, file });
    a.record([draft(1)]);
    a.record([draft(2)]);
    const b = new EventRecorder({ log, file });
    b.load();
    assert.deepEqual(b.since(), a.since());
    assert.equal(statSync(file).mode & 0o777, 0o640);
  });

  it('the file stays within its bound: trimmed to the newest events that fit in half of it', () => {
    using t = tmp();
    const file = join(t.dir, 'events.jsonl');
    const { log } = logs();
    const r = new EventRecorder({ log, file, maxFileBytes: 2000 });
    for (let i = 0; i < 100; i++) r.record([draft(i)]);
    const size = statSync(file).size;
    assert.ok(size <= 2000, `file is ${size} bytes`);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(JSON.parse(lines.at(-1) as string).reason, 'restart number 99');
    const back = new EventRecorder({ log, file });
    back.load();
    assert.equal(back.since().length, lines.length);
  });

  it('skips lines that are not events, and refuses to follow a symlink', () => {
    using t = tmp();
    const { log, lines } = logs();
    const file = join(t.dir, 'events.jsonl');
    writeFileSync(file, `not json\n{"kind":"x"}\n${JSON.stringify({ ...draft(1), time: 'x' })}\n`);
    const r = new EventRecorder({ log, file });
    r.load();
    assert.equal(r.since().length, 1);
    assert.ok(lines.some((l) => l['code'] === 'EVENTS_FILE_UNREADABLE'));

    const target = join(t.dir, 'elsewhere');
    writeFileSync(target, 'precious\n');
    const link = join(t.dir, 'link.jsonl');
    symlinkSync(target, link);
    const s = new EventRecorder({ log, file: link });
    s.load();
    s.record([draft(2)]);
    s.record([draft(3)]);
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
    assert.equal(lines.filter((l) => l['code'] === 'EVENTS_FILE_UNWRITABLE').length, 1, 'said once');
    assert.equal(s.since().length, 2, 'still kept in memory');
  });

  it('observe: derives from cycles and records only the changes', () => {
    const { log } = logs();
    const r = new EventRecorder({ log, file: null });
    const s = testState({ at: 1, me: 'node1', leader: null, config: {} });
    assert.equal(r.observe(s, null).length, 0);
    assert.equal(r.observe({ ...s, at: 2 }, null).length, 0);
    const got = r.observe({ ...s, at: 3, holdsLock: true, leader: 'node1' }, { summary: 'acquired', actions: [] });
    assert.deepEqual(
      got.map((e) => [e.kind, e.reason]),
      [['leader_acquired', 'acquired']],
    );
  });
});
