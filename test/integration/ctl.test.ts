/**
 * `pgkeel ctl` and the REST API against a real 3-node cluster (etcd + agents + PostgreSQL through the real CLI):
 * list/status agreement, health-check codes per role, switchover to a named member and to any member with the
 * old leader rejoining and no committed row lost, a scheduled switchover listed and cancelled, PATCH /config, and
 * pause refusing switchovers. One cluster for the whole file; every wait polls a condition.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, isHealthy, leaderOf, startCluster, type TestCluster } from '../helpers/cluster.js';
import type { StatusJson } from '../../src/local/status.js';
import type { ListJson } from '../../src/ctl/view.js';

let c: TestCluster;

function apiOf(s: StatusJson, name: string): string {
  const m = s.members.find((x) => x.name === name);
  assert.ok(m, `member ${name} in ${JSON.stringify(s.members)}`);
  return m.api_url.replace(/\/patroni$/, '');
}

/** As an operator would: unsafe methods with the REST credentials `up` generated (cluster.json). */
async function rest(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ code: number; text: string }> {
  const headers: Record<string, string> = body !== undefined ? { 'content-type': 'application/json' } : {};
  if (method !== 'GET' && method !== 'HEAD') {
    const { restapi } = JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as {
      restapi: { username: string; password: string };
    };
    headers['authorization'] = 'Basic ' + Buffer.from(`${restapi.username}:${restapi.password}`).toString('base64');
  }
  const res = await fetch(base + path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(90_000),
  });
  return { code: res.status, text: await res.text() };
}

/** The status code alone, as HAProxy's httpchk reads it (the response headers, not the body). */
function statusOnly(url: string, method: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 10_000 }, (res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

const ctl = (...args: string[]) => cli(['ctl', ...args, '--dir', c.dir], 120_000);

async function healthy(): Promise<StatusJson> {
  return c.waitFor(
    'a leader and two streaming replicas',
    async () => {
      const s = await c.status();
      return isHealthy(s, 3) ? s : undefined;
    },
    90_000,
  );
}

/** Waits until every member streams on the new leader's timeline and `name` is the leader. */
async function ledBy(name: string): Promise<StatusJson> {
  return c.waitFor(
    `${name} leading two streaming replicas`,
    async () => {
      const s = await c.status();
      return isHealthy(s, 3) && leaderOf(s)?.name === name ? s : undefined;
    },
    90_000,
  );
}

describe('pgkeel ctl and the REST API on a real cluster', () => {
  before(async () => {
    c = await startCluster({ name: 'ctl' });
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('ctl list --json agrees with status --json; list, topology and history print tables', async () => {
    const s = await healthy();
    const r = await ctl('list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as ListJson;
    assert.equal(j.scope, s.scope);
    assert.match(j.system_id ?? '', /^\d+$/);
    assert.equal(j.leader, leaderOf(s)?.name);
    assert.deepEqual(
      j.members.map((m) => [m.name, m.role]),
      s.members.map((m) => [m.name, m.role]),
    );
    assert.deepEqual(
      j.members.map((m) => [m.name, m.port, m.api_url]),
      s.members.map((m) => [m.name, m.port, m.api_url]),
    );

    // The same cluster found from a node config instead of the local directory.
    const viaConfig = await cli(['ctl', 'list', '--json', '-c', join(c.dir, 'node2', 'node.yml')], 60_000);
    assert.equal(viaConfig.code, 0, viaConfig.stderr);
    assert.deepEqual(
      (JSON.parse(viaConfig.stdout) as ListJson).members.map((m) => m.role),
      j.members.map((m) => m.role),
    );

    const t = await ctl('list');
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`^Cluster: ${s.scope} \\(system id ${j.system_id}\\)`));
    assert.match(t.stdout, /Member\s+Host\s+Role\s+State\s+TL\s+Lag in MB\s+Lag in s\s+Tags/);
    assert.match(t.stdout, new RegExp(`${j.leader}\\s+127\\.0\\.0\\.1:\\d+\\s+Leader\\s+running`));
    assert.equal((t.stdout.match(/Replica\s+streaming/g) ?? []).length, 2);
    const topo = await ctl('topology');
    assert.match(topo.stdout, /\+ node\d\s+127/);
    assert.equal((await ctl('history')).code, 0);
  });

  it('ctl from the DCS settings alone: --etcd … --scope … and a ctl.yml without any database password', async () => {
    const s = await healthy();
    const { username, password } = JSON.parse(readFileSync(join(c.dir, 'etcd', 'auth.json'), 'utf8')) as {
      username: string;
      password: string;
    };
    const pwFile = join(c.dir, 'ctl-etcd.pw');
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    const viaFlags = await cli(
      [
        'ctl',
        '--etcd',
        s.etcd,
        '--scope',
        s.scope,
        '--etcd-user',
        username,
        '--etcd-password-file',
        pwFile,
        'list',
        '--json',
      ],
      60_000,
    );
    assert.equal(viaFlags.code, 0, viaFlags.stderr);
    const roles = (j: string) => (JSON.parse(j) as ListJson).members.map((m) => [m.name, m.role]);
    const expected = s.members.map((m) => [m.name, m.role]);
    assert.deepEqual(roles(viaFlags.stdout), expected);
    const ctlYml = join(c.dir, 'ctl.yml');
    writeFileSync(
      ctlYml,
      [
        `scope: ${s.scope}`,
        'etcd3:',
        `  hosts: [${s.etcd}]`,
        `  username: ${username}`,
        '  password_file: ctl-etcd.pw',
      ].join('\n'),
    );
    const viaFile = await cli(['ctl', '-c', ctlYml, 'list', '--json'], 60_000);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.deepEqual(roles(viaFile.stdout), expected);
    const wrongScope = await cli(
      ['ctl', '--etcd', s.etcd, '--scope', 'nosuch', '--etcd-user', username, '--etcd-password-file', pwFile, 'list'],
      60_000,
    );
    assert.equal(wrongScope.code, 1);
    // up's etcd user may read only its own cluster's prefix: another scope is refused by etcd, and ctl says so.
    assert.match(wrongScope.stderr, /denied user "pgkeel".*permission denied.*CTL_DCS_UNAVAILABLE/);
  });

  it('health checks answer per role: /primary, /replica, /health; HEAD has no body', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    for (const m of s.members) {
      const base = apiOf(s, m.name);
      const isLeader = m.name === leader;
      assert.equal((await rest(base, 'GET', '/primary')).code, isLeader ? 200 : 503, `${m.name} /primary`);
      assert.equal((await rest(base, 'GET', '/replica')).code, isLeader ? 503 : 200, `${m.name} /replica`);
      assert.equal((await rest(base, 'GET', '/health')).code, 200, `${m.name} /health`);
      const head = await rest(base, 'HEAD', '/primary');
      assert.deepEqual(head, { code: isLeader ? 200 : 503, text: '' });
      assert.equal(await statusOnly(`${base}/replica`, 'OPTIONS'), isLeader ? 503 : 200, `${m.name} OPTIONS /replica`);
    }
  });

  it('switchover to a named candidate, then to any member: the old leader rejoins and no row is lost', async () => {
    const s = await healthy();
    const old = leaderOf(s);
    assert.ok(old);
    const candidate = s.members.find((m) => m.name !== old.name)?.name as string;
    await c.query(old.port, 'CREATE TABLE IF NOT EXISTS ctl_keel (id int PRIMARY KEY, note text)');
    await c.query(old.port, `INSERT INTO ctl_keel VALUES (1, 'before switchover')`);

    // Without --force on a non-terminal it refuses.
    const noForce = await ctl('switchover', '--candidate', candidate);
    assert.equal(noForce.code, 1);
    assert.match(noForce.stderr, /add --force \(CTL_CONFIRM_NEEDED\)/);

    const r = await ctl('switchover', '--candidate', candidate, '--force');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Successfully switched over to "${candidate}"`));
    const s2 = await ledBy(candidate);
    assert.equal(s2.members.find((m) => m.name === old.name)?.state, 'streaming', 'the old leader streams again');
    const next = leaderOf(s2);
    assert.ok(next);
    assert.deepEqual(await c.query(next.port, 'SELECT note FROM ctl_keel WHERE id = 1'), [
      { note: 'before switchover' },
    ]);
    await c.query(next.port, `INSERT INTO ctl_keel VALUES (2, 'after first switchover')`);

    const any = await ctl('switchover', '--force');
    assert.equal(any.code, 0, `${any.stdout}\n${any.stderr}`);
    const m = /Successfully switched over to "(node\d)"/.exec(any.stdout);
    assert.ok(m, any.stdout);
    assert.notEqual(m[1], candidate);
    const s3 = await ledBy(m[1] as string);
    const third = leaderOf(s3);
    assert.ok(third);
    assert.deepEqual(await c.query(third.port, 'SELECT id FROM ctl_keel ORDER BY id'), [{ id: 1 }, { id: 2 }]);
    const hist = await ctl('history', '--json');
    assert.ok((JSON.parse(hist.stdout) as unknown[]).length >= 2, hist.stdout);
  });

  it('refusals: unknown candidate, wrong leader (REST 412), failover without a candidate (usage, exit 2)', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    const replica = s.members.find((m) => m.name !== leader)?.name as string;
    const unknown = await ctl('switchover', '--candidate', 'node9', '--force');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /member node9 does not exist.*\(CTL_UNKNOWN_MEMBER\)/);
    const wrong = await rest(apiOf(s, leader), 'POST', '/switchover', { leader: replica });
    assert.equal(wrong.code, 412);
    assert.match(wrong.text, /leader name does not match/);
    const usage = await ctl('failover', '--force');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /needs --candidate/);
  });

  it('a scheduled switchover is listed and can be cancelled with DELETE /switchover', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    const candidate = s.members.find((m) => m.name !== leader)?.name as string;
    const at = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, '+00:00');
    const r = await ctl('switchover', '--candidate', candidate, '--scheduled', at, '--force');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Switchover scheduled/);
    const j = JSON.parse((await ctl('list', '--json')).stdout) as ListJson;
    assert.deepEqual(j.failover, { leader, member: candidate, scheduled_at: at });
    assert.match(
      (await ctl('list')).stdout,
      new RegExp(`Switchover scheduled at: ${at.replace('+', '\\+')}\\s+from: ${leader}\\s+to: ${candidate}`),
    );
    const body = JSON.parse((await rest(apiOf(s, leader), 'GET', '/cluster')).text) as {
      scheduled_switchover?: unknown;
    };
    assert.deepEqual(body.scheduled_switchover, { at, from: leader, to: candidate });

    const del = await rest(apiOf(s, candidate), 'DELETE', '/switchover');
    assert.deepEqual(del, { code: 200, text: 'scheduled switchover deleted' });
    assert.equal((JSON.parse((await ctl('list', '--json')).stdout) as ListJson).failover, null);
    assert.deepEqual(await rest(apiOf(s, leader), 'DELETE', '/switchover'), {
      code: 404,
      text: 'no switchover is scheduled',
    });
    assert.equal(leaderOf(await c.status())?.name, leader, 'nothing moved');
  });

  it('PATCH /config round trip, 400 on an invalid value, edit-config and show-config', async () => {
    const s = await healthy();
    const base = apiOf(s, leaderOf(s)?.name as string);
    const p = await rest(base, 'PATCH', '/config', { postgresql: { parameters: { work_mem: '8MB' } } });
    assert.equal(p.code, 200, p.text);
    assert.equal(
      (JSON.parse(p.text) as { postgresql: { parameters: Record<string, unknown> } }).postgresql.parameters['work_mem'],
      '8MB',
    );
    type Cfg = { postgresql: { parameters: Record<string, unknown> }; ttl: number };
    // GET /config answers from the agent's last cycle: poll until it has seen the change.
    const got = await c.waitFor(
      'GET /config to show work_mem',
      async () => {
        const v = JSON.parse((await rest(base, 'GET', '/config')).text) as Cfg;
        return v.postgresql.parameters['work_mem'] === '8MB' ? v : undefined;
      },
      30_000,
    );
    assert.match((await ctl('show-config')).stdout, /work_mem: 8MB/);

    const bad = await rest(base, 'PATCH', '/config', { ttl: 'soon', postgresql: { use_slot: true } });
    assert.equal(bad.code, 400);
    const problems = (JSON.parse(bad.text) as { problems: Array<{ path: string; message: string }> }).problems;
    assert.deepEqual(problems.map((x) => x.path).sort(), ['postgresql.use_slot', 'ttl']);
    assert.match(problems.find((x) => x.path === 'postgresql.use_slot')?.message ?? '', /did you mean "use_slots"/);

    const e = await ctl('edit-config', '--set', 'loop_wiat=2', '--force');
    assert.equal(e.code, 1);
    assert.match(e.stderr, /loop_wiat: unknown key \(did you mean "loop_wait"\?\)/);
    const ok = await ctl(
      'edit-config',
      '--set',
      'postgresql.parameters.work_mem=null',
      '--set',
      `ttl=${got.ttl + 1}`,
      '--force',
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /- postgresql\.parameters\.work_mem: "8MB"/);
    const after = await c.waitFor(
      'GET /config to show the edit',
      async () => {
        const v = JSON.parse((await rest(base, 'GET', '/config')).text) as Cfg;
        return v.ttl === got.ttl + 1 ? v : undefined;
      },
      30_000,
    );
    assert.equal(after.postgresql.parameters['work_mem'], undefined);
  });

  it('pause: every agent reports it, switchovers are refused (412), resume ends it', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    const candidate = s.members.find((m) => m.name !== leader)?.name as string;
    const p = await ctl('pause', '--wait');
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /Success: cluster management is paused/);
    for (const m of s.members) {
      const body = JSON.parse((await rest(apiOf(s, m.name), 'GET', '/patroni')).text) as { pause?: boolean };
      assert.equal(body.pause, true, `${m.name} reports pause`);
    }
    assert.match((await ctl('list')).stdout, /Maintenance mode: on/);
    const refused = await rest(apiOf(s, leader), 'POST', '/switchover', { leader, candidate });
    assert.equal(refused.code, 412);
    assert.match(refused.text, /paused/);
    const viaCtl = await ctl('switchover', '--force');
    assert.equal(viaCtl.code, 1);
    assert.match(viaCtl.stderr, /\(CTL_PAUSED\)/);
    assert.equal((await ctl('pause')).code, 1, 'pausing twice is refused');

    const r = await ctl('resume', '--wait');
    assert.equal(r.code, 0, r.stderr);
    for (const m of s.members) {
      const body = JSON.parse((await rest(apiOf(s, m.name), 'GET', '/patroni')).text) as { pause?: boolean };
      assert.equal(body.pause, undefined, `${m.name} no longer paused`);
    }
    assert.equal(leaderOf(await c.status())?.name, leader, 'leadership did not move while paused');
  });
});
