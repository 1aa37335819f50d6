/**
 * Backup and point-in-time recovery end to end, on a real 3-node cluster made by `pgkeel up` (which archives WAL
 * into DIR/backup and takes a first full backup): rows committed before a time, an LSN and a restore point — before
 * and after a switchover (timeline 2) — are exactly what a restore brings back; a full backup restored gives the same
 * data (rows and a pg_dump checksum); `backup verify` passes, and fails naming the file after one byte of a stored
 * file changes and naming the segment after an archived segment goes; a backup killed halfway is never listed as
 * usable and the next one succeeds. One cluster for the whole file; every wait polls a condition.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nextSegment, segmentOfLsn } from '../../src/backup/wal-names.js';
import { freePort } from '../../src/lib/net.js';
import { run } from '../../src/lib/proc.js';
import type { StatusJson } from '../../src/local/status.js';
import {
  cli,
  healthyStatus,
  leaderOf,
  newLeaderStatus,
  pgkeelBin,
  startCluster,
  type TestCluster,
} from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const BIN = '/usr/lib/postgresql/15/bin';

describe('backup and PITR on a local cluster', { timeout: 600_000 }, () => {
  let c: TestCluster;
  let scratch: { path: string } & AsyncDisposable;
  const restored: string[] = [];

  before(async () => {
    c = await startCluster({ name: 'backup' });
    scratch = await tempDir('restore');
    const r = await c.up();
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
  after(async () => {
    for (const dir of restored)
      await run(join(BIN, 'pg_ctl'), ['-D', dir, '-m', 'immediate', '-w', 'stop'], { timeoutMs: 30_000 }).catch(
        () => {},
      );
    await c?.[Symbol.asyncDispose]();
    await scratch?.[Symbol.asyncDispose]();
  });

  const leaderPort = async () => {
    const l = leaderOf(await healthyStatus(c));
    assert.ok(l);
    return l.port;
  };
  const now = async () => String((await c.query(await leaderPort(), 'SELECT now()::text AS t'))[0]?.t);
  const pause = () => new Promise((r) => setTimeout(r, 1100));

  /** `pgkeel restore … --start` into a fresh directory; returns the port the restored server listens on. */
  async function restore(name: string, ...target: string[]): Promise<number> {
    const to = join(scratch.path, name);
    const port = await freePort();
    restored.push(to);
    const r = await cli([
      'restore',
      '--dir',
      c.dir,
      '--to',
      to,
      ...target,
      '--start',
      '--port',
      String(port),
      '--json',
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { started: { state: string } };
    assert.equal(out.started.state, 'promoted');
    return port;
  }
  const rows = async (port: number) =>
    (await c.query(port, 'SELECT count(*)::int AS n, coalesce(max(id), 0) AS max FROM pitr'))[0] as {
      n: number;
      max: number;
    };

  it('up archives WAL and takes a first full backup; status --json reports it', async () => {
    const s: StatusJson = await c.status();
    assert.ok(s.backup, 'status --json has backup');
    assert.equal(s.backup.repo, join(c.dir, 'backup'));
    assert.match(s.backup.last_backup_id ?? '', /^\d{8}-\d{6}F$/);
    assert.ok(s.backup.recoverable_from && s.backup.recoverable_to);
    const list = await cli(['backup', 'list', '--dir', c.dir, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const l = JSON.parse(list.stdout) as { backups: { status: string; path: string }[]; wal: { first: string } };
    assert.equal(l.backups[0]?.status, 'ok');
    assert.match(l.backups[0]?.path ?? '', /^backups\//);
    assert.match(l.wal.first, /^[0-9A-F]{24}$/);
  });

  it('PITR to a time, an LSN and a restore point lands exactly, before and after a switchover', async () => {
    const p = await leaderPort();
    await c.query(p, 'CREATE TABLE pitr (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())');
    await c.query(p, 'INSERT INTO pitr SELECT g FROM generate_series(1, 100) g');
    await pause();
    const t1 = await now();
    await pause();
    await c.query(p, 'INSERT INTO pitr SELECT g FROM generate_series(101, 200) g');
    const lsn = String((await c.query(p, 'SELECT pg_current_wal_lsn()::text AS l'))[0]?.l);
    await c.query(p, 'INSERT INTO pitr SELECT g FROM generate_series(201, 250) g');

    const old = leaderOf(await c.status())?.name as string;
    const sw = await cli(['ctl', 'switchover', '--dir', c.dir, '--force']);
    assert.equal(sw.code, 0, `${sw.stdout}\n${sw.stderr}`);
    await newLeaderStatus(c, old);
    const p2 = await leaderPort();
    await c.query(p2, 'INSERT INTO pitr SELECT g FROM generate_series(251, 300) g');
    await c.query(p2, "SELECT pg_create_restore_point('pgkeel_test_point')");
    await c.query(p2, 'INSERT INTO pitr SELECT g FROM generate_series(301, 350) g');
    await pause();
    const t2 = await now();
    await pause();
    await c.query(p2, 'INSERT INTO pitr SELECT g FROM generate_series(351, 400) g');

    assert.deepEqual(await rows(await restore('time1', '--target-time', t1)), { n: 100, max: 100 });
    assert.deepEqual(await rows(await restore('lsn', '--target-lsn', lsn)), { n: 200, max: 200 });
    assert.deepEqual(await rows(await restore('point', '--target-name', 'pgkeel_test_point')), { n: 300, max: 300 });
    // After the switchover: the target is on timeline 2.
    const tl = await restore('time2', '--target-time', t2);
    assert.deepEqual(await rows(tl), { n: 350, max: 350 });
  });

  it('a full backup restored gives identical data (rows and a pg_dump checksum)', async () => {
    const b = await cli(['backup', '--dir', c.dir, '--json']);
    assert.equal(b.code, 0, `${b.stdout}\n${b.stderr}`);
    const rec = JSON.parse(b.stdout) as { id: string; status: string; member: string };
    assert.equal(rec.status, 'ok');
    const s = await c.status();
    assert.notEqual(rec.member, leaderOf(s)?.name, 'taken from a replica');
    const copy = await restore('full', '--backup', rec.id, '--target', 'immediate');
    const dump = async (port: number) => {
      const pass = JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')).superuser.password as string;
      const r = await run(
        join(BIN, 'pg_dump'),
        ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-t', 'pitr', 'postgres'],
        {
          env: { PGPASSWORD: pass },
          asPostgres: false,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      // pg_dump >= 15.14 brackets its output with restrict/unrestrict meta-commands holding a random key per run.
      const stable = r.stdout.replace(/^\\(un)?restrict .*$/gm, '');
      return createHash('sha256').update(stable).digest('hex');
    };
    const q = "SELECT count(*)::int AS n, md5(string_agg(id::text || at::text, ',' ORDER BY id)) AS h FROM pitr";
    assert.deepEqual(await c.query(copy, q), await c.query(await leaderPort(), q));
    assert.equal(await dump(copy), await dump(await leaderPort()));
  });

  it('an incremental backup stores only what changed, and its chain restores identical data', async () => {
    const p = await leaderPort();
    await c.query(p, 'UPDATE pitr SET at = clock_timestamp() WHERE id % 100 = 0');
    await c.query(p, 'INSERT INTO pitr SELECT g FROM generate_series(1001, 1010) g');
    const r = await cli(['backup', '--dir', c.dir, '--type', 'incr', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const incr = JSON.parse(r.stdout) as {
      id: string;
      type: string;
      parent: string;
      status: string;
      repo_bytes: number;
    };
    assert.equal(incr.type, 'incr');
    assert.equal(incr.status, 'ok');
    const list = JSON.parse((await cli(['backup', 'list', '--dir', c.dir, '--json'])).stdout) as {
      backups: { id: string; repo_bytes: number }[];
    };
    const parent = list.backups.find((b) => b.id === incr.parent);
    assert.ok(parent, 'the parent is listed');
    assert.ok(
      incr.repo_bytes < parent.repo_bytes,
      `incremental ${incr.repo_bytes} B < its parent ${parent.repo_bytes} B`,
    );
    const copy = await restore('incr', '--backup', incr.id);
    const q = "SELECT count(*)::int AS n, md5(string_agg(id::text || at::text, ',' ORDER BY id)) AS h FROM pitr";
    assert.deepEqual(await c.query(copy, q), await c.query(await leaderPort(), q));
  });

  it('verify passes, then names a changed byte of a stored file and a missing WAL segment', async () => {
    const ok = await cli(['backup', 'verify', '--dir', c.dir]);
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    assert.match(ok.stdout, /verify OK/);

    const list = JSON.parse((await cli(['backup', 'list', '--dir', c.dir, '--json'])).stdout) as {
      repo: string;
      backups: { id: string; path: string; status: string }[];
    };
    const b = list.backups.filter((x) => x.status === 'ok')[0];
    assert.ok(b);
    const base = join(list.repo, b.path, 'base.tar.lz4');
    const bytes = readFileSync(base);
    const orig = bytes[4096] as number;
    bytes[4096] = orig ^ 0x01;
    writeFileSync(base, bytes);
    const bad = await cli(['backup', 'verify', '--dir', c.dir]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout, new RegExp(`${b.path}/base\\.tar\\.lz4 changed`));
    bytes[4096] = orig;
    writeFileSync(base, bytes);

    // The segment after the oldest backup's first one: needed by every backup's recovery past its start.
    const oldest = list.backups.find((x) => x.status === 'ok') as unknown as { timeline: number; start_lsn: string };
    const name = nextSegment(segmentOfLsn(oldest.timeline, oldest.start_lsn));
    const walDir = join(list.repo, 'wal', name.slice(0, 16));
    const seg = `${name}.lz4`;
    renameSync(join(walDir, seg), join(walDir, `${seg}.moved`));
    const gap = await cli(['backup', 'verify', '--dir', c.dir]);
    renameSync(join(walDir, `${seg}.moved`), join(walDir, seg));
    assert.equal(gap.code, 1, gap.stdout);
    assert.match(gap.stdout, new RegExp(`missing WAL segment ${seg.slice(0, 24)}`));
    assert.equal((await cli(['backup', 'verify', '--dir', c.dir])).code, 0);
  });

  it('a backup killed halfway is never listed as usable; the next one cleans it and succeeds', async () => {
    const p = await leaderPort();
    // Enough data that a backup takes a moment.
    await c.query(
      p,
      "CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || repeat('x', 200) AS pad FROM generate_series(1, 400000) g",
    );
    const repo = join(c.dir, 'backup', 'backups');
    const before = new Set(readdirSync(repo));
    const proc = spawn(process.execPath, [pgkeelBin, 'backup', '--dir', c.dir], { stdio: 'ignore' });
    // Kill the writer once its record says "running".
    await c.waitFor(
      'a running backup record',
      async () => {
        for (const id of readdirSync(repo)) {
          if (before.has(id)) continue;
          try {
            const r = JSON.parse(readFileSync(join(repo, id, 'backup.json'), 'utf8')) as { status: string };
            if (r.status === 'running') return true;
          } catch {
            // being written
          }
        }
        return undefined;
      },
      60_000,
    );
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    const listed = JSON.parse((await cli(['backup', 'list', '--dir', c.dir, '--json'])).stdout) as {
      backups: { id: string; status: string }[];
    };
    const killed = listed.backups.find((x) => !before.has(x.id));
    assert.ok(killed);
    assert.equal(killed.status, 'running', 'listed as running, not usable');
    // Its lease (30 s TTL) must expire before the next backup may start.
    const next = await c.waitFor(
      'the next backup to run',
      async () => {
        const r = await cli(['backup', '--dir', c.dir, '--json']);
        if (r.code === 0) return JSON.parse(r.stdout) as { id: string; status: string };
        assert.match(r.stderr, /BACKUP_IN_PROGRESS|another backup is running/);
        return undefined;
      },
      90_000,
    );
    assert.equal(next.status, 'ok');
    const after = JSON.parse((await cli(['backup', 'list', '--dir', c.dir, '--json'])).stdout) as {
      backups: { id: string; status: string; error?: string }[];
    };
    const cleaned = after.backups.find((x) => x.id === killed.id);
    assert.equal(cleaned?.status, 'failed');
    assert.match(cleaned?.error ?? '', /interrupted/);
    assert.deepEqual(readdirSync(join(repo, killed.id)), ['backup.json'], 'its data is gone');
  });
});
