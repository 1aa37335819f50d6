import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MemoryStore } from '../dcs/memory.js';
import { type BackupSettings, effectiveBackup } from './config.js';
import { viewMember, viewOf } from './fixture.js';
import { takeBackupLease } from './lease.js';
import { checkRepoPath } from './repo.js';
import {
  type DumpRecord,
  type DumpRunDeps,
  dumpFileName,
  dumpIdTime,
  expireDumps,
  isDumpId,
  listDumps,
  makeDumpId,
  parseDatabaseList,
  planDumpExpiry,
  runDump,
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

/** A fake PostgreSQL bin dir: pg_dumpall, psql and pg_dump as shell scripts (pg_dump fails for $FAIL_DB). */
async function runFixture() {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-dumprun-'));
  await chmod(dir, 0o755);
  const bin = join(dir, 'bin');
  const tmpRoot = join(dir, 'tmp');
  await mkdir(bin);
  await mkdir(tmpRoot);
  await chmod(tmpRoot, 0o777);
  const script = async (name: string, body: string) => {
    await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(bin, name), 0o755);
  };
  await script('pg_dumpall', 'echo "-- globals from $PGHOST:$PGPORT as $PGUSER"; echo "CREATE ROLE r;"');
  await script('psql', "printf 'app\\0postgres\\0'");
  await script(
    'pg_dump',
    'while [ $# -gt 0 ]; do [ "$1" = -f ] && out=$2; shift; done\n' +
      '[ "$PGDATABASE" = "$FAIL_DB" ] && { echo "pg_dump: error: connection lost" >&2; exit 1; }\n' +
      'mkdir "$out" && echo "toc of $PGDATABASE" > "$out/toc.dat"',
  );
  let t = Date.parse('2026-12-03T06:15:00Z');
  // The defaults a node with only backup.repo gets: lz4 level 1, from a replica, retention.full 2.
  const settings = effectiveBackup(undefined, { repo: join(dir, 'repo') }, false).settings as BackupSettings;
  const dcs = new MemoryStore({ now: () => t });
  const deps: DumpRunDeps = {
    settings,
    superuser: { username: 'postgres', password: 'pw' },
    dcs,
    leaseKey: '/service/s/backup',
    readView: async () => viewOf(viewMember('n1', 'running'), viewMember('n2', 'streaming')),
    now: () => new Date((t += 1000)),
    who: 'test',
    binDir: bin,
    tmpRoot,
  };
  return {
    deps,
    settings,
    tmpRoot,
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('runDump: globals and a tar per database from the replica, recorded ok, temp dirs removed', async () => {
  await using f = await runFixture();
  const rec = await runDump(f.deps, { jobs: 3 });
  assert.equal(rec.status, 'ok');
  assert.equal(rec.id, '20261203-061502L'); // the clock ticks 1 s a read: the lease took 06:15:01
  assert.equal(rec.member, 'n2');
  assert.deepEqual(
    rec.databases.map((d) => [d.name, d.file]),
    [
      ['app', 'app.tar.lz4'],
      ['postgres', 'postgres.tar.lz4'],
    ],
  );
  assert.deepEqual(
    rec.files.map((x) => x.name),
    ['globals.sql.lz4', 'app.tar.lz4', 'postgres.tar.lz4'],
  );
  assert.equal(
    rec.repo_bytes,
    rec.files.reduce((s, x) => s + x.size, 0),
  );
  assert.ok(
    rec.databases.every((d) => d.bytes >= 1024 && d.bytes % 512 === 0),
    'tar sizes',
  );
  const store = await openStore(f.settings, false);
  assert.equal(
    (await store.read(`dumps/${rec.id}/globals.sql.lz4`)).toString(),
    '-- globals from 127.0.0.1:5432 as postgres\nCREATE ROLE r;\n',
  );
  assert.deepEqual(await listDumps(store), [rec]);
  assert.deepEqual(await readdir(f.tmpRoot), []);
  const x = await extractDump(store, rec.id, join(f.tmpRoot, 'out'));
  assert.equal(await readFile(join(x.databases[0]?.dir ?? '', 'toc.dat'), 'utf8'), 'toc of app\n');
});

test('runDump: a failing pg_dump marks the dump failed and removes its files; a held lease refuses to start', async () => {
  await using f = await runFixture();
  process.env['FAIL_DB'] = 'postgres';
  try {
    await assert.rejects(
      runDump(f.deps),
      (e) =>
        isBackupError(e, 'BACKUP_FAILED') &&
        /pg_dump of postgres failed: pg_dump: error: connection lost/.test(e.message),
    );
  } finally {
    delete process.env['FAIL_DB'];
  }
  const store = await openStore(f.settings, false);
  const [failed] = await listDumps(store);
  assert.equal(failed?.status, 'failed');
  assert.deepEqual(failed?.files, []);
  assert.deepEqual(
    (await store.repo.list('dumps')).map((x) => x.path),
    [`dumps/${failed?.id}/dump.json`],
  );
  assert.deepEqual(await readdir(f.tmpRoot), []);

  const lease = await takeBackupLease(f.deps.dcs, f.deps.leaseKey, { holder: { who: 'a backup' } });
  await assert.rejects(runDump(f.deps), (e) => isBackupError(e, 'BACKUP_IN_PROGRESS'));
  await lease.release();
  // A dump left running by a dead writer is cleaned by the next one.
  await writeDumpRecord(store, rec('20261203-050000L', 'running'), true);
  const ok = await runDump(f.deps);
  assert.deepEqual(
    (await listDumps(store)).map((r) => [r.id, r.status]),
    [
      ['20261203-050000L', 'failed'],
      [failed?.id, 'failed'],
      [ok.id, 'ok'],
    ],
  );
});
