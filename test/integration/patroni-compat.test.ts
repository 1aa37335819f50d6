/**
 * The Patroni ecosystem against a real pgkeel cluster: Debian's patronictl 3.0.2 lists and switches it over
 * through our DCS layout and REST API, and the stock HAProxy recipe (examples/haproxy.cfg) routes writes to the
 * leader and reads to the replicas using our health checks. Both tools come from apt; a test is skipped only when
 * its package cannot be installed, with apt's own message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/lib/net.js';
import { pidAlive } from '../../src/lib/proc.js';
import { cli, isHealthy, leaderOf, repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import type { StatusJson } from '../../src/local/status.js';

interface Ran {
  code: number;
  out: string;
}

function sh(cmd: string, args: readonly string[], timeoutMs = 600_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, out: `${stdout}${stderr}` });
      },
    );
  });
}

const POLICY = '/usr/sbin/policy-rc.d';

/**
 * Installs a Debian package unless `binary` exists; returns null when usable, else why not (apt's message).
 * policy-rc.d (exit 101) keeps the package's service from starting; one that starts anyway is killed by pid.
 */
async function ensurePackage(pkg: string, binary: string, servicePidFile?: string): Promise<string | null> {
  if (existsSync(binary)) return null;
  const ours = !existsSync(POLICY);
  if (ours) writeFileSync(POLICY, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  let r: Ran;
  try {
    const install = ['install', '-y', '-o', 'DPkg::Lock::Timeout=600', pkg];
    r = await sh('apt-get', install);
    if (r.code !== 0) {
      await sh('apt-get', ['update', '-o', 'DPkg::Lock::Timeout=600']);
      r = await sh('apt-get', install);
    }
  } finally {
    if (ours) unlinkSync(POLICY);
  }
  if (servicePidFile && existsSync(servicePidFile)) {
    const pid = Number(readFileSync(servicePidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) process.kill(pid, 'SIGTERM');
  }
  if (r.code !== 0)
    return `apt-get install ${pkg} failed (exit ${r.code}): ${r.out.trim().split('\n').slice(-3).join(' | ')}`;
  return existsSync(binary) ? null : `apt-get install ${pkg} succeeded but ${binary} is missing`;
}

let c: TestCluster;
let patronictlCfg = '';

async function healthyStatus(leader?: string): Promise<StatusJson> {
  return c.waitFor(
    `a healthy cluster${leader ? ` led by ${leader}` : ''}`,
    async () => {
      const s = await c.status();
      return isHealthy(s, 3) && (!leader || leaderOf(s)?.name === leader) ? s : undefined;
    },
    90_000,
  );
}

/** The rows of patronictl's pretty table: member → [host, role, state, tl, lag]. */
function patronictlRows(out: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const cells = line.split('|').map((x) => x.trim());
    if (cells.length >= 6 && /^node\d$/.test(cells[1] ?? '')) rows.set(cells[1] as string, cells.slice(2, -1));
  }
  return rows;
}

describe('Patroni ecosystem compatibility', () => {
  before(async () => {
    c = await startCluster({ name: 'compat' });
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    patronictlCfg = join(c.dir, 'patronictl.yml');
    const s = await c.status();
    // patronictl sends restapi.authentication as basic auth (Patroni's request.py), as it would to Patroni.
    const { restapi } = JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as {
      restapi: { username: string; password: string };
    };
    // …and the cluster's etcd user (etcd authentication is on for every `pgkeel up` cluster).
    const etcdAuth = JSON.parse(readFileSync(join(c.dir, 'etcd', 'auth.json'), 'utf8')) as {
      username: string;
      password: string;
    };
    writeFileSync(
      patronictlCfg,
      `scope: ${s.scope}\nnamespace: /service/\netcd3:\n  hosts: ${s.etcd}\n  username: ${JSON.stringify(etcdAuth.username)}\n  password: ${JSON.stringify(etcdAuth.password)}\nrestapi:\n  authentication: {username: ${JSON.stringify(restapi.username)}, password: ${JSON.stringify(restapi.password)}}\n`,
    );
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('patronictl 3.0.2 list shows the three members and the leader', async (t) => {
    const why = await ensurePackage('patroni', '/usr/bin/patronictl');
    if (why) return t.skip(why);
    const s = await healthyStatus();
    const r = await sh('patronictl', ['-c', patronictlCfg, 'list'], 60_000);
    assert.equal(r.code, 0, r.out);
    const rows = patronictlRows(r.out);
    assert.deepEqual([...rows.keys()].sort(), ['node1', 'node2', 'node3'], r.out);
    for (const m of s.members) {
      const row = rows.get(m.name) as string[];
      assert.equal(row[0], `${m.host}:${m.port}`, r.out);
      assert.equal(row[1], m.role === 'leader' ? 'Leader' : 'Replica', r.out);
      assert.equal(row[2], 'running', r.out);
    }
  });

  it('the stock HAProxy recipe sends writes to the leader and reads to read-only replicas', async (t) => {
    const why = await ensurePackage('haproxy', '/usr/sbin/haproxy', '/run/haproxy.pid');
    if (why) return t.skip(why);
    const s = await healthyStatus();
    const leader = leaderOf(s);
    assert.ok(leader);
    const [rw, ro, stats] = [await freePort(), await freePort(), await freePort()];
    let pg = 0;
    let api = 0;
    const cfgText = readFileSync(join(repoRoot, 'examples', 'haproxy.cfg'), 'utf8')
      .replace(/127\.0\.0\.1:5431(\d)/g, (_, i: string) => (pg++, `127.0.0.1:${c.portBase + 10 + Number(i)}`))
      .replace(/check port 5432(\d)/g, (_, i: string) => (api++, `check port ${c.portBase + 20 + Number(i)}`))
      .replace(/bind 127\.0\.0\.1:5000\b/, `bind 127.0.0.1:${rw}`)
      .replace(/bind 127\.0\.0\.1:5001\b/, `bind 127.0.0.1:${ro}`)
      .replace(/bind 127\.0\.0\.1:7000\b/, `bind 127.0.0.1:${stats}`);
    assert.equal(api, 6, 'the recipe checks the REST port of 3 servers in both listeners');
    assert.ok(pg >= 6, 'the recipe routes to the PostgreSQL port of 3 servers in both listeners');
    for (const path of ['/primary', '/replica'])
      assert.match(cfgText, new RegExp(`option httpchk OPTIONS ${path}\\n\\s+http-check expect status 200`));
    const cfgFile = join(c.dir, 'haproxy.cfg');
    writeFileSync(cfgFile, cfgText);
    const check = await sh('haproxy', ['-c', '-f', cfgFile], 30_000);
    assert.equal(check.code, 0, check.out);

    let proc: ChildProcess | null = null;
    let log = '';
    try {
      proc = spawn('haproxy', ['-f', cfgFile, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      // HAProxy's own view (stats CSV): only the leader is UP behind "primary", only the replicas behind "replicas".
      await c
        .waitFor(
          'HAProxy checks to settle',
          async () => {
            const csv = await (await fetch(`http://127.0.0.1:${stats}/;csv`)).text();
            // A server going down reads "UP 1/3" (still routable) until `fall` checks failed: wait for a plain DOWN.
            const status = (px: string, st: string) =>
              csv
                .split('\n')
                .filter((l) => l.startsWith(`${px},node`) && l.split(',')[17] === st)
                .map((l) => l.split(',')[1])
                .sort();
            const others = s.members
              .filter((m) => m.name !== leader.name)
              .map((m) => m.name)
              .sort();
            return (
              JSON.stringify(status('primary', 'UP')) === JSON.stringify([leader.name]) &&
              JSON.stringify(status('primary', 'DOWN')) === JSON.stringify(others) &&
              JSON.stringify(status('replicas', 'UP')) === JSON.stringify(others) &&
              JSON.stringify(status('replicas', 'DOWN')) === JSON.stringify([leader.name])
            );
          },
          60_000,
        )
        .catch((err: Error) => assert.fail(`${err.message}\nhaproxy log:\n${log}`));

      const [where] = await c.query(rw, 'SELECT inet_server_port() AS port, pg_is_in_recovery() AS rec');
      assert.deepEqual(where, { port: leader.port, rec: false });
      await c.query(rw, 'CREATE TABLE IF NOT EXISTS haproxy_keel (id int PRIMARY KEY, via text)');
      await c.query(rw, `INSERT INTO haproxy_keel VALUES (1, 'haproxy primary port')`);
      assert.deepEqual(await c.query(leader.port, 'SELECT via FROM haproxy_keel'), [{ via: 'haproxy primary port' }]);

      for (let i = 0; i < 2; i++) {
        const [r] = await c.query(ro, 'SELECT inet_server_port() AS port, pg_is_in_recovery() AS rec');
        assert.equal(r?.['rec'], true);
        assert.notEqual(r?.['port'], leader.port);
        await assert.rejects(
          c.query(ro, `INSERT INTO haproxy_keel VALUES (${10 + i}, 'replica port')`),
          (err: Error & { code?: string }) =>
            err.code === '25006' || /cannot execute INSERT in a read-only transaction/.test(err.message),
        );
      }
    } finally {
      if (proc?.pid !== undefined && proc.exitCode === null) {
        const exited = new Promise((r) => proc?.once('exit', r));
        process.kill(proc.pid, 'SIGKILL');
        await exited;
      }
    }
  });

  it('patronictl 3.0.2 switchover --candidate --force switches the pgkeel cluster; pause/resume work', async (t) => {
    const why = await ensurePackage('patroni', '/usr/bin/patronictl');
    if (why) return t.skip(why);
    const s = await healthyStatus();
    const old = leaderOf(s)?.name as string;
    const candidate = s.members.find((m) => m.name !== old)?.name as string;
    const r = await sh('patronictl', ['-c', patronictlCfg, 'switchover', '--candidate', candidate, '--force'], 120_000);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`Successfully switched over to "${candidate}"`), r.out);
    const s2 = await healthyStatus(candidate);
    assert.equal(s2.members.find((m) => m.name === old)?.state, 'streaming');
    const list = await sh('patronictl', ['-c', patronictlCfg, 'list'], 60_000);
    assert.equal(patronictlRows(list.out).get(candidate)?.[1], 'Leader', list.out);

    const p = await sh('patronictl', ['-c', patronictlCfg, 'pause', '--wait'], 120_000);
    assert.match(p.out, /Success: cluster management is paused/, p.out);
    const ours = await cli(['ctl', 'list', '--json', '--dir', c.dir]);
    assert.equal((JSON.parse(ours.stdout) as { pause: boolean }).pause, true);
    const res = await sh('patronictl', ['-c', patronictlCfg, 'resume', '--wait'], 120_000);
    assert.match(res.out, /Success: cluster management is resumed/, res.out);
  });
});
