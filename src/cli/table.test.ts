import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StatusJson } from '../local/status.js';
import { formatBytes, statusTable } from './status-text.js';
import { renderTable } from './table.js';

describe('renderTable', () => {
  it('pads each column to its widest cell, rules the header, trims trailing blanks', () => {
    assert.equal(
      renderTable([
        ['A', 'Bb'],
        ['xyz', '1'],
      ]),
      'A    Bb\n---  --\nxyz  1',
    );
    assert.equal(
      renderTable([
        ['Member', 'Tags'],
        ['n1', ''],
      ]),
      'Member  Tags\n------  ----\nn1',
    );
  });
});

describe('pgkeel status as text', () => {
  it('formatBytes: B, kB and MB with one decimal; unknown for null', () => {
    assert.deepEqual([null, 0, 1023, 1536, 3 * 1024 * 1024].map(formatBytes), [
      'unknown',
      '0 B',
      '1023 B',
      '1.5 kB',
      '3.0 MB',
    ]);
  });

  it('statusTable: no lag shown for the leader, the replica lag in readable units', () => {
    const member = { host: '127.0.0.1', api_url: '', pid: 1, data_dir: '/d', timeline: 2 };
    const s: StatusJson = {
      scope: 'pg',
      etcd: '127.0.0.1:2379',
      user: 'postgres',
      passfile: '/p',
      members: [
        { ...member, name: 'node1', role: 'leader', state: 'running', port: 5432, lag_bytes: 0 },
        {
          ...member,
          name: 'node2',
          role: 'replica',
          state: 'streaming',
          port: 5433,
          lag_bytes: 2048,
          lag_seconds: 1.25,
          timeline: null,
        },
      ],
      health: { verdict: 'healthy', reason: 'leader node1 running with 1 streaming replica' },
      last_failover: { time: '2026-12-03T08:00:00.000Z', from: 'node2', to: 'node1', timeline: 2, reason: 'x' },
    };
    assert.equal(
      statusTable(s),
      [
        'Member  Role     State      Host:Port       TL  Lag     Lag (s)',
        '------  -------  ---------  --------------  --  ------  -------',
        'node1   leader   running    127.0.0.1:5432  2',
        'node2   replica  streaming  127.0.0.1:5433      2.0 kB  1.25',
        'health: healthy (leader node1 running with 1 streaming replica)',
        'last failover: 2026-12-03T08:00:00.000Z node2 -> node1 (timeline 2)',
      ].join('\n'),
    );
  });
});
