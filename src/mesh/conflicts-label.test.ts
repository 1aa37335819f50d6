import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ConflictRow, conflictsText, labelKeys, silentLosses } from './conflicts-label.js';

let ids = 0;
const row = (r: Partial<ConflictRow>): ConflictRow => ({
  id: r.id ?? `c${++ids}`,
  site: 'site1',
  member: 'node1',
  at: '2026-12-03T14:36:03.149Z',
  table: 'public.t',
  key: '2',
  type: 'insert_insert',
  resolution: 'apply_remote',
  local_origin: null,
  remote_origin: null,
  local_commit_ts: null,
  remote_commit_ts: null,
  local_tuple: null,
  remote_tuple: null,
  ...r,
});

// The insert/insert of the captured run as each site logged it: site1's row (older) lost everywhere.
const insertInsert = [
  row({
    site: 'site1',
    resolution: 'apply_remote',
    local_origin: 'site1',
    remote_origin: 'site2',
    local_commit_ts: '2026-12-03 14:36:01.685571+00',
    remote_commit_ts: '2026-12-03 14:36:02.190609+00',
    local_tuple: 'id[int4]:2 v[text]:from site1',
    remote_tuple: 'id[int4]:2 v[text]:from site2',
  }),
  row({
    site: 'site2',
    resolution: 'keep_local',
    local_origin: 'site2',
    remote_origin: 'site1',
    local_commit_ts: '2026-12-03 14:36:02.190609+00',
    remote_commit_ts: '2026-12-03 14:36:01.685571+00',
    local_tuple: 'id[int4]:2 v[text]:from site2',
    remote_tuple: 'id[int4]:2 v[text]:from site1',
  }),
  row({
    site: 'site3',
    resolution: 'apply_remote',
    local_origin: 'site1',
    remote_origin: 'site2',
    local_commit_ts: '2026-12-03 14:36:01.685571+00',
    remote_commit_ts: '2026-12-03 14:36:02.190609+00',
    local_tuple: 'id[int4]:2 v[text]:from site1',
    remote_tuple: 'id[int4]:2 v[text]:from site2',
  }),
];

const concurrentIncrement = [
  // site1: its own update (local) replaced by site2's newer one — what a sequential edit logs too: not listed.
  row({
    type: 'update_update',
    key: '100',
    site: 'site1',
    resolution: 'apply_remote',
    local_origin: 'site1',
    remote_origin: 'site2',
  }),
  // site2: site1's older update arrives and is discarded: the lost increment.
  row({
    type: 'update_update',
    key: '100',
    site: 'site2',
    resolution: 'keep_local',
    local_origin: 'site2',
    remote_origin: 'site1',
    local_tuple: 'id[int4]:100 n[int4]:3',
    remote_tuple: 'id[int4]:100 n[int4]:3',
    remote_commit_ts: '2026-12-03 14:36:02.362224+00',
  }),
  // site3 applying site1's after site2's (reordered, not a loss on its own): keep_local over a row from site2.
  row({
    type: 'update_update',
    key: '100',
    site: 'site3',
    resolution: 'keep_local',
    local_origin: 'site2',
    remote_origin: 'site1',
  }),
];

describe('silent losses in the conflict history', () => {
  it('an insert/insert is one loss, the older row, however many sites logged it', () => {
    const l = silentLosses(insertInsert);
    assert.equal(l.length, 1);
    assert.equal(l[0]?.kind, 'insert_insert');
    assert.equal(l[0]?.lost.site, 'site1');
    assert.equal(l[0]?.kept.site, 'site2');
    assert.equal(l[0]?.lost.tuple, 'id[int4]:2 v[text]:from site1');
  });

  it('concurrent increments: the keep_local over a locally written row is the overwritten update', () => {
    const l = silentLosses(concurrentIncrement);
    assert.deepEqual(
      l.map((x) => [x.kind, x.key, x.lost.site, x.kept.site]),
      [['update_overwritten', '100', 'site1', 'site2']],
    );
  });

  it('delete/delete and update/delete are counted, not losses', () => {
    assert.deepEqual(
      silentLosses([row({ type: 'delete_delete', resolution: 'skip' }), row({ type: 'update_delete' })]),
      [],
    );
  });
});

describe('labels for the keys mesh check found differing', () => {
  const sites = ['site1', 'site2', 'site3'];
  it('a ghost row: the key on one site, a delete_delete logged for it', () => {
    const labels = labelKeys(
      [{ table: 't', sites, presence: new Map([['300', ['site3']]]) }],
      [row({ type: 'delete_delete', key: '300', site: 'site3', resolution: 'skip' })],
      [],
    );
    assert.equal(labels[0]?.label, 'ghost_row');
    assert.match(
      labels[0]?.text ?? '',
      /ghost row: a DELETE reached a site before the INSERT.*delete_delete logged on site3.*present on site3 only/,
    );
  });

  it('rows on some sites only after a queued TRUNCATE of the table', () => {
    const labels = labelKeys(
      [{ table: 't', sites, presence: new Map([['400', ['site1']]]) }],
      [],
      [{ table: 'public.t', at: '2026-12-03 14:36:58+00' }],
    );
    assert.equal(labels[0]?.label, 'after_truncate');
    assert.match(labels[0]?.text ?? '', /present on site1 only, after a TRUNCATE of t at 2026-12-03 14:36:58\+00/);
  });

  it('otherwise where the key is, or that the values differ', () => {
    const labels = labelKeys(
      [
        {
          table: 't',
          sites,
          presence: new Map([
            ['7', ['site1', 'site2']],
            ['8', sites],
          ]),
        },
      ],
      [row({ type: 'delete_delete', key: '9' })],
      [],
    );
    assert.deepEqual(
      labels.map((l) => [l.key, l.label]),
      [
        ['7', 'on_some_sites_only'],
        ['8', 'values_differ'],
      ],
    );
  });

  it('the check section: counts by type, then the losses and labels', () => {
    const rows = [...insertInsert, ...concurrentIncrement];
    const lines = conflictsText('2026-12-03 13:36:00 UTC', rows, [
      { table: 't', key: '300', label: 'ghost_row', text: 'ghost row: …' },
    ]);
    assert.equal(lines[0], 'conflicts since 2026-12-03 13:36:00 UTC: 6 (insert_insert 3, update_update 3)');
    assert.match(
      lines[1] ?? '',
      /^ {2}lost: insert_insert on public\.t key 2: site1's row was lost \{id\[int4\]:2 v\[text\]:from site1\}; kept site2's/,
    );
    assert.match(
      lines[2] ?? '',
      /^ {2}lost: update_update on public\.t key 100: an update was overwritten — site1's update was lost/,
    );
    assert.equal(lines[3], '  t key 300: ghost row: …');
    assert.deepEqual(conflictsText('x', [], []), ['conflicts since x: 0']);
  });
});
