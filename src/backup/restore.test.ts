import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { BackupRecord } from './catalog.js';
import { isBackupError } from './errors.js';
import { recoveryOf } from './recovery.js';
import { assertEmptyTarget, chooseBackup, parseTablespaceMap, restorePlan } from './restore.js';

function rec(id: string, over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    id,
    type: 'full',
    parent: null,
    member: 'node1',
    timeline: 1,
    start_lsn: '0/1000000',
    stop_lsn: '0/2000000',
    start_time: '2026-12-01T10:00:00.000Z',
    stop_time: '2026-12-01T10:05:00.000Z',
    bytes: 100,
    repo_bytes: 50,
    duration_s: 300,
    status: 'ok',
    system_identifier: '7',
    pg_version: 15,
    compression: 'lz4',
    wal_start: null,
    wal_stop: null,
    files: [
      { name: 'backup_manifest', size: 1, sha256: '' },
      { name: '16390.tar.lz4', size: 2, sha256: '' },
      { name: 'base.tar.lz4', size: 3, sha256: '' },
      { name: '16385.tar.lz4', size: 4, sha256: '' },
    ],
    ...over,
  };
}

describe('restorePlan', () => {
  test('a full backup: its base archive, then its tablespaces in oid order', () => {
    assert.deepEqual(restorePlan([rec('20261201-100000F')]), [
      { backup: '20261201-100000F', stored: 'backups/20261201-100000F/base.tar.lz4', size: 3, into: { kind: 'base' } },
      {
        backup: '20261201-100000F',
        stored: 'backups/20261201-100000F/16385.tar.lz4',
        size: 4,
        into: { kind: 'tablespace', oid: '16385' },
      },
      {
        backup: '20261201-100000F',
        stored: 'backups/20261201-100000F/16390.tar.lz4',
        size: 2,
        into: { kind: 'tablespace', oid: '16390' },
      },
    ]);
  });

  test('a backup without a base archive, or an incremental one without its archive, is refused by name', () => {
    assert.throws(
      () => restorePlan([rec('20261201-100000F', { files: [] })]),
      (e: unknown) => isBackupError(e, 'RESTORE_FAILED') && /no base archive/.test((e as Error).message),
    );
    const full = rec('20261201-100000F');
    const bare = rec('20261201-100000F_20261202-100000I', { type: 'incr', parent: full.id, files: [] });
    assert.throws(
      () => restorePlan([full, bare]),
      (e: unknown) => isBackupError(e, 'RESTORE_FAILED') && /no archive of changed files/.test((e as Error).message),
    );
  });

  test('an incremental chain: the full backup, then each increment (after which its deletions apply)', () => {
    const full = rec('20261201-100000F', { files: [{ name: 'base.tar.lz4', size: 1, sha256: '' }] });
    const incr = rec('20261201-100000F_20261202-100000I', {
      type: 'incr',
      parent: full.id,
      files: [
        { name: 'incr.tar.lz4', size: 10, sha256: '' },
        { name: 'backup_label', size: 1, sha256: '' },
        { name: 'filelist.json.lz4', size: 1, sha256: '' },
      ],
    });
    assert.deepEqual(
      restorePlan([full, incr]).map((s) => [s.stored, s.increment === true]),
      [
        ['backups/20261201-100000F/base.tar.lz4', false],
        ['backups/20261201-100000F_20261202-100000I/incr.tar.lz4', true],
      ],
    );
  });
});

describe('chooseBackup', () => {
  const a = rec('20261201-100000F');
  const b = rec('20261202-100000F', {
    start_time: '2026-12-02T10:00:00.000Z',
    stop_time: '2026-12-02T10:05:00.000Z',
    start_lsn: '0/5000000',
    stop_lsn: '0/6000000',
  });
  const failed = rec('20261203-100000F', { status: 'failed', start_time: '2026-12-03T10:00:00.000Z' });
  const all = [a, b, failed];
  const ids = (chain: BackupRecord[]) => chain.map((r) => r.id);

  test('the newest usable backup that ends before the target', () => {
    assert.deepEqual(ids(chooseBackup(all, recoveryOf({ kind: 'latest' }))), [b.id]);
    assert.deepEqual(ids(chooseBackup(all, recoveryOf({ kind: 'time', time: '2026-12-02 09:00:00Z' }))), [a.id]);
    assert.deepEqual(ids(chooseBackup(all, recoveryOf({ kind: 'lsn', lsn: '0/5FFFFFF' }))), [a.id]);
  });

  test('none ends before the target, or the repository is empty', () => {
    assert.throws(
      () => chooseBackup(all, recoveryOf({ kind: 'time', time: '2026-12-01 10:04:00Z' })),
      (e: unknown) => isBackupError(e, 'BACKUP_NOT_FOUND') && /no usable backup ends before time/.test(String(e)),
    );
    assert.throws(
      () => chooseBackup([], recoveryOf({ kind: 'latest' })),
      (e: unknown) => isBackupError(e, 'BACKUP_NOT_FOUND') && /holds no usable backup/.test(String(e)),
    );
  });

  test('an explicit id must exist, be usable and end before the target', () => {
    assert.deepEqual(ids(chooseBackup(all, recoveryOf({ kind: 'latest' }), a.id)), [a.id]);
    const notFound = (re: RegExp) => (e: unknown) => isBackupError(e, 'BACKUP_NOT_FOUND') && re.test(String(e));
    assert.throws(() => chooseBackup(all, recoveryOf({ kind: 'latest' }), '20261205-100000F'), notFound(/no backup/));
    assert.throws(() => chooseBackup(all, recoveryOf({ kind: 'latest' }), failed.id), notFound(/not usable/));
    assert.throws(
      () => chooseBackup(all, recoveryOf({ kind: 'time', time: '2026-12-02 09:00:00Z' }), b.id),
      notFound(/ends after time/),
    );
  });
});

describe('assertEmptyTarget', () => {
  test('absent and empty directories are fine; anything else is refused untouched', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-restore-unit-'));
    try {
      assertEmptyTarget(join(dir, 'absent'));
      mkdirSync(join(dir, 'empty'));
      assertEmptyTarget(join(dir, 'empty'));
      mkdirSync(join(dir, 'full'));
      writeFileSync(join(dir, 'full', 'PG_VERSION'), '15\n');
      const refused = (e: unknown) => isBackupError(e, 'RESTORE_TARGET_NOT_EMPTY');
      assert.throws(() => assertEmptyTarget(join(dir, 'full')), refused);
      assert.throws(() => assertEmptyTarget(join(dir, 'full', 'PG_VERSION')), refused);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseTablespaceMap', () => {
  test('oid and path per line (paths may hold spaces), relocated as asked', () => {
    const map = '16385 /srv/ts one\n16390 /srv/ts2\n';
    assert.deepEqual(parseTablespaceMap(map, {}), [
      { oid: '16385', path: '/srv/ts one' },
      { oid: '16390', path: '/srv/ts2' },
    ]);
    assert.deepEqual(parseTablespaceMap(map, { '16390': '/new' })[1], { oid: '16390', path: '/new' });
    assert.deepEqual(parseTablespaceMap('', {}), []);
  });

  test('a malformed line, or relocating a tablespace the backup does not have, is refused', () => {
    assert.throws(() => parseTablespaceMap('/srv/ts\n', {}), /malformed line/);
    assert.throws(
      () => parseTablespaceMap('16385 /a\n', { '99': '/b' }),
      (e: unknown) =>
        isBackupError(e, 'RESTORE_FAILED') && /no tablespace 99 to relocate \(it has: 16385\)/.test(String(e)),
    );
  });
});
