import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkRepoPath } from './repo.js';
import {
  type DumpRecord,
  dumpFileName,
  dumpIdTime,
  expireDumps,
  isDumpId,
  listDumps,
  makeDumpId,
  parseDatabaseList,
  planDumpExpiry,
  superuserEnv,
  writeDumpRecord,
} from './dump.js';
import { extractDump } from './dump-extract.js';
import { isBackupError } from './errors.js';
import { openStore } from './run.js';

const rec = (id: string, status: DumpRecord['status']): DumpRecord => ({
  id,
  type: 'dump',
  member: 'node2',
  start_time: dumpIdTime(id),
  stop_time: null,
  duration_s: null,
  databases: [],
  bytes: 0,
  repo_bytes: 0,
  status,
  compression: 'lz4',
  files: [],
});

test('dump ids: a full backup id with L, and back to its time', () => {
  const id = makeDumpId(new Date('2026-12-03T06:15:00.250Z'));
  assert.equal(id, '20261203-061500L');
  assert.ok(isDumpId(id));
  assert.ok(!isDumpId('20261203-061500F'));
  assert.ok(!isDumpId('20261203-061500L/../x'));
  assert.equal(dumpIdTime(id), '2026-12-03T06:15:00.000Z');
});

test('database names become valid, distinct repository file names', () => {
  assert.equal(dumpFileName('app'), 'app');
  assert.equal(dumpFileName('my-db.v2'), 'my-db.v2');
  assert.equal(dumpFileName('a b/c'), 'a+20b+2fc');
  assert.equal(dumpFileName('app_db'), 'app_db');
  assert.equal(dumpFileName('.hidden'), '_+2ehidden');
  assert.equal(dumpFileName('-x'), '_+2dx');
  assert.equal(dumpFileName('_x'), '_+5fx');
  assert.equal(dumpFileName('é'), '_+c3+a9');
  // "+" itself is escaped, so an escaped name never equals another plain one.
  assert.equal(dumpFileName('a+20b'), 'a+2b20b');
  const names = ['app', 'a b/c', '..', '.', 'x\ny', 'Ünï', '-', '+', '_+', '_', '_+2b', 'a+2b'];
  assert.equal(new Set(names.map(dumpFileName)).size, names.length);
  for (const n of names) {
    assert.doesNotThrow(() => checkRepoPath(`dumps/20261203-061500L/${dumpFileName(n)}.tar.lz4`), n);
  }
});

test('psql -At -0 output parses to the names, newlines inside names kept', () => {
  assert.deepEqual(parseDatabaseList('app\0postgres\0'), ['app', 'postgres']);
  assert.deepEqual(parseDatabaseList('app\0odd\nname\0\n'), ['app', 'odd\nname']);
  assert.deepEqual(parseDatabaseList(''), []);
});

test('expiry keeps the newest N ok dumps and running ones; removes older and failed ones', () => {
  const records = [
    rec('20261203-040000L', 'ok'),
    rec('20261203-050000L', 'failed'),
    rec('20261201-010000L', 'ok'),
    rec('20261203-060000L', 'ok'),
    rec('20261203-070000L', 'running'),
  ];
  const plan = planDumpExpiry(records, 2);
  assert.deepEqual(plan.keep, ['20261203-040000L', '20261203-060000L', '20261203-070000L']);
  assert.deepEqual(plan.remove, ['20261201-010000L', '20261203-050000L']);
  assert.deepEqual(planDumpExpiry(records, 1).remove, ['20261201-010000L', '20261203-040000L', '20261203-050000L']);
  assert.deepEqual(planDumpExpiry([], 1), { keep: [], remove: [], reason: planDumpExpiry([], 1).reason });
});

test('superuser libpq environment: TCP to the member, password and TLS from the config', () => {
  const env = superuserEnv(
    { username: 'postgres', password: 's3cret', sslmode: 'verify-full', sslrootcert: '/ca.pem' },
    { host: '127.0.0.1', port: 5433 },
  );
  assert.equal(env['PGHOST'], '127.0.0.1');
  assert.equal(env['PGPORT'], '5433');
  assert.equal(env['PGPASSWORD'], 's3cret');
  assert.equal(env['PGSSLMODE'], 'verify-full');
  assert.equal(env['PGSSLROOTCERT'], '/ca.pem');
  assert.equal(env['PGDATABASE'], 'postgres');
  assert.equal(superuserEnv({ username: 'u', password: '' }, { host: 'h', port: 1 })['PGSSLMODE'], 'prefer');
});

test('records round-trip through a repository; a duplicate id is refused; expiry deletes the directories', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-dump-'));
  try {
    const store = await openStore({ repo: join(dir, 'repo') });
    await writeDumpRecord(store, rec('20261203-040000L', 'ok'), true);
    await writeDumpRecord(store, rec('20261203-050000L', 'ok'), true);
    await store.put('dumps/20261203-040000L/app.tar', [Buffer.from('x')], 'none');
    await assert.rejects(writeDumpRecord(store, rec('20261203-050000L', 'running'), true), /already exists/);
    await store.put('dumps/20261203-060000L/dump.json', [Buffer.from('{not json')], 'none');
    const listed = await listDumps(store);
    assert.deepEqual(
      listed.map((r) => [r.id, r.status]),
      [
        ['20261203-040000L', 'ok'],
        ['20261203-050000L', 'ok'],
        ['20261203-060000L', 'failed'],
      ],
    );
    assert.match(listed[2]?.error ?? '', /unreadable record/);
    const dry = await expireDumps(store, 1, true);
    assert.deepEqual(dry.remove, ['20261203-040000L', '20261203-060000L']);
    assert.equal((await listDumps(store)).length, 3);
    await expireDumps(store, 1);
    assert.deepEqual(
      (await listDumps(store)).map((r) => r.id),
      ['20261203-050000L'],
    );
    assert.deepEqual(await store.repo.list('dumps/20261203-040000L'), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('extract unpacks globals and each database directory, decompressed; refuses to overwrite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-dump-'));
  try {
    const store = await openStore({ repo: join(dir, 'repo') });
    const id = '20261203-040000L';
    await mkdir(join(dir, 'src', 'odd+20name'), { recursive: true });
    await writeFile(join(dir, 'src', 'odd+20name', 'toc.dat'), 'table of contents');
    const tar = execFileSync('tar', ['-C', join(dir, 'src'), '-cf', '-', 'odd+20name']);
    await store.put(`dumps/${id}/odd+20name.tar`, [tar], 'lz4');
    await store.put(`dumps/${id}/globals.sql`, [Buffer.from('CREATE ROLE r;\n')], 'lz4');
    const r = rec(id, 'ok');
    r.databases = [{ name: 'odd name', file: 'odd+20name.tar.lz4', bytes: tar.length }];
    r.files = [
      { name: 'globals.sql.lz4', size: 0, sha256: '' },
      { name: 'odd+20name.tar.lz4', size: 0, sha256: '' },
    ];
    await writeDumpRecord(store, r, true);
    const to = join(dir, 'out');
    const x = await extractDump(store, id, to);
    assert.deepEqual(x, {
      globals: join(to, 'globals.sql'),
      databases: [{ name: 'odd name', dir: join(to, 'odd+20name') }],
    });
    assert.equal(await readFile(join(to, 'globals.sql'), 'utf8'), 'CREATE ROLE r;\n');
    assert.equal(await readFile(join(to, 'odd+20name', 'toc.dat'), 'utf8'), 'table of contents');
    await assert.rejects(extractDump(store, id, to), (e) => isBackupError(e, 'RESTORE_TARGET_NOT_EMPTY'));
    await assert.rejects(extractDump(store, id, join(dir, 'o2'), ['app']), /has no database app/);
    await assert.rejects(extractDump(store, '20261203-050000L', join(dir, 'o3')), (e) =>
      isBackupError(e, 'BACKUP_NOT_FOUND'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
