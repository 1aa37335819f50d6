import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PosixRepo } from './posix-repo.js';
import { BackupStore } from './store.js';
import { pushWal } from './wal.js';
import { archiveCommand, archiveGet, restoreCommand, shellArg } from './wal-commands.js';
import { segmentName } from './wal-names.js';

const run = promisify(execFile);

/** PostgreSQL's placeholder expansion (%p, %f, %%; anything else is kept), then sh -c, as the archiver does. */
async function asPostgres(
  command: string,
  p: string,
  f: string,
  cwd?: string,
): Promise<{ code: number; stdout: string }> {
  const expanded = command.replace(/%([pf%])/g, (_m, c: string) => (c === 'p' ? p : c === 'f' ? f : '%'));
  try {
    const { stdout } = await run('/bin/sh', ['-c', expanded], { cwd });
    return { code: 0, stdout };
  } catch (err) {
    return { code: (err as { code: number }).code, stdout: (err as { stdout: string }).stdout };
  }
}

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-walcmd-it\'s %p a "dir" '));
  // A stand-in for pgkeel's main.js that prints its arguments, so the test sees what the shell passed.
  const main = join(dir, 'main $HOME `x`.mjs');
  await writeFile(main, 'process.stdout.write(JSON.stringify(process.argv.slice(2)));\n');
  return {
    dir,
    main,
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('shellArg: plain words bare; anything else single-quoted; % doubled; control characters refused', () => {
  assert.equal(shellArg('/usr/bin/node'), '/usr/bin/node');
  assert.equal(shellArg('/a b'), "'/a b'");
  assert.equal(shellArg("/it's"), "'/it'\\''s'");
  assert.equal(shellArg('/100%'), "'/100%%'");
  assert.throws(() => shellArg('/a\nb'), /control character/);
});

test('archive_command: the fast path consumes .ok without Node; otherwise every path arrives intact', async () => {
  await using f = await fixture();
  const spool = join(f.dir, 'spool dir');
  await mkdir(spool);
  const repo = join(f.dir, 'the repo');
  const keyFile = join(f.dir, "key 'file'");
  const cmd = archiveCommand({ repo, keyFile, spool, main: f.main, compression: 'zstd', level: 5 });
  assert.match(cmd, /^test -f '.*spool dir'\/%f\.ok && rm -f '.*spool dir'\/%f\.ok && exit 0; /);
  const seg = '000000010000000000000003';
  // Slow path: no .ok, Node runs with the exact arguments.
  const slow = await asPostgres(cmd, `pg_wal/${seg}`, seg);
  assert.equal(slow.code, 0);
  assert.deepEqual(JSON.parse(slow.stdout), [
    'archive-push',
    '--repo',
    repo,
    '--key-file',
    keyFile,
    '--compress',
    'zstd',
    '--level',
    '5',
    `pg_wal/${seg}`,
  ]);
  // Fast path: the archiver left .ok; the command removes it, exits 0, prints nothing (Node never started).
  await writeFile(join(spool, `${seg}.ok`), '');
  const fast = await asPostgres(cmd, `pg_wal/${seg}`, seg);
  assert.deepEqual(fast, { code: 0, stdout: '' });
  assert.deepEqual(await readdir(spool), []);
  // A running archiver (live pid): the command waits for its .ok instead of starting Node.
  await writeFile(join(spool, 'archiver.pid'), `${process.pid}\n`);
  const waiting = asPostgres(cmd, `pg_wal/${seg}`, seg);
  await new Promise((r) => setTimeout(r, 150));
  await writeFile(join(spool, `${seg}.ok`), '');
  assert.deepEqual(await waiting, { code: 0, stdout: '' });
  assert.deepEqual(await readdir(spool), ['archiver.pid']);
  // ... but not when the archiver failed on that file (.error): then Node reports it.
  await writeFile(join(spool, `${seg}.error`), 'REPO_NO_SPACE');
  const t0 = Date.now();
  assert.equal(JSON.parse((await asPostgres(cmd, `pg_wal/${seg}`, seg)).stdout)[0], 'archive-push');
  assert.ok(Date.now() - t0 < 2000, 'no wait');
  // ... nor when the pid file is stale.
  await rm(join(spool, `${seg}.error`));
  await writeFile(join(spool, 'archiver.pid'), '999999999\n');
  assert.equal(JSON.parse((await asPostgres(cmd, `pg_wal/${seg}`, seg)).stdout)[0], 'archive-push');
  // Without a spool: always Node.
  assert.doesNotMatch(archiveCommand({ repo, main: f.main }), /test -f/);
});

test('restore_command: a prefetched file is moved in by the shell; otherwise archive-get gets %f %p', async () => {
  await using f = await fixture();
  const spool = join(f.dir, 'spool');
  await mkdir(spool);
  const repo = join(f.dir, 'the repo');
  const cmd = restoreCommand({ repo, main: f.main, prefetch: 4, spool });
  const seg = '000000010000000000000007';
  // %p is relative to the data directory (PostgreSQL's cwd), as PostgreSQL passes it.
  const dest = join(f.dir, 'RECOVERYXLOG');
  const slow = await asPostgres(cmd, 'RECOVERYXLOG', seg, f.dir);
  assert.equal(slow.code, 0);
  assert.deepEqual(JSON.parse(slow.stdout), [
    'archive-get',
    '--repo',
    repo,
    '--prefetch',
    '4',
    '--spool',
    spool,
    seg,
    'RECOVERYXLOG',
  ]);
  await writeFile(join(spool, seg), 'prefetched');
  assert.deepEqual(await asPostgres(cmd, 'RECOVERYXLOG', seg, f.dir), { code: 0, stdout: '' });
  assert.equal(await readFile(dest, 'utf8'), 'prefetched');
  assert.deepEqual(await readdir(spool), []);
  assert.doesNotMatch(restoreCommand({ repo, main: f.main }), /mv|prefetch/);
  assert.throws(() => restoreCommand({ repo, prefetch: 2 }), /needs a spool/);
});

test('archiveGet: answers from the repository, prefetches the next N, then serves them from the spool', async () => {
  await using f = await fixture();
  const store = await BackupStore.open(new PosixRepo(join(f.dir, 'repo')), { create: true });
  const data = new Map<string, Buffer>();
  for (let i = 1; i <= 5; i++) {
    const name = segmentName(1, i);
    data.set(name, randomBytes(4096));
    await writeFile(join(f.dir, name), data.get(name) as Buffer);
    await pushWal(store, join(f.dir, name), name);
  }
  const spool = join(f.dir, 'spool');
  const dest = join(f.dir, 'RECOVERYXLOG');
  const o = { prefetch: 3, spool };
  assert.equal(await archiveGet(store, segmentName(1, 1), dest, o), 'repo');
  assert.ok((await readFile(dest)).equals(data.get(segmentName(1, 1)) as Buffer));
  assert.deepEqual(
    (await readdir(spool)).sort(),
    [2, 3, 4].map((i) => segmentName(1, i)),
  );
  assert.equal(await archiveGet(store, segmentName(1, 2), dest, o), 'spool');
  assert.ok((await readFile(dest)).equals(data.get(segmentName(1, 2)) as Buffer));
  // Recovery jumped past 3 (fetched elsewhere): 3 is stale and goes; 5 comes from the repository.
  await writeFile(join(spool, 'x.pgkeel-tmp'), 'half');
  assert.equal(await archiveGet(store, segmentName(1, 5), dest, o), 'repo');
  assert.ok((await readFile(dest)).equals(data.get(segmentName(1, 5)) as Buffer));
  assert.deepEqual(await readdir(spool), [], 'stale segments and temp files removed; 6..8 do not exist');
  assert.equal(await archiveGet(store, '00000002.history', dest, o), 'missing');
  assert.equal(await archiveGet(store, segmentName(1, 9), dest, {}), 'missing');
});
