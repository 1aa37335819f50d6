/**
 * Logical backups end to end on a real 2-node cluster made by `pgkeel up` (its repository is DIR/backup):
 * `pgkeel dump` stores globals and one tar per database from the replica; a database's tar, extracted and given to
 * pg_restore on the leader under a new name, has the same rows; a second dump, then expiry with
 * backup.retention.full=1 removes the first. One cluster for the file; every wait polls a condition.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DumpRecord } from '../../src/backup/dump.js';
import { run } from '../../src/lib/proc.js';
import { cli, healthyStatus, leaderOf, startCluster, type TestCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const BIN = '/usr/lib/postgresql/15/bin';

describe('pgkeel dump on a local cluster', { timeout: 400_000 }, () => {
  let c: TestCluster;
  let scratch: { path: string } & AsyncDisposable;
  let first: DumpRecord;

  before(async () => {
    c = await startCluster({ name: 'dump', nodes: 2 });
    scratch = await tempDir('dump-restore');
    const r = await c.up();
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
    await scratch?.[Symbol.asyncDispose]();
  });

  const leaderPort = async () => {
    const l = leaderOf(await healthyStatus(c, 2));
    assert.ok(l);
    return l.port;
  };
  const password = () =>
    (JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as { superuser: { password: string } }).superuser
      .password;
  /** psql as the superuser over TCP (as c.query does, but into any database). */
  const psql = async (port: number, db: string, sql: string) => {
    const args = ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'];
    const r = await run(join(BIN, 'psql'), [...args, '-d', db, '-c', sql], { env: { PGPASSWORD: password() } });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const count = async (port: number, db: string, table: string) =>
    Number(await psql(port, db, `SELECT count(*) FROM ${table}`));
  /** CREATE DATABASE `db`, then pg_restore -j 2 of a pg_dump directory into it (as the docs tell users to). */
  const pgRestore = async (port: number, db: string, dir: string) => {
    await c.query(port, `CREATE DATABASE ${db}`);
    const args = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-j', '2', dir];
    const r = await run(join(BIN, 'pg_restore'), args, { env: { PGPASSWORD: password() }, asPostgres: false });
    assert.equal(r.code, 0, r.stderr);
  };
  const dump = async (): Promise<DumpRecord> => {
    const r = await cli(['dump', '--dir', c.dir, '--jobs', '2', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout) as DumpRecord;
  };

  it('dumps globals and every database from the replica into the repository', async () => {
    const p = await leaderPort();
    await c.query(p, 'CREATE ROLE dump_reader LOGIN');
    await c.query(p, 'CREATE DATABASE app');
    await c.query(p, 'CREATE DATABASE "odd name"');
    await psql(
      p,
      'app',
      "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items SELECT g, repeat('x', g % 50) FROM generate_series(1, 20000) g; CREATE TABLE tags (id int); INSERT INTO tags SELECT generate_series(1, 777)",
    );
    await psql(p, 'odd name', 'CREATE TABLE t AS SELECT generate_series(1, 123) AS id');
    // The replica must have replayed it all before the dump reads from it.
    const replica = (await c.status()).members.find((m) => m.role !== 'leader');
    assert.ok(replica);
    await c.waitFor('the replica to have the data', async () => (await count(replica.port, 'app', 'tags')) === 777);

    first = await dump();
    assert.equal(first.status, 'ok');
    assert.equal(first.type, 'dump');
    assert.match(first.id, /^\d{8}-\d{6}L$/);
    assert.equal(first.member, replica.name, 'taken from the replica');
    assert.deepEqual(
      first.databases.map((d) => d.name),
      ['app', 'odd name', 'postgres'],
    );
    assert.deepEqual(first.files.map((f) => f.name).sort(), [
      'app.tar.lz4',
      'globals.sql.lz4',
      'odd+20name.tar.lz4',
      'postgres.tar.lz4',
    ]);
    const repoDir = join(c.dir, 'backup', 'dumps', first.id);
    assert.deepEqual(readdirSync(repoDir).sort(), [...first.files.map((f) => f.name), 'dump.json'].sort());
    assert.equal(
      first.repo_bytes,
      first.files.reduce((s, f) => s + f.size, 0),
    );
    assert.ok((first.databases.find((d) => d.name === 'app')?.bytes ?? 0) > 200_000, 'app holds its rows');
    const globals = await run('sh', ['-c', `lz4 -dc '${join(repoDir, 'globals.sql.lz4')}'`], { asPostgres: false });
    assert.match(globals.stdout, /CREATE ROLE dump_reader;/);

    const list = await cli(['dump', 'list', '--dir', c.dir, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const l = JSON.parse(list.stdout) as { repo: string; dumps: (DumpRecord & { path: string })[] };
    assert.equal(l.repo, join(c.dir, 'backup'));
    assert.deepEqual(
      l.dumps.map((d) => [d.id, d.status, d.path]),
      [[first.id, 'ok', `dumps/${first.id}`]],
    );
    // Base backups are untouched by dumps: backup list still reads.
    const b = await cli(['backup', 'list', '--dir', c.dir, '--json']);
    assert.equal(b.code, 0, b.stderr);
  });

  it("a database's tar restores with pg_restore into a fresh database with the same rows", async () => {
    const p = await leaderPort();
    const tar = join(c.dir, 'backup', 'dumps', first.id, 'app.tar.lz4');
    const x = await run('sh', ['-c', `lz4 -dc "$1" | tar -xf - -C "$2"`, 'sh', tar, scratch.path], {
      asPostgres: false,
    });
    assert.equal(x.code, 0, x.stderr);
    assert.ok(existsSync(join(scratch.path, 'app', 'toc.dat')), 'pg_dump directory format');
    await pgRestore(p, 'app_restored', join(scratch.path, 'app'));
    assert.equal(await count(p, 'app_restored', 'items'), 20000);
    assert.equal(await count(p, 'app_restored', 'tags'), 777);

    // pgkeel dump extract does the same for any compression or encryption; a name with a space is escaped.
    const to = join(scratch.path, 'extracted');
    const xr = await cli(['dump', 'extract', first.id, '--to', to, '--db', 'odd name', '--dir', c.dir, '--json']);
    assert.equal(xr.code, 0, `${xr.stdout}\n${xr.stderr}`);
    const ex = JSON.parse(xr.stdout) as { globals: string; databases: { name: string; dir: string }[] };
    assert.deepEqual(ex.databases, [{ name: 'odd name', dir: join(to, 'odd+20name') }]);
    assert.match(readFileSync(ex.globals, 'utf8'), /CREATE ROLE dump_reader;/);
    await pgRestore(p, 'odd_restored', ex.databases[0]?.dir ?? '');
    assert.equal(await count(p, 'odd_restored', 't'), 123);
  });

  it('a second dump, then expiry with retention full=1 removes the first', async () => {
    const replica = (await c.status()).members.find((m) => m.role !== 'leader');
    assert.ok(replica);
    await c.waitFor(
      'the replica to have app_restored',
      async () => (await count(replica.port, 'app_restored', 'tags')) === 777,
    );
    const second = await dump();
    assert.equal(second.status, 'ok');
    assert.notEqual(second.id, first.id);
    assert.ok(second.databases.some((d) => d.name === 'app_restored'));
    assert.ok(second.databases.some((d) => d.name === 'odd_restored'));
    const set = await cli(['ctl', 'edit-config', '--set', 'backup.retention.full=1', '--force', '--dir', c.dir]);
    assert.equal(set.code, 0, `${set.stdout}\n${set.stderr}`);
    const dry = await cli(['dump', 'expire', '--dry-run', '--dir', c.dir, '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual((JSON.parse(dry.stdout) as { remove: string[] }).remove, [first.id]);
    assert.ok(existsSync(join(c.dir, 'backup', 'dumps', first.id)), 'a dry run removes nothing');
    const ex = await cli(['dump', 'expire', '--dir', c.dir, '--json']);
    assert.equal(ex.code, 0, ex.stderr);
    assert.deepEqual(JSON.parse(ex.stdout) as { keep: string[]; remove: string[] }, {
      keep: [second.id],
      remove: [first.id],
      reason: 'keep the newest 1 dump(s) (backup.retention.full)',
      dry_run: false,
    });
    assert.ok(!existsSync(join(c.dir, 'backup', 'dumps', first.id)));
    assert.ok(existsSync(join(c.dir, 'backup', 'dumps', second.id, 'dump.json')));
  });
});
