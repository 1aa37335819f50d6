/**
 * `pgkeel up --dir NEW --restore-from OLD/backup --target-time T`: a new 3-node cluster bootstrapped from another
 * cluster's backup and archived WAL (bootstrap.restore), as it was at T. Rows committed before T are there, none
 * after; all three members are healthy (the others cloned from the restored leader); the new cluster logs in with
 * its own superuser password, archives into its own repository and takes a first backup there, and nothing of its
 * new timeline reaches the old repository. Then a replica re-initialized with create_replica_methods [backup,
 * basebackup] is made from the new cluster's newest backup and the archive, not by pg_basebackup.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { pidAlive } from '../../src/lib/proc.js';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PosixRepo } from '../../src/backup/posix-repo.js';
import { BackupStore } from '../../src/backup/store.js';
import { walRepoPath } from '../../src/backup/wal-names.js';
import { cli, healthyStatus, leaderOf, startCluster, type TestCluster } from '../helpers/cluster.js';

describe('up --restore-from', { timeout: 900_000 }, () => {
  let old: TestCluster;
  let neu: TestCluster;

  before(async () => {
    old = await startCluster({ name: 'old' });
    neu = await startCluster({ name: 'new' });
    const r = await old.up();
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
  after(async () => {
    await neu?.[Symbol.asyncDispose]();
    await old?.[Symbol.asyncDispose]();
  });

  const pause = () => new Promise((r) => setTimeout(r, 1100));
  const rows = async (c: TestCluster, port: number) =>
    (await c.query(port, 'SELECT count(*)::int AS n, coalesce(max(id), 0) AS max FROM t'))[0] as {
      n: number;
      max: number;
    };

  it('gives a new healthy 3-node cluster with exactly the rows committed before T', async () => {
    const p = leaderOf(await healthyStatus(old))?.port as number;
    await old.query(p, 'CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())');
    await old.query(p, 'INSERT INTO t SELECT g FROM generate_series(1, 100) g');
    await pause();
    const t = String((await old.query(p, 'SELECT now()::text AS t'))[0]?.t);
    await pause();
    await old.query(p, 'INSERT INTO t SELECT g FROM generate_series(101, 150) g');
    // The commit after T must be in the archive, so recovery can stop at T.
    const seg = String((await old.query(p, 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]?.f);
    const oldRepo = join(old.dir, 'backup');
    const oldStore = await BackupStore.open(new PosixRepo(oldRepo));
    await old.waitFor(`${seg} archived`, async () => (await oldStore.find(walRepoPath(seg))) !== null, 60_000);

    // Refused before anything is created: the same repository, and a target with no zone.
    const same = await cli(['up', '--detach', '--dir', old.dir, '--restore-from', oldRepo]);
    assert.equal(same.code, 1, same.stdout + same.stderr);
    assert.match(same.stderr, /holds a cluster already/);
    const noZone = await cli([
      'up',
      '--detach',
      '--dir',
      join(neu.dir, 'x'),
      '--restore-from',
      oldRepo,
      '--target-time',
      '2026-12-03 14:03',
    ]);
    assert.notEqual(noZone.code, 0);
    assert.match(noZone.stderr, /has no time zone/);

    const r = await neu.up(['--restore-from', oldRepo, '--target-time', t]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /restoring from .*: backup \d{8}-\d{6}F/);
    const s = await healthyStatus(neu, 3);
    assert.equal(s.members.length, 3);
    const leader = leaderOf(s);
    assert.ok(leader);
    assert.deepEqual(await rows(neu, leader.port), { n: 100, max: 100 });
    for (const m of s.members.filter((x) => x.name !== leader.name))
      await neu.waitFor(`${m.name} replays the restored rows`, async () => (await rows(neu, m.port)).n === 100);
    // A new cluster: it writes (a new timeline), archives into NEW/backup and has its first backup there.
    await neu.query(leader.port, 'INSERT INTO t SELECT g FROM generate_series(1001, 1010) g');
    const list = await cli(['backup', 'list', '--dir', neu.dir, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const l = JSON.parse(list.stdout) as { repo: string; backups: { status: string; timeline: number }[] };
    assert.equal(l.repo, join(neu.dir, 'backup'));
    assert.equal(l.backups[0]?.status, 'ok');
    assert.equal(l.backups[0]?.timeline, 2, 'promoted onto timeline 2');
    // The old repository never saw the new timeline.
    assert.equal(await oldStore.find(walRepoPath('00000002.history')), null);
    const cfg = readFileSync(join(neu.dir, 'node1', 'node.yml'), 'utf8');
    assert.match(cfg, /restore:\n\s+repo: .*\/backup/);
  });

  it('create_replica_methods [backup, basebackup]: a re-initialized replica is made from the newest backup', async () => {
    const s = await healthyStatus(neu, 3);
    const leader = leaderOf(s);
    const m = s.members.find((x) => x.role !== 'leader');
    assert.ok(leader && m);
    const file = join(neu.dir, m.name, 'node.yml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.setIn(['postgresql', 'create_replica_methods'], doc.createNode(['backup', 'basebackup']));
    writeFileSync(file, doc.toString(), { mode: 0o600 });
    // The agent reads node.yml at start: stop it, and `up` starts it again.
    const pid = Number(readFileSync(join(neu.dir, m.name, 'agent.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGTERM');
    await neu.waitFor(`${m.name}'s agent gone`, async () => !pidAlive(pid), 60_000);
    const r = await neu.up();
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const rc = await cli(['ctl', '--dir', neu.dir, 'reinit', m.name, '--force'], 90_000);
    assert.equal(rc.code, 0, `reinit: ${rc.stdout}${rc.stderr}`);
    const log = () => readFileSync(join(neu.dir, m.name, 'agent.log'), 'utf8');
    await neu.waitFor(
      `${m.name} re-created from the backup and streaming`,
      async () =>
        log().includes('creating the replica from the newest backup') &&
        (await neu.status()).members.find((x) => x.name === m.name)?.state === 'streaming',
      120_000,
    );
    assert.ok(!log().includes('creating the replica from a backup failed'), 'no fall-back to pg_basebackup');
    await neu.query(leader.port, 'INSERT INTO t SELECT g FROM generate_series(2001, 2005) g');
    await neu.waitFor(`${m.name} has every row`, async () => (await rows(neu, m.port)).n === 115, 60_000);
  });
});
