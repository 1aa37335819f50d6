/**
 * The foundation, end to end with real etcd and PostgreSQL through the real CLI: bootstrap of a 3-node cluster,
 * replication of a write, down/up keeping data, an agent restarted alone rejoining, two clusters side by side,
 * and a broken config failing fast.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { cli, freePortBase, isHealthy, leaderOf, pgkeelBin, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

describe('pgkeel up: a local 3-node cluster', () => {
  it('bootstraps one leader and two streaming replicas, replicates writes, survives down/up, and rejoins a restarted agent', async () => {
    await using c = await startCluster();
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /etcd up/);
    assert.match(up.stdout, /initializing new cluster/);

    const s = await c.status();
    assert.ok(isHealthy(s, 3), `expected 1 leader + 2 streaming: ${JSON.stringify(s.members)}`);
    assert.equal(s.members.length, 3);
    assert.equal(s.user, 'postgres');
    assert.equal(s.passfile, join(c.dir, 'pgpass'));
    for (const m of s.members) {
      assert.equal(typeof m.pid, 'number');
      assert.ok(pidAlive(m.pid as number), `agent pid ${m.pid} of ${m.name} is alive`);
      assert.equal(m.timeline, 1);
    }
    const leader = leaderOf(s);
    assert.ok(leader);
    const replicas = s.members.filter((m) => m !== leader);

    const rep = await c.query(leader.port, `SELECT application_name, state FROM pg_stat_replication ORDER BY 1`);
    assert.deepEqual(
      rep.map((r) => [r['application_name'], r['state']]),
      replicas.map((r) => [r.name, 'streaming']),
    );

    await c.query(leader.port, `CREATE TABLE keel (id int PRIMARY KEY, note text)`);
    await c.query(leader.port, `INSERT INTO keel VALUES (1, 'written on the leader')`);
    for (const r of replicas) {
      const rows = await c.waitFor(
        `row on ${r.name}`,
        async () => {
          const x = await c.query(r.port, `SELECT note FROM keel WHERE id = 1`);
          return x.length ? x : undefined;
        },
        15_000,
      );
      assert.equal(rows[0]?.['note'], 'written on the leader');
      const [ro] = await c.query(r.port, `SELECT pg_is_in_recovery() AS rec`);
      assert.equal(ro?.['rec'], true);
    }
    const [{ sysid } = {}] = await c.query(
      leader.port,
      `SELECT system_identifier::text AS sysid FROM pg_control_system()`,
    );

    // down stops every process; data stays.
    const pidsBefore = c.pids();
    assert.ok(pidsBefore.length >= 7, `agents, postmasters and etcd are running: ${pidsBefore}`);
    const down = await c.down();
    assert.equal(down.code, 0, down.stderr);
    await sleep(200);
    assert.deepEqual(pidsBefore.filter(pidAlive), [], 'no process of the cluster survives down');

    const up2 = await c.up();
    assert.equal(up2.code, 0, `second up failed:\n${up2.stdout}\n${up2.stderr}`);
    assert.doesNotMatch(
      up2.stdout,
      /initializing new cluster|creating replica/,
      'a resumed cluster neither re-initializes nor re-clones',
    );
    const s2 = await c.status();
    assert.ok(isHealthy(s2, 3));
    const l2 = leaderOf(s2);
    assert.ok(l2);
    const [row] = await c.query(l2.port, `SELECT note FROM keel WHERE id = 1`);
    assert.equal(row?.['note'], 'written on the leader');
    const [{ sysid: sysid2 } = {}] = await c.query(
      l2.port,
      `SELECT system_identifier::text AS sysid FROM pg_control_system()`,
    );
    assert.equal(sysid2, sysid, 'same database system after down/up');

    // An agent killed alone (its PostgreSQL keeps running) is started again by `up` and picks its node back up.
    const victim = s2.members.find((m) => m.role !== 'leader');
    assert.ok(victim?.pid);
    const others = s2.members.filter((m) => m !== victim).map((m) => m.pid);
    process.kill(victim.pid, 'SIGKILL');
    await c.waitFor('the agent to die', async () => !pidAlive(victim.pid as number), 10_000);
    const up3 = await c.up();
    assert.equal(up3.code, 0, `third up failed:\n${up3.stdout}\n${up3.stderr}`);
    assert.match(up3.stdout, new RegExp(`${victim.name}: agent started`));
    const s3 = await c.status();
    assert.ok(isHealthy(s3, 3));
    const back = s3.members.find((m) => m.name === victim.name);
    assert.notEqual(back?.pid, victim.pid, 'a new agent process');
    assert.deepEqual(
      s3.members.filter((m) => m.name !== victim.name).map((m) => m.pid),
      others,
      'the other agents were left alone',
    );
    await c.query(l2.port, `INSERT INTO keel VALUES (2, 'after the restart')`);
    await c.waitFor(
      'row 2 on the restarted node',
      async () => (await c.query(victim.port, `SELECT 1 FROM keel WHERE id = 2`)).length > 0,
      15_000,
    );
  });

  it('runs two clusters side by side on different --port-base', async () => {
    await using a = await startCluster({ nodes: 2, name: 'side-a' });
    await using b = await startCluster({ nodes: 2, name: 'side-b' });
    assert.notEqual(a.portBase, b.portBase);
    const [ua, ub] = [await a.up(), await b.up()];
    assert.equal(ua.code, 0, ua.stderr);
    assert.equal(ub.code, 0, ub.stderr);
    const [sa, sb] = [await a.status(), await b.status()];
    assert.ok(isHealthy(sa, 2) && isHealthy(sb, 2));
    const la = leaderOf(sa);
    const lb = leaderOf(sb);
    assert.ok(la && lb);
    await a.query(la.port, `CREATE TABLE only_in_a (x int)`);
    const inB = await b.query(lb.port, `SELECT to_regclass('only_in_a') AS t`);
    assert.equal(inB[0]?.['t'], null, 'the clusters are separate databases');
    assert.notEqual(sa.etcd, sb.etcd);
  });
});

describe('pgkeel up in the foreground', () => {
  it('stops every process of the cluster on Ctrl-C (SIGINT) and exits 0', async () => {
    await using tmp = await tempDir('fg');
    const dir = join(tmp.path, 'c');
    const child = spawn(
      process.execPath,
      [pgkeelBin, 'up', '--dir', dir, '--nodes', '1', '--port-base', String(await freePortBase())],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      for (let i = 0; i < 240 && !out.includes('Press Ctrl-C'); i++) await sleep(500);
      assert.match(out, /Press Ctrl-C/, out);
      const pids = ['node1/agent.pid', 'etcd/etcd.pid', 'node1/data/postmaster.pid'].map((f) =>
        Number(readFileSync(join(dir, f), 'utf8').split('\n')[0]),
      );
      assert.ok(pids.every(pidAlive));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.match(out, /stopping/);
      assert.deepEqual(pids.filter(pidAlive), [], 'nothing survives Ctrl-C');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await cli(['down', '--dir', dir]).catch(() => {});
    }
  });
});

describe('pgkeel up when a port is taken', () => {
  it('refuses at once, naming the port and what needed it, and starts nothing', async () => {
    await using tmp = await tempDir('busy');
    const base = await freePortBase();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(base + 12, '127.0.0.1', () => r()));
    try {
      const r = await cli(['up', '--detach', '--dir', join(tmp.path, 'c'), '--port-base', String(base)], 60_000);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`port ${base + 12} \\(node2 PostgreSQL\\) on 127\\.0\\.0\\.1 is in use`));
      assert.doesNotMatch(r.stdout, /etcd up/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

describe('a broken config', () => {
  it('fails fast with exit 2, naming every bad key and the expected form, and starts nothing', async () => {
    await using dir = await tempDir('badcfg');
    const file = join(dir.path, 'node.yml');
    writeFileSync(
      file,
      [
        'scope: demo',
        'name: n1',
        'etcd3: {hosts: "127.0.0.1:notaport"}',
        'restapi: {listen: 127.0.0.1:8008}',
        'postgresql:',
        '  listen: 127.0.0.1:5432',
        `  data_dir: ${dir.path}/data`,
        '  authentication:',
        '    superuser: {password: x}',
        '    replication: {password: y}',
        'bootstrap: {dcs: {ttl: 5, loop_wait: 2, retry_timeout: 3, maximum_lag_on_failover: "lots"}}',
        'tagz: {}',
      ].join('\n'),
    );
    const started = Date.now();
    const r = await cli(['agent', '-c', file], 20_000);
    assert.equal(r.code, 2);
    assert.ok(Date.now() - started < 10_000, 'fails fast');
    assert.match(r.stderr, /etcd3\.hosts\[0\]: expected host:port/);
    assert.match(r.stderr, /bootstrap\.dcs\.maximum_lag_on_failover: expected an integer \(bytes\)/);
    assert.match(r.stderr, /tagz: unknown key \(did you mean "tags"\?\)/);
    const check = await cli(['config', 'check', '-c', file], 20_000);
    assert.equal(check.code, 2);
    assert.match(check.stderr, /tagz/);
  });
});
