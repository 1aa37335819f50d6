import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkText, compareDigests, differingKeys, type SiteDigests } from './compare.js';

const d = (entries: Array<[string, number, string]>): SiteDigests =>
  new Map(entries.map(([t, rows, hash]) => [t, { rows, hash }]));

describe('compareDigests', () => {
  it('equal counts and hashes on every site: nothing differs', () => {
    const r = compareDigests(
      new Map([
        [
          'a',
          d([
            ['t', 3, '99'],
            ['u', 0, '0'],
          ]),
        ],
        [
          'b',
          d([
            ['u', 0, '0'],
            ['t', 3, '99'],
          ]),
        ],
      ]),
    );
    assert.deepEqual(r, { tables: ['t', 'u'], differing: [] });
  });

  it('names a table whose hash differs with the same count, and one missing on a site', () => {
    const r = compareDigests(
      new Map([
        [
          'a',
          d([
            ['t', 3, '99'],
            ['u', 1, '5'],
          ]),
        ],
        ['b', d([['t', 3, '98']])],
      ]),
    );
    assert.deepEqual(r.differing, [
      { table: 't', rows: { a: 3, b: 3 } },
      { table: 'u', rows: { a: 1, b: null } },
    ]);
  });
});

describe('differingKeys', () => {
  it('finds rows missing on one site and rows that differ, in key order', () => {
    const r = differingKeys(
      new Map([
        [
          'a',
          new Map([
            ['1', 'x'],
            ['2', 'y'],
            ['10', 'z'],
          ]),
        ],
        [
          'b',
          new Map([
            ['1', 'x'],
            ['2', 'Y'],
            ['3', 'w'],
          ]),
        ],
      ]),
    );
    assert.deepEqual(r, { keys: ['2', '3', '10'], total: 3 });
  });

  it('lists at most the limit but counts them all', () => {
    const a = new Map(Array.from({ length: 50 }, (_, i) => [String(i), 'h'] as [string, string]));
    const r = differingKeys(
      new Map([
        ['a', a],
        ['b', new Map()],
      ]),
      10,
    );
    assert.equal(r.keys.length, 10);
    assert.equal(r.total, 50);
  });
});

describe('checkText', () => {
  it('says converged, or names tables, counts and keys', () => {
    assert.deepEqual(checkText({ converged: true, tables: ['t'], differing: [] }), [
      'converged: 1 table(s) equal on every site (t)',
    ]);
    assert.deepEqual(checkText({ converged: true, tables: [], differing: [] }), [
      'converged: no replicated tables yet (create the same tables on every site, then run `pgkeel mesh create` again)',
    ]);
    assert.deepEqual(
      checkText({
        converged: false,
        tables: ['t'],
        differing: [{ table: 't', rows: { a: 2, b: null }, keys: ['7'], keysDiffering: 4 }],
      }),
      ['diverged: 1 of 1 table(s) differ', '  t: a 2 rows, b missing', '    keys differing (4, first 1): 7'],
    );
  });
});
