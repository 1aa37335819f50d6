import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { conflictKey, parseConflicts, parseTuple } from './conflicts-parse.js';

// Captured from a 3-site mesh (pglogical 2.4.2, PostgreSQL 15): subscriptions disabled, writes on two sites, enabled.
const P = '2026-12-03 14:36:03.149 UTC [29976] [unknown]@postgres';
const INSERT_INSERT = [
  `${P} LOG:  CONFLICT: remote INSERT on relation public.t (local index t_pkey). Resolution: apply_remote.`,
  `${P} DETAIL:  existing local tuple {id[int4]:2 n[int4]:10 v[text]:from site1} xid=756,origin=0,timestamp=2026-12-03 14:36:01.685571+00; remote tuple {id[int4]:2 n[int4]:20 v[text]:from site2} in xact origin=1,timestamp=2026-12-03 14:36:02.190609+00,commit_lsn=0/4146CD0`,
  `${P} CONTEXT:  apply INSERT from remote relation public.t in commit before 0/4146CD0, xid 758 committed at 2026-12-03 14:36:02.190609+00 (action #2) from node replorigin 1`,
];
const Q = '2026-12-03 14:36:04.503 UTC [30011] [unknown]@postgres';
const UPDATE_KEEP_LOCAL = [
  `${Q} LOG:  CONFLICT: remote UPDATE on relation public.t (local index t_pkey). Resolution: keep_local.`,
  `${Q} DETAIL:  existing local tuple {id[int4]:100 n[int4]:3 v[text]:counter} xid=759,origin=0,timestamp=2026-12-03 14:36:02.802105+00; remote tuple {id[int4]:100 n[int4]:3 v[text]:counter} in xact origin=1,timestamp=2026-12-03 14:36:02.362224+00,commit_lsn=0/41490C8`,
  `${Q} CONTEXT:  apply UPDATE from remote relation public.t in commit before 0/41490C8, xid 757 committed at 2026-12-03 14:36:02.362224+00 (action #2) from node replorigin 1`,
];
const R = '2026-12-03 14:36:45.561 UTC [31298] [unknown]@postgres';
const UPDATE_DELETE = [
  `${R} LOG:  CONFLICT: remote UPDATE on relation public.t replica identity index t_pkey (tuple not found). Resolution: skip.`,
  `${R} DETAIL:  remote tuple {id[int4]:500 n[int4]:5 v[text]:ud} in xact origin=1,timestamp=2026-12-03 14:36:44.969952+00,commit_lsn=0/414D3A8`,
  `${R} CONTEXT:  apply UPDATE from remote relation public.t in commit before 0/414D3A8, xid 769 committed at 2026-12-03 14:36:44.969952+00 (action #2) from node replorigin 1`,
];
const S = '2026-12-03 14:36:35.570 UTC [30094] [unknown]@postgres';
const DELETE_DELETE = [
  `${S} LOG:  CONFLICT: remote DELETE on relation public.t replica identity index t_pkey (tuple not found). Resolution: skip.`,
  `${S} DETAIL:  remote tuple {id[int4]:300 n[int4]:(null) v[text]:(null)} in xact origin=2,timestamp=2026-12-03 14:36:35.569649+00,commit_lsn=0/414CFC8`,
  `${S} CONTEXT:  apply (unknown action) from remote relation public.t in commit before 0/414CFC8, xid 765 committed at 2026-12-03 14:36:35.569649+00 (action #2) from node replorigin 2`,
];
const NOISE = [
  '2026-12-03 14:36:38.109 UTC [31012] [unknown]@postgres LOG:  starting apply for subscription mesh_site1_site3',
  '2026-12-03 14:36:38.159 UTC [31014] postgres@postgres DETAIL:  There are no running transactions.',
];
const pkId = () => ['id'];
const text = (...groups: string[][]) => `${groups.flat().join('\n')}\n`;

describe('pglogical conflict log lines', () => {
  it('reads an insert_insert with both tuples, origins and commit timestamps', () => {
    const { conflicts, consumed } = parseConflicts(text(NOISE, INSERT_INSERT), pkId);
    assert.equal(conflicts.length, 1);
    const c = conflicts[0];
    assert.ok(c);
    assert.equal(c.type, 'insert_insert');
    assert.equal(c.table, 'public.t');
    assert.equal(c.index, 't_pkey');
    assert.equal(c.resolution, 'apply_remote');
    assert.equal(c.key, '2');
    assert.equal(c.pid, 29976);
    assert.equal(c.at, Date.parse('2026-12-03T14:36:03.149Z'));
    assert.deepEqual(c.local, {
      tuple: 'id[int4]:2 n[int4]:10 v[text]:from site1',
      xid: 756,
      origin: 0,
      commitTs: '2026-12-03 14:36:01.685571+00',
    });
    assert.deepEqual(c.remote, {
      tuple: 'id[int4]:2 n[int4]:20 v[text]:from site2',
      origin: 1,
      commitTs: '2026-12-03 14:36:02.190609+00',
      commitLsn: '0/4146CD0',
    });
    assert.equal(c.raw, INSERT_INSERT.slice(0, 2).join('\n'));
    assert.equal(consumed, text(NOISE, INSERT_INSERT).length);
  });

  it('names the four types in pglogical words, with the resolution', () => {
    const { conflicts } = parseConflicts(text(INSERT_INSERT, UPDATE_KEEP_LOCAL, UPDATE_DELETE, DELETE_DELETE), pkId);
    assert.deepEqual(
      conflicts.map((c) => [c.type, c.resolution, c.key, c.local?.origin ?? null, c.remote.origin]),
      [
        ['insert_insert', 'apply_remote', '2', 0, 1],
        ['update_update', 'keep_local', '100', 0, 1],
        ['update_delete', 'skip', '500', null, 1],
        ['delete_delete', 'skip', '300', null, 2],
      ],
    );
  });

  it('keeps the tuple text as the key when the primary key is not known or not in the tuple', () => {
    const { conflicts } = parseConflicts(text(DELETE_DELETE));
    assert.equal(conflicts[0]?.key, 'id[int4]:300 n[int4]:(null) v[text]:(null)');
    assert.equal(conflictKey('n[int4]:1', ['id']), 'n[int4]:1');
  });

  it('leaves a CONFLICT line whose DETAIL has not been written yet for the next read', () => {
    const partial = text(NOISE, [INSERT_INSERT[0] as string]);
    const first = parseConflicts(partial, pkId);
    assert.equal(first.conflicts.length, 0);
    assert.equal(first.consumed, text(NOISE).length);
    // An unfinished last line is never read either.
    const cut = text(NOISE) + (INSERT_INSERT[0] as string).slice(0, 40);
    assert.equal(parseConflicts(cut, pkId).consumed, text(NOISE).length);
    const whole = text(INSERT_INSERT);
    assert.equal(parseConflicts(whole, pkId).conflicts.length, 1);
  });

  it('splits a tuple into columns, values with spaces and (null) included', () => {
    assert.deepEqual(parseTuple('id[int4]:2 v[text]:from site 1 w[text]:(null)'), [
      { name: 'id', type: 'int4', value: '2' },
      { name: 'v', type: 'text', value: 'from site 1' },
      { name: 'w', type: 'text', value: null },
    ]);
  });

  it('a composite key reads as row(…)::text does, quoting where PostgreSQL would', () => {
    const t = 'a[int4]:1 b[text]:x y c[int4]:7';
    assert.equal(conflictKey(t, ['a', 'b']), '(1,"x y")');
    assert.equal(conflictKey(t, ['a', 'c']), '(1,7)');
  });
});
