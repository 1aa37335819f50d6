import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/load.js';
import { silentLogger } from '../lib/log.js';
import { PostgresInstance } from './instance.js';
import { asideName, CLONE_MARGIN, cloneSpaceRefusal, copiesToRemove, listAside, treeBytes } from './aside.js';

it('copiesToRemove: room for one more copy within keep, oldest first; keep 0 removes them all', () => {
  const three = ['d.before-reclone-1', 'd.before-reclone-2', 'd.before-reclone-3'];
  assert.deepEqual(copiesToRemove(three, 1), three, 'keep 1: the new copy is the one kept');
  assert.deepEqual(copiesToRemove(three, 2), ['d.before-reclone-1', 'd.before-reclone-2']);
  assert.deepEqual(copiesToRemove(three, 4), []);
  assert.deepEqual(copiesToRemove(three, 0), three);
  assert.deepEqual(copiesToRemove([], 1), []);
  assert.deepEqual(copiesToRemove(['a'], 2), []);
});

it('listAside: only copies of that kind next to the data directory, oldest first by their ISO time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-aside-'));
  try {
    const data = join(dir, 'data');
    const later = asideName(data, 'before-reclone', new Date('2026-12-02T10:00:00.500Z'));
    const earlier = asideName(data, 'before-reclone', new Date('2026-12-02T09:59:59.999Z'));
    for (const p of [
      later,
      earlier,
      asideName(data, 'failed-bootstrap', new Date()),
      join(dir, 'data2.before-reclone-x'),
    ])
      mkdirSync(p);
    assert.deepEqual(listAside(data, 'before-reclone'), [earlier, later]);
    writeFileSync(join(later, 'f'), Buffer.alloc(1000));
    mkdirSync(join(later, 'sub'));
    writeFileSync(join(later, 'sub', 'g'), Buffer.alloc(24));
    assert.equal(await treeBytes(later), 1024);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('cloneSpaceRefusal: the data plus margin must fit in free space plus what retention frees', () => {
  const GB = 1024 ** 3;
  assert.equal(cloneSpaceRefusal({ dataBytes: GB, freeBytes: 2 * GB, freedBytes: 0 }), null);
  const need = Math.ceil(GB * (1 + CLONE_MARGIN.ratio)) + CLONE_MARGIN.bytes;
  assert.equal(cloneSpaceRefusal({ dataBytes: GB, freeBytes: need, freedBytes: 0 }), null, 'exactly enough');
  const no = cloneSpaceRefusal({ dataBytes: GB, freeBytes: need - 1, freedBytes: 0 });
  assert.match(
    no ?? '',
    /not enough disk space to clone: the clone needs about 1190 MB \(1024 MB of data plus margin\), the filesystem has 1190 MB free/,
  );
  assert.equal(
    cloneSpaceRefusal({ dataBytes: GB, freeBytes: GB / 2, freedBytes: GB }),
    null,
    'removing the older copy makes room',
  );
});

it('PostgresInstance.moveAside: keeps postgresql.keep_moved_aside re-clone copies and at most one failed bootstrap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-aside-'));
  try {
    const inst = (keep: number) =>
      new PostgresInstance(
        configFromObject(
          {
            scope: 's',
            name: 'n',
            postgresql: {
              data_dir: 'data',
              keep_moved_aside: keep,
              authentication: { superuser: { password: 'x' }, replication: { password: 'y' } },
            },
          },
          't',
          {},
          dir,
        ),
        silentLogger,
      );
    const data = join(dir, 'data');
    const fill = () => {
      mkdirSync(data);
      writeFileSync(join(data, 'PG_VERSION'), '15\n');
    };
    const copies = (why: string) => readdirSync(dir).filter((n) => n.startsWith(`data.${why}-`));
    for (let i = 0; i < 3; i++) {
      fill();
      assert.ok(inst(1).moveAside('before-reclone'));
    }
    assert.equal(copies('before-reclone').length, 1);
    for (let i = 0; i < 3; i++) {
      fill();
      inst(2).moveAside('before-reclone');
    }
    assert.equal(copies('before-reclone').length, 2);
    for (let i = 0; i < 2; i++) {
      fill();
      inst(5).moveAside('failed-bootstrap');
    }
    assert.equal(copies('failed-bootstrap').length, 1, 'failed attempts: at most one whatever keep_moved_aside says');
    fill();
    assert.equal(inst(0).moveAside('before-reclone'), null);
    assert.deepEqual(
      [copies('before-reclone').length, existsSync(data)],
      [0, false],
      'keep 0: no copy, the data directory is gone',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
