/**
 * The REST API of a default `pgkeel up` cluster under attack from an unprivileged local user (`runuser -u nobody`
 * with curl), then the same cluster migrated from a pre-credentials layout, then switched to REST over https with
 * client certificates. One cluster for the whole file: up, up again (migration restarts it), down and up with TLS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseDocument } from 'yaml';
import { makeCa, makeCert } from '../../src/lib/certs.js';
import { restTlsSections } from '../../src/local/rest-tls.js';
import { cli, isHealthy, leaderOf, startCluster, type TestCluster } from '../helpers/cluster.js';
import type { StatusJson } from '../../src/local/status.js';

let c: TestCluster;

interface Creds {
  username: string;
  password: string;
}

const saved = () => JSON.parse(readFileSync(join(c.dir, 'cluster.json'), 'utf8')) as { restapi?: Creds };

/** curl, optionally as another OS user; resolves with the HTTP code (0 when no HTTP answer) and curl's exit code. */
function curl(args: string[], user?: string): Promise<{ http: number; exit: number; body: string }> {
  const cmd = user ? ['runuser', '-u', user, '--', 'curl'] : ['curl'];
  return new Promise((resolve) => {
    execFile(
      cmd[0] as string,
      [...cmd.slice(1), '-sS', '--max-time', '60', '-w', '\n%{http_code}', ...args],
      { timeout: 90_000 },
      (err, stdout) => {
        const lines = stdout.trimEnd().split('\n');
        const http = Number(lines.pop());
        resolve({ http, exit: err ? Number((err as { code?: unknown }).code ?? 1) : 0, body: lines.join('\n') });
      },
    );
  });
}

async function healthy(timeoutMs = 90_000): Promise<StatusJson> {
  return c.waitFor(
    'a leader and two streaming replicas',
    async () => {
      const s = await c.status();
      return isHealthy(s, 3) ? s : undefined;
    },
    timeoutMs,
  );
}

const base = (s: StatusJson, name: string) =>
  (s.members.find((m) => m.name === name)?.api_url ?? '').replace(/\/patroni$/, '');

describe('REST API security on a real cluster', () => {
  before(async () => {
    c = await startCluster({ name: 'restsec' });
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('up generates REST credentials: cluster.json and every node.yml (0600) carry them', async () => {
    const r = saved().restapi;
    assert.equal(r?.username, 'pgkeel');
    assert.ok((r?.password.length ?? 0) >= 20);
    assert.equal(statSync(join(c.dir, 'cluster.json')).mode & 0o777, 0o600);
    for (const n of ['node1', 'node2', 'node3']) {
      const file = join(c.dir, n, 'node.yml');
      assert.equal(statSync(file).mode & 0o077, 0, `${file} is not readable by others`);
      const doc = parseDocument(readFileSync(file, 'utf8')).toJS() as { restapi: { authentication?: Creds } };
      assert.deepEqual(doc.restapi.authentication, r, file);
    }
  });

  it('as nobody: PATCH /config with an archive_command, POST /restart, /switchover, /failover, /reinitialize all answer 401 and nothing changes', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    const replica = s.members.find((m) => m.name !== leader)?.name as string;
    const marker = `/tmp/pgkeel-rest-attack-${randomBytes(6).toString('hex')}`;
    const attacks: Array<[string, string, string, unknown]> = [
      [
        leader,
        'PATCH',
        '/config',
        { postgresql: { parameters: { archive_mode: 'on', archive_command: `id > ${marker}; true` } } },
      ],
      [leader, 'POST', '/restart', {}],
      [replica, 'POST', '/restart', {}],
      [leader, 'POST', '/switchover', { leader, candidate: replica }],
      [replica, 'POST', '/failover', { candidate: replica }],
      [replica, 'POST', '/reinitialize', {}],
      [leader, 'POST', '/reload', {}],
    ];
    for (const [member, method, path, body] of attacks) {
      const r = await curl(
        ['-X', method, '-H', 'content-type: application/json', '-d', JSON.stringify(body), base(s, member) + path],
        'nobody',
      );
      assert.equal(r.http, 401, `${method} ${path} on ${member} as nobody: ${r.http} ${r.body}`);
      // Guessing does not help either.
      const g = await curl(
        [
          '-u',
          'pgkeel:guess',
          '-X',
          method,
          '-H',
          'content-type: application/json',
          '-d',
          JSON.stringify(body),
          base(s, member) + path,
        ],
        'nobody',
      );
      assert.equal(g.http, 401, `${method} ${path} with a guessed password`);
    }
    const cfg = await curl([base(s, leader) + '/config'], 'nobody');
    assert.equal(cfg.http, 200, 'GET stays open');
    assert.doesNotMatch(cfg.body, /archive_command/);
    const after = await c.status();
    assert.equal(leaderOf(after)?.name, leader, 'no switchover or failover happened');
    for (const m of after.members)
      assert.equal(m.pid, s.members.find((x) => x.name === m.name)?.pid, `${m.name}'s agent untouched`);
    const [row] = await c.query(
      leaderOf(after)?.port as number,
      `SELECT setting FROM pg_settings WHERE name = 'archive_command'`,
    );
    assert.notEqual(row?.['setting'], `id > ${marker}; true`);
    assert.equal(existsSync(marker), false, 'the archive_command never ran');
    const log = readFileSync(join(c.dir, leader, 'agent.log'), 'utf8');
    assert.match(log, /REST request refused: authentication failed.*"client":"(::ffff:)?127\.0\.0\.1"/);
    assert.ok(!log.includes('guess'), 'the password tried is not logged');
    assert.ok(!log.includes(saved().restapi?.password as string), 'the REST password is not logged');
  });

  it('as nobody through etcd itself: writing the config or failover key, or reading the cluster, is refused (etcd authentication)', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    const replica = s.members.find((m) => m.name !== leader)?.name as string;
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const kv = (key: string, value: string) =>
      JSON.stringify({ key: b64(`/service/${s.scope}/${key}`), value: b64(value) });
    const put = async (key: string, value: string) =>
      curl(['-X', 'POST', `http://${s.etcd}/v3/kv/put`, '-d', kv(key, value)], 'nobody');
    const cfgWrite = await put(
      'config',
      JSON.stringify({ ttl: 30, pause: true, postgresql: { parameters: { archive_mode: 'on' } } }),
    );
    assert.match(
      cfgWrite.body,
      /user name is empty|permission denied|invalid auth token/i,
      `config write as nobody: ${cfgWrite.http} ${cfgWrite.body}`,
    );
    const failover = await put('failover', JSON.stringify({ leader, member: replica }));
    assert.match(
      failover.body,
      /user name is empty|permission denied|invalid auth token/i,
      `failover write as nobody: ${failover.body}`,
    );
    const read = await curl(
      [
        '-X',
        'POST',
        `http://${s.etcd}/v3/kv/range`,
        '-d',
        JSON.stringify({ key: b64(`/service/${s.scope}/`), range_end: b64(`/service/${s.scope}0`) }),
      ],
      'nobody',
    );
    assert.doesNotMatch(read.body, /"kvs"/, `reading the cluster as nobody: ${read.body}`);
    const after = await c.status();
    assert.equal(leaderOf(after)?.name, leader, 'no switchover happened');
    const cfg = await curl([base(s, leader) + '/config']);
    assert.doesNotMatch(cfg.body, /"pause": ?true/, 'the config key is unchanged');
  });

  it('pgkeel ctl switchover (root, with the generated credentials) still works', async () => {
    const s = await healthy();
    const leader = leaderOf(s)?.name as string;
    const candidate = s.members.find((m) => m.name !== leader)?.name as string;
    // A node config without the credentials: refused by the member, with a message saying what is missing.
    const noCreds = join(c.dir, 'no-creds.yml');
    const doc = parseDocument(readFileSync(join(c.dir, 'node1', 'node.yml'), 'utf8'));
    doc.deleteIn(['restapi', 'authentication']);
    writeFileSync(noCreds, doc.toString(), { mode: 0o600 });
    const refused = await cli(['ctl', 'pause', '-c', noCreds], 60_000);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      /pause refused by member node\d: HTTP 401: no valid credentials; give a -c node.yml with restapi.authentication.*\(CTL_REST_UNAUTHORIZED\)/,
    );
    assert.equal(leaderOf(await c.status())?.name, leader);

    const r = await cli(['ctl', 'switchover', '--candidate', candidate, '--force', '--dir', c.dir], 120_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const s2 = await healthy();
    assert.equal(leaderOf(s2)?.name, candidate);
  });

  it('a cluster made before REST credentials gets them on its next up, and its running agents are restarted to use them', async () => {
    const old = saved().restapi as Creds;
    // The layout of an older pgkeel: no restapi in cluster.json nor in the node configs; agents still running.
    const cj = saved();
    delete cj.restapi;
    writeFileSync(join(c.dir, 'cluster.json'), JSON.stringify(cj, null, 2));
    for (const n of ['node1', 'node2', 'node3']) {
      const file = join(c.dir, n, 'node.yml');
      const doc = parseDocument(readFileSync(file, 'utf8'));
      doc.deleteIn(['restapi', 'authentication']);
      writeFileSync(file, doc.toString());
    }
    const up = await c.up();
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /REST credentials added to this cluster/);
    const fresh = saved().restapi as Creds;
    assert.ok(fresh.password && fresh.password !== old.password);
    const s = await healthy();
    const url = base(s, leaderOf(s)?.name as string) + '/reload';
    assert.equal(
      (await curl(['-X', 'POST', '-u', `${old.username}:${old.password}`, url])).http,
      401,
      'the restarted agent no longer takes the old password',
    );
    assert.equal((await curl(['-X', 'POST', url], 'nobody')).http, 401);
    assert.equal((await curl(['-X', 'POST', '-u', `${fresh.username}:${fresh.password}`, url])).http, 202);
  });

  it('REST over https with verify_client required: no client certificate is refused, ctl and health checks work through https', async () => {
    assert.equal((await c.down()).code, 0);
    const tls = join(c.dir, 'tls');
    const ca = await makeCa(tls);
    for (const n of ['node1', 'node2', 'node3', 'client']) await makeCert(tls, ca, n);
    for (const n of ['node1', 'node2', 'node3']) {
      const file = join(c.dir, n, 'node.yml');
      const doc = parseDocument(readFileSync(file, 'utf8'));
      const sec = restTlsSections(tls, n);
      for (const [k, v] of Object.entries(sec.restapi)) doc.setIn(['restapi', k], v);
      doc.set('ctl', doc.createNode(sec.ctl));
      writeFileSync(file, doc.toString());
    }
    const up = await c.up();
    assert.equal(up.code, 0, `up with TLS failed:\n${up.stdout}\n${up.stderr}`);
    const s = await healthy();
    for (const m of s.members) assert.match(m.api_url, /^https:\/\/127\.0\.0\.1:\d+\/patroni$/);
    const leader = leaderOf(s)?.name as string;
    const caArgs = ['--cacert', ca.cert];
    const client = ['--cert', join(tls, 'client.crt'), '--key', join(tls, 'client.key')];

    const noCert = await curl([...caArgs, base(s, leader) + '/patroni']);
    assert.equal(noCert.http, 0, `no client certificate: refused at the handshake (curl exit ${noCert.exit})`);
    assert.notEqual(noCert.exit, 0);
    const plain = await curl([base(s, leader).replace('https:', 'http:') + '/patroni']);
    assert.notEqual(plain.http, 200, 'plain http is not served');
    for (const m of s.members) {
      assert.equal(
        (await curl([...caArgs, ...client, base(s, m.name) + '/primary'])).http,
        m.name === leader ? 200 : 503,
        `${m.name} /primary over https`,
      );
      assert.equal(
        (await curl([...caArgs, ...client, base(s, m.name) + '/replica'])).http,
        m.name === leader ? 503 : 200,
        `${m.name} /replica over https`,
      );
    }
    const withCertNoPassword = await curl([...caArgs, ...client, '-X', 'POST', base(s, leader) + '/restart']);
    assert.equal(withCertNoPassword.http, 401, 'a client certificate does not replace the credentials');

    const list = await cli(['ctl', 'list', '--json', '--dir', c.dir], 60_000);
    assert.equal(list.code, 0, list.stderr);
    const candidate = s.members.find((m) => m.name !== leader)?.name as string;
    const sw = await cli(['ctl', 'switchover', '--candidate', candidate, '--force', '--dir', c.dir], 120_000);
    assert.equal(sw.code, 0, `ctl switchover over https:\n${sw.stdout}\n${sw.stderr}`);
    assert.equal(leaderOf(await healthy())?.name, candidate);
  });
});
