import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  firstAbove,
  planOffset,
  planSnowflake,
  planText,
  type SequenceState,
  sequenceProblems,
  snowflakeBody,
  snowflakeId,
  snowflakeParts,
} from './sequences.js';

const seq = (site: string, extra: Partial<SequenceState> = {}): SequenceState => ({
  site,
  table: 'public.items',
  column: 'id',
  sequence: 'public.items_id_seq',
  identity: false,
  type: 'integer',
  increment: 1n,
  next: 1n,
  maxUsed: null,
  ...extra,
});
const sites = (...l: SequenceState[]) => {
  const m = new Map<string, SequenceState[]>();
  for (const s of l) m.set(s.site, [...(m.get(s.site) ?? []), s]);
  return m;
};

describe('sequenceProblems', () => {
  it('flags every site whose increment is below the number of sites, identity included, offering the fix', () => {
    const p = sequenceProblems(sites(seq('a'), seq('b', { identity: true, increment: 1n })), 2);
    assert.deepEqual(
      p.map((x) => [x.code, x.site, x.table, x.column]),
      [
        ['MESH_SEQUENCE_COLLIDES', 'a', 'public.items', 'id'],
        ['MESH_SEQUENCE_COLLIDES', 'b', 'public.items', 'id'],
      ],
    );
    assert.match(
      p[1]?.message ?? '',
      /an identity public\.items_id_seq with INCREMENT BY 1 \(the default\).*pgkeel mesh sequences --apply/,
    );
  });

  it('flags two sites whose next values meet modulo the increment, and unequal increments', () => {
    const same = sequenceProblems(
      sites(seq('a', { increment: 10n, next: 21n }), seq('b', { increment: 10n, next: 41n })),
      2,
    );
    assert.equal(same.length, 1);
    assert.match(same[0]?.message ?? '', /sites a and b hand out values ≡ 1 \(mod 10\)/);
    const unequal = sequenceProblems(
      sites(seq('a', { increment: 10n, next: 1n }), seq('b', { increment: 12n, next: 2n })),
      2,
    );
    assert.match(unequal[0]?.message ?? '', /different increments \(a 10, b 12\)/);
  });

  it('accepts distinct residues with a large enough increment', () => {
    assert.deepEqual(
      sequenceProblems(sites(seq('a', { increment: 10n, next: 31n }), seq('b', { increment: 10n, next: 2n })), 2),
      [],
    );
  });
});

describe('planOffset', () => {
  it('restarts every site above the highest value used anywhere, at its own residue mod max(N, 10)', () => {
    assert.equal(firstAbove(0n, 1n, 10n), 1n);
    assert.equal(firstAbove(57n, 2n, 10n), 62n);
    assert.equal(firstAbove(60n, 0n, 10n), 70n);
    const p = planOffset(
      sites(seq('a', { next: 58n, maxUsed: 57n }), seq('b', { next: 3n, maxUsed: 40n, identity: true })),
      ['a', 'b'],
    );
    assert.equal(p.modulus, 10);
    assert.deepEqual(
      p.actions.map((x) => [x.site, x.sql]),
      [
        ['a', 'ALTER SEQUENCE public.items_id_seq INCREMENT BY 10 RESTART WITH 61'],
        ['b', 'ALTER TABLE public.items ALTER COLUMN "id" SET INCREMENT BY 10 RESTART WITH 62'],
      ],
    );
  });

  it('plans nothing for sites already on the scheme (idempotent) and uses N when N > 10', () => {
    const done = planOffset(sites(seq('a', { increment: 10n, next: 61n }), seq('b', { increment: 10n, next: 72n })), [
      'a',
      'b',
    ]);
    assert.deepEqual(done.actions, []);
    assert.match(planText(done).join('\n'), /nothing to change/);
    const order = Array.from({ length: 12 }, (_, i) => `s${i}`);
    assert.equal(planOffset(new Map(), order).modulus, 12);
  });
});

describe('snowflake', () => {
  it('plans a default on bigint columns (dropping an identity) and refuses integer columns', () => {
    const p = planSnowflake(sites(seq('a', { type: 'bigint', identity: true }), seq('b')), 2);
    assert.deepEqual(
      p.actions.map((x) => x.sql),
      [
        'ALTER TABLE public.items ALTER COLUMN "id" DROP IDENTITY, ALTER COLUMN "id" SET DEFAULT pgkeel_mesh.snowflake_id()',
      ],
    );
    assert.equal(p.refused[0]?.site, 'b');
    assert.match(p.refused[0]?.message ?? '', /is integer; snowflake ids need bigint/);
  });

  it('leaves an integer column alone when its sequences are already safe (offset)', () => {
    const safe = sites(seq('a', { increment: 10n, next: 1n }), seq('b', { increment: 10n, next: 2n }));
    assert.deepEqual(planSnowflake(safe, 2), { scheme: 'snowflake', actions: [], refused: [] });
  });

  it('packs 41 bits of ms, 10 of site and 12 of counter; ids from two sites never meet', () => {
    const ms = Date.UTC(2026, 11, 3, 14, 0, 0);
    const a = snowflakeId(ms, 1, 4097n);
    assert.deepEqual(snowflakeParts(a), { ms, site: 1, counter: 1 });
    assert.notEqual(snowflakeId(ms, 2, 4097n), a);
    assert.ok(snowflakeId(ms + 1, 1, 0n) > snowflakeId(ms, 1023, 4095n));
    assert.ok(snowflakeId(Date.UTC(2093, 0, 1), 1023, 4095n) < 2n ** 63n);
    assert.match(snowflakeBody(7), /\(7::bigint << 12\)/);
    assert.throws(() => snowflakeBody(1024), /outside 1\.\.1023/);
  });
});
