import { it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensurePostgresDir,
  ensurePostgresFile,
  insecurePathProblems,
  makeDirs,
  type OwnershipError,
  readNoFollow,
  writeFileForPostgres,
} from './ownership.js';
import { postgresIdentity } from './proc.js';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-own-'));
  chmodSync(dir, 0o755);
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it("ensurePostgresDir: parents it creates stay root's, only the data directory it creates goes to postgres; an existing root-owned one is refused, not chowned", {
  skip: !asRoot && 'needs root',
}, () => {
  const pg = postgresIdentity() as { uid: number };
  withDir((dir) => {
    const data = join(dir, 'a', 'b', 'data');
    ensurePostgresDir(data, 0o700, 'data');
    assert.equal(statSync(join(dir, 'a')).uid, 0);
    assert.equal(statSync(join(dir, 'a', 'b')).uid, 0);
    assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o755);
    assert.equal(statSync(data).uid, pg.uid);
    assert.equal(statSync(data).mode & 0o777, 0o700);
    ensurePostgresDir(data, 0o700, 'data'); // again: fine

    const found = join(dir, 'found');
    mkdirSync(found, { mode: 0o700 });
    assert.throws(
      () => ensurePostgresDir(found, 0o700, 'data'),
      (e: OwnershipError) =>
        e.code === 'FS_NOT_USABLE_BY_POSTGRES' &&
        /data directory .*found exists and is owned by uid 0.*chown postgres:postgres/.test(e.message),
    );
    assert.equal(statSync(found).uid, 0, 'never chowned');
    // A socket directory only has to be writable by postgres: a sticky /tmp-like one is fine.
    chmodSync(found, 0o1777);
    ensurePostgresDir(found, 0o755, 'socket');
    assert.equal(statSync(found).uid, 0);
  });
});

it('writeFileForPostgres replaces a planted symlink instead of writing through it; readNoFollow and ensurePostgresFile refuse one', {
  skip: !asRoot && 'needs root',
}, () => {
  const pg = postgresIdentity() as { uid: number };
  withDir((dir) => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'root secret\n', { mode: 0o600 });
    const hba = join(dir, 'pg_hba.conf');
    symlinkSync(victim, hba);
    assert.throws(
      () => readNoFollow(hba),
      (e: OwnershipError) => e.code === 'FS_SYMLINK_REFUSED',
    );
    writeFileForPostgres(hba, 'local all all scram-sha-256\n');
    assert.equal(readFileSync(victim, 'utf8'), 'root secret\n');
    assert.equal(statSync(victim).uid, 0);
    assert.ok(lstatSync(hba).isFile());
    assert.equal(lstatSync(hba).uid, pg.uid);
    assert.equal(lstatSync(hba).mode & 0o777, 0o600);
    assert.equal(readNoFollow(join(dir, 'missing')), null);
    const log = join(dir, 'postgresql.log');
    symlinkSync(victim, log);
    assert.throws(
      () => ensurePostgresFile(log),
      (e: OwnershipError) => e.code === 'FS_SYMLINK_REFUSED',
    );
    assert.equal(statSync(victim).uid, 0, 'the target was not chowned');
  });
});

it('makeDirs returns what it created, outermost first', () => {
  withDir((dir) => {
    assert.deepEqual(makeDirs(join(dir, 'x', 'y')), [join(dir, 'x'), join(dir, 'x', 'y')]);
    assert.deepEqual(makeDirs(join(dir, 'x')), []);
  });
});

it('insecurePathProblems: a config writable by group/others or a non-root directory above it is named; sticky /tmp passes', () => {
  withDir((dir) => {
    const f = join(dir, 'node.yml');
    writeFileSync(f, '', { mode: 0o600 });
    chmodSync(f, 0o600);
    assert.deepEqual(insecurePathProblems(f), [], 'root-owned 0600 under root-owned 0755 dirs and sticky /tmp');
    // What postgres-owned node folders from older pgkeel, and a group-writable file, look like:
    const stat = (p: string) =>
      p === f ? { uid: 0, mode: 0o100620 } : p === dir ? { uid: 101, mode: 0o40755 } : statSync(p);
    const problems = insecurePathProblems(f, stat);
    assert.deepEqual(problems, [
      `${f} is writable by its group (mode 0620)`,
      `directory ${dir} is owned by uid 101, not root`,
    ]);
    const open = (p: string) => (p === dir ? { uid: 0, mode: 0o40777 } : statSync(p));
    assert.deepEqual(insecurePathProblems(f, open), [`directory ${dir} is writable by everyone (mode 0777)`]);
  });
});
