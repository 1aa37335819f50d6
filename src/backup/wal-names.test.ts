import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compareWalNames,
  historyFileName,
  nextSegment,
  parseHistory,
  parseWalName,
  segmentName,
  segmentNumber,
  segmentOfLsn,
  segmentRange,
  segmentStartLsn,
  walRepoPath,
} from './wal-names.js';

const MB = 1024 * 1024;

test('parseWalName: every kind of WAL file, and what is not one', () => {
  const cases: [string, ReturnType<typeof parseWalName>][] = [
    ['000000010000000A000000FF', { name: '000000010000000A000000FF', kind: 'segment', timeline: 1, log: 10, seg: 255 }],
    [
      '00000002000000000000000C.partial',
      { name: '00000002000000000000000C.partial', kind: 'partial', timeline: 2, log: 0, seg: 12 },
    ],
    [
      '000000010000000000000002.00000028.backup',
      { name: '000000010000000000000002.00000028.backup', kind: 'backup', timeline: 1, log: 0, seg: 2 },
    ],
    ['0000000A.history', { name: '0000000A.history', kind: 'history', timeline: 10 }],
    ['000000000000000000000001', null], // timeline 0 does not exist
    ['00000000.history', null],
    ['000000010000000a000000ff', null], // PostgreSQL writes upper case
    ['00000001000000000000001', null],
    ['0000000100000000000000011', null],
    ['000000010000000000000001.gz', null],
    ['RECOVERYXLOG', null],
    ['archive_status', null],
    ['../00000001.history', null],
  ];
  for (const [name, want] of cases) assert.deepEqual(parseWalName(name), want, name);
});

test('segment ↔ LSN with 16 MB segments', () => {
  const cases: [number, string, string][] = [
    [1, '0/0', '000000010000000000000000'],
    [1, '0/3000158', '000000010000000000000003'],
    [1, '0/FFFFFFF', '00000001000000000000000F'],
    [1, '0/1000000', '000000010000000000000001'],
    [3, '16/B374D848', '0000000300000016000000B3'],
    [1, '1/0', '000000010000000100000000'],
  ];
  for (const [tli, lsn, name] of cases) assert.equal(segmentOfLsn(tli, lsn), name, lsn);
  assert.equal(segmentStartLsn('0000000300000016000000B3'), 0x16_b300_0000);
  assert.equal(segmentNumber('000000010000000100000000'), 256);
  assert.equal(segmentName(1, 256), '000000010000000100000000');
  assert.equal(segmentNumber('00000001000000000000000C.partial'), 12);
});

test('segment ↔ LSN with other wal_segment_size values', () => {
  assert.equal(segmentOfLsn(1, '1/FC000000', 64 * MB), '00000001000000010000003F');
  assert.equal(nextSegment('00000001000000010000003F', 64 * MB), '000000010000000200000000');
  assert.equal(segmentOfLsn(1, '1/2FFFFF', MB), '000000010000000100000002');
  assert.equal(segmentName(1, 4095, MB), '000000010000000000000FFF');
  assert.equal(segmentOfLsn(1, '1/0', 1024 * MB), '000000010000000100000000');
  assert.throws(() => segmentNumber('000000010000000000000040', 64 * MB), /not a segment name for/);
  assert.throws(() => segmentName(1, 1, 3 * MB), /power of two/);
  assert.throws(() => segmentOfLsn(1, 0, 512 * 1024), /power of two/);
});

test('nextSegment crosses a log id', () => {
  assert.equal(nextSegment('000000010000000000000001'), '000000010000000000000002');
  assert.equal(nextSegment('0000000100000000000000FF'), '000000010000000100000000');
  assert.equal(nextSegment('00000004000000AB000000FE'), '00000004000000AB000000FF');
  assert.throws(() => nextSegment('00000002.history'), /not a WAL segment/);
});

test('segmentRange: inclusive, and exclusive of a boundary end', () => {
  assert.deepEqual(segmentRange(1, '0/2000028', '0/4000100'), [
    '000000010000000000000002',
    '000000010000000000000003',
    '000000010000000000000004',
  ]);
  assert.deepEqual(segmentRange(1, '0/2000028', '0/4000000', { endExclusive: true }), [
    '000000010000000000000002',
    '000000010000000000000003',
  ]);
  assert.deepEqual(segmentRange(1, '0/2000028', '0/4000000'), [
    '000000010000000000000002',
    '000000010000000000000003',
    '000000010000000000000004',
  ]);
  assert.deepEqual(segmentRange(2, '0/FF000000', '1/1000000'), [
    '0000000200000000000000FF',
    '000000020000000100000000',
    '000000020000000100000001',
  ]);
  assert.deepEqual(segmentRange(1, '0/5000000', '0/4000000'), []);
  assert.throws(() => segmentRange(1, 'x', '0/1'), /invalid LSN/);
});

test('walRepoPath follows the repository layout', () => {
  assert.equal(walRepoPath('000000010000000A000000FF'), 'wal/000000010000000A/000000010000000A000000FF');
  assert.equal(walRepoPath('00000002.history'), 'wal/history/00000002.history');
  assert.equal(
    walRepoPath('000000010000000000000002.00000028.backup'),
    'wal/0000000100000000/000000010000000000000002.00000028.backup',
  );
  assert.equal(
    walRepoPath('00000001000000000000000C.partial'),
    'wal/0000000100000000/00000001000000000000000C.partial',
  );
  assert.throws(() => walRepoPath('../etc/passwd'), /not a WAL file name/);
  assert.equal(historyFileName(26), '0000001A.history');
});

test('compareWalNames: history first, then timeline and position', () => {
  const names = [
    '000000020000000000000005',
    '000000010000000000000005.partial',
    '00000002.history',
    '000000010000000000000004',
    '000000010000000100000000',
  ];
  assert.deepEqual([...names].sort(compareWalNames), [
    '00000002.history',
    '000000010000000000000004',
    '000000010000000000000005.partial',
    '000000010000000100000000',
    '000000020000000000000005',
  ]);
});

test('parseHistory reads what PostgreSQL writes, skips comments, refuses garbage', () => {
  const text = '1\t0/3000158\tno recovery target specified\n\n# a comment\n2\t1/A0000028\tat restore point "x"\n';
  assert.deepEqual(parseHistory(text), [
    { timeline: 1, switchpoint: 0x3000158, switchpointText: '0/3000158', reason: 'no recovery target specified' },
    {
      timeline: 2,
      switchpoint: 0x1_a000_0028,
      switchpointText: '1/A0000028',
      reason: 'at restore point "x"',
    },
  ]);
  assert.deepEqual(parseHistory(''), []);
  assert.deepEqual(parseHistory('3\t0/5000000\n'), [
    { timeline: 3, switchpoint: 0x5000000, switchpointText: '0/5000000', reason: '' },
  ]);
  assert.throws(() => parseHistory('1 0/3000158 x\nnot a line\n'), /line 2 is malformed/);
  assert.throws(() => parseHistory('2\t0/1\tx\n1\t0/2\ty\n'), /does not increase/);
});
