import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { excluded, type FileEntry, fileListFromManifest, planIncremental, scanDataDir } from './incremental.js';

const entry = (path: string, size: number, mtime: number, ref = 'F'): FileEntry => ({ path, size, mtime, ref });

test('planIncremental: new, changed (size or mtime), recent and deleted files; unchanged ones keep their ref', () => {
  const parent = [
    entry('base/1/100', 8192, 1000),
    entry('base/1/101', 8192, 1000),
    entry('base/1/102', 8192, 1000),
    entry('base/1/103', 8192, 1000),
    entry('global/pg_control', 8192, 1990),
  ];
  const current = [
    { path: 'base/1/100', size: 8192, mtime: 1000 }, // unchanged
    { path: 'base/1/101', size: 16384, mtime: 1000 }, // grew
    { path: 'base/1/102', size: 8192, mtime: 1500 }, // touched
    { path: 'base/1/104', size: 8192, mtime: 1500 }, // new
    { path: 'global/pg_control', size: 8192, mtime: 1990 }, // same, but not older than the parent's start
  ];
  const p = planIncremental(parent, current, 1990, 'I');
  assert.deepEqual(p.copy, ['base/1/101', 'base/1/102', 'base/1/104', 'global/pg_control']);
  assert.deepEqual(p.deleted, ['base/1/103']);
  assert.deepEqual(
    p.list.map((f) => `${f.path}@${f.ref}`),
    ['base/1/100@F', 'base/1/101@I', 'base/1/102@I', 'base/1/104@I', 'global/pg_control@I'],
  );
});

test('the manifest of a full backup gives its file list (encoded paths, mtime in seconds, exclusions)', () => {
  const manifest = JSON.stringify({
    'PostgreSQL-Backup-Manifest-Version': 1,
    Files: [
      { Path: 'PG_VERSION', Size: 3, 'Last-Modified': '2026-12-03 05:36:37 GMT' },
      { 'Encoded-Path': Buffer.from('base/1/ä').toString('hex'), Size: 10, 'Last-Modified': '2026-12-03 05:36:38 GMT' },
      { Path: 'backup_label', Size: 200, 'Last-Modified': '2026-12-03 05:36:38 GMT' },
    ],
  });
  assert.deepEqual(fileListFromManifest('F', manifest), [
    entry('PG_VERSION', 3, Date.UTC(2026, 11, 3, 5, 36, 37) / 1000),
    entry('base/1/ä', 10, Date.UTC(2026, 11, 3, 5, 36, 38) / 1000),
  ]);
});

test('exclusions follow base backups: pg_wal contents, runtime files, temp files', () => {
  for (const p of [
    'pg_wal/000000010000000000000001',
    'postmaster.pid',
    'pg_stat_tmp/x',
    'base/1/pgsql_tmp1.0',
    'backup_label',
  ])
    assert.equal(excluded(p), true, p);
  for (const p of ['PG_VERSION', 'base/1/1259', 'global/pg_control', 'pg_xact/0000', 'postgresql.auto.conf'])
    assert.equal(excluded(p), false, p);
});

test('scanDataDir lists regular files with sizes and mtimes, skips excluded ones, refuses tablespaces', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-scan-'));
  try {
    await mkdir(join(dir, 'base', '1'), { recursive: true });
    await mkdir(join(dir, 'pg_wal'), { recursive: true });
    await writeFile(join(dir, 'base', '1', '1259'), Buffer.alloc(100));
    await writeFile(join(dir, 'pg_wal', '000000010000000000000001'), 'x');
    await writeFile(join(dir, 'postmaster.pid'), 'x');
    await utimes(join(dir, 'base', '1', '1259'), 1000, 1234.9);
    assert.deepEqual(await scanDataDir(dir), [{ path: 'base/1/1259', size: 100, mtime: 1234 }]);
    await mkdir(join(dir, 'pg_tblspc'));
    await symlink('/tmp', join(dir, 'pg_tblspc', '16400'));
    await assert.rejects(scanDataDir(dir), /tablespaces are not built yet/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
