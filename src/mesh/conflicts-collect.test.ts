import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../lib/log.js';
import { ConflictCollector } from './conflicts-collect.js';
import type { MeshRecord } from './plan.js';

const P = '2026-12-03 14:36:03.149 UTC [29976] [unknown]@postgres';
const CONFLICT = [
  `${P} LOG:  CONFLICT: remote INSERT on relation public.t (local index t_pkey). Resolution: apply_remote.`,
  `${P} DETAIL:  existing local tuple {id[int4]:2 v[text]:from site1} xid=756,origin=0,timestamp=2026-12-03 14:36:01.685571+00; remote tuple {id[int4]:2 v[text]:from site2} in xact origin=1,timestamp=2026-12-03 14:36:02.190609+00,commit_lsn=0/4146CD0`,
].join('\n');
const NOISE = '2026-12-03 14:36:38.109 UTC [31012] [unknown]@postgres LOG:  starting apply for subscription x\n';

const record: MeshRecord = {
  version: 1,
  engine: 'pglogical',
  database: 'postgres',
  sites: [],
  links: [{ from: 'site2', to: 'site1', subscription: 's', slot: 'pgl_s', origin: 'pgl_s' }],
};

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-collect-'));
  const logFile = join(dir, 'postgresql.log');
  const inserted: unknown[][] = [];
  let failInsert = false;
  const make = (mesh: MeshRecord | null = record) =>
    new ConflictCollector({
      scope: 'site1',
      member: 'node1',
      logFile,
      offsetFile: join(dir, 'offset'),
      readRecord: async () => mesh,
      log: createLogger({ level: 'error', write: () => undefined }),
      now: () => 0,
      connect: async () => ({
        query: async <R extends Record<string, unknown>>(text: string, params: readonly unknown[] = []) => {
          if (text.includes('indisprimary')) return [{ t: 'public.t', cols: ['id'] }] as unknown as R[];
          if (text.includes('pg_replication_origin')) return [{ id: 1, name: 'pgl_s' }] as unknown as R[];
          if (text.includes('INSERT INTO')) {
            if (failInsert) throw new Error('relation "pgkeel_mesh.conflicts" does not exist');
            inserted.push(JSON.parse(params[0] as string) as unknown[]);
          }
          return [];
        },
        close: async () => undefined,
      }),
    });
  return {
    dir,
    logFile,
    inserted,
    make,
    failNext: (v: boolean) => {
      failInsert = v;
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const total = (c: ConflictCollector) =>
  c
    .metrics('scope="site1",name="node1"')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/^pgkeel_mesh_conflicts_total/, ''));

describe('the agent conflict collector', () => {
  it('on the leader stores each conflict with its sites and counts it; a restart goes on from the offset', async () => {
    using s = setup();
    writeFileSync(s.logFile, `${NOISE}${CONFLICT}\n${NOISE}`);
    const c = s.make();
    await c.tick(true);
    assert.equal(s.inserted.length, 1);
    const row = (s.inserted[0] as Array<Record<string, unknown>>)[0];
    assert.equal(row?.['relation'], 'public.t');
    assert.equal(row?.['key'], '2');
    assert.equal(row?.['type'], 'insert_insert');
    assert.equal(row?.['local_origin'], 'site1');
    assert.equal(row?.['remote_origin'], 'site2');
    assert.deepEqual(total(c), [
      '{scope="site1",name="node1",type="insert_insert",resolution="apply_remote",table="public.t"} 1',
    ]);
    await c.tick(true);
    assert.equal(s.inserted.length, 1, 'nothing read twice');
    const again = s.make();
    await again.tick(true);
    assert.equal(s.inserted.length, 1, 'a new collector starts at the saved offset');
    appendFileSync(s.logFile, `${CONFLICT}\n${NOISE}`);
    await again.tick(true);
    assert.equal(s.inserted.length, 2);
  });

  it('a failed insert keeps the offset: the same conflict is stored and counted once, on the retry', async () => {
    using s = setup();
    writeFileSync(s.logFile, `${CONFLICT}\n${NOISE}`);
    const c = s.make();
    s.failNext(true);
    await c.tick(true);
    assert.deepEqual(total(c), []);
    assert.throws(() => readFileSync(join(s.dir, 'offset')));
    s.failNext(false);
    await c.tick(true);
    assert.equal(s.inserted.length, 1);
    assert.equal(total(c).length, 1);
  });

  it('a member that does not lead reads nothing until it leads; a truncated log is read from its start', async () => {
    using s = setup();
    writeFileSync(s.logFile, `${CONFLICT}\n${NOISE}`);
    const c = s.make();
    await c.tick(false);
    assert.equal(s.inserted.length, 0);
    assert.deepEqual(total(c), []);
    await c.tick(true);
    assert.equal(s.inserted.length, 1);
    assert.match(total(c)[0] ?? '', / 1$/);
    writeFileSync(s.logFile, `${CONFLICT}\n${NOISE.slice(0, 20)}\n`);
    await c.tick(true);
    assert.match(total(c)[0] ?? '', / 2$/);
    const outside = s.make(null);
    await outside.tick(true);
    assert.deepEqual(outside.metrics('x="y"'), []);
  });

  it('steps over a line longer than a whole read, then reads the conflicts after it', async () => {
    using s = setup();
    writeFileSync(s.logFile, `${'x'.repeat((1 << 20) + 10)}\n${CONFLICT}\n${NOISE}`);
    const c = s.make();
    for (let i = 0; i < 3; i++) await c.tick(true);
    assert.equal(s.inserted.length, 1);
  });
});
