/**
 * The etcd part of `pgkeel up --tls`, end to end through the CLI: etcd serves https only, wants a client certificate
 * and a user; the agents, the proxy, `status` and `ctl --dir` work unchanged; a client without credentials cannot
 * write the cluster's `config` key (finding 1 of issue 8); a resumed cluster does not redo the setup; no log of
 * the run holds an etcd password.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdStore } from '../../src/dcs/etcd.js';
import { StoreError } from '../../src/dcs/store.js';
import { cli, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { createLocalCluster } from '../../src/local/layout.js';
import { prepare } from '../../src/local/up.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

describe('pgkeel up --tls: etcd with https, client certificates and a user', () => {
  it('runs the cluster through an authenticated https etcd, refuses anonymous writes, and resumes without redoing the setup', async () => {
    await using c = await startCluster({ nodes: 1, name: 'up-etcd-tls' });
    const up = await c.up(['--tls']);
    assert.equal(up.code, 0, `up --tls failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /etcd up on https:\/\//);
    assert.match(up.stdout, /etcd authentication enabled \(user pgkeel/);

    const s = await c.status();
    assert.equal(s.error, undefined, `status reads etcd over https with the user: ${s.error}`);
    assert.equal(s.members[0]?.role, 'leader');
    // The proxy follows the leader through the same etcd (its `etcd:` section): a query through it reaches the primary.
    const viaProxy = await c.waitFor(
      'a query through the proxy',
      async () => (await c.query(c.portBase + 2, 'SELECT pg_is_in_recovery() AS rec'))[0],
      30_000,
    );
    assert.equal(viaProxy['rec'], false);
    const list = await cli(['ctl', 'list', '--dir', c.dir, '--json'], 30_000);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /node1/);

    const secrets = JSON.parse(readFileSync(join(c.dir, 'etcd', 'auth.json'), 'utf8')) as {
      root_password: string;
      password: string;
    };
    assert.equal(statSync(join(c.dir, 'etcd', 'auth.json')).mode & 0o777, 0o600);
    for (const f of ['ca.key', 'etcd.key', 'etcd-client.key'])
      assert.equal(statSync(join(c.dir, 'tls', f)).mode & 0o777, 0o600, f);
    const node = readFileSync(join(c.dir, 'node1', 'node.yml'), 'utf8');
    assert.match(node, /protocol: https/);
    assert.match(readFileSync(join(c.dir, 'proxy.yml'), 'utf8'), /protocol: https/);

    // Finding 1: anyone could write the config key. Now even a client holding the cluster's client certificate but no user cannot.
    const endpoint = `127.0.0.1:${c.portBase}`;
    const tls = {
      ca: readFileSync(join(c.dir, 'tls', 'ca.crt'), 'utf8'),
      cert: readFileSync(join(c.dir, 'tls', 'etcd-client.crt'), 'utf8'),
      key: readFileSync(join(c.dir, 'tls', 'etcd-client.key'), 'utf8'),
    };
    {
      await using anonymous = new EtcdStore({ hosts: [endpoint], requestTimeoutMs: 3000, protocol: 'https', tls });
      const attack = JSON.stringify({
        postgresql: { parameters: { archive_mode: 'on', archive_command: 'id > /tmp/pwned; true' } },
      });
      await assert.rejects(
        anonymous.put('/service/pgkeel/config', attack),
        (e: unknown) => e instanceof StoreError && e.code === 'DCS_AUTH',
      );
    }
    // An unprivileged local user has neither the certificate nor the password: the TLS handshake fails, plain http is not served.
    const noCert = await run('runuser', [
      '-u',
      'nobody',
      '--',
      'curl',
      '-sk',
      '--max-time',
      '5',
      '-X',
      'POST',
      `https://${endpoint}/v3/kv/range`,
      '-d',
      '{"key":"Lw==","range_end":"MA=="}',
    ]);
    assert.notEqual(noCert.code, 0, `no answer without a client certificate: ${noCert.out}`);
    const plain = await run('runuser', [
      '-u',
      'nobody',
      '--',
      'curl',
      '-s',
      '--max-time',
      '5',
      '-X',
      'POST',
      `http://${endpoint}/v3/kv/range`,
      '-d',
      '{"key":"Lw==","range_end":"MA=="}',
    ]);
    assert.ok(plain.code !== 0 || !/"header"/.test(plain.out), `plain http is not served: ${plain.out}`);

    // The REST API of an `up --tls` cluster: https, a client certificate required; ctl uses the node's own.
    const leader = s.members.find((m) => m.role === 'leader');
    assert.match(leader?.api_url ?? '', /^https:\/\/127\.0\.0\.1:\d+\/patroni$/);
    const restNoCert = await run('runuser', [
      '-u',
      'nobody',
      '--',
      'curl',
      '-s',
      '--max-time',
      '5',
      '--cacert',
      '/dev/null',
      '-k',
      '-X',
      'POST',
      `${(leader?.api_url ?? '').replace(/\/patroni$/, '')}/switchover`,
      '-d',
      '{"leader":"node1"}',
    ]);
    assert.notEqual(restNoCert.code, 0, `the REST handshake needs a client certificate: ${restNoCert.out}`);
    const restPlain = await run('runuser', [
      '-u',
      'nobody',
      '--',
      'curl',
      '-s',
      '--max-time',
      '5',
      (leader?.api_url ?? '').replace(/^https/, 'http'),
    ]);
    assert.ok(
      restPlain.code !== 0 || !/"state"/.test(restPlain.out),
      `plain http REST is not served: ${restPlain.out}`,
    );
    const topology = await cli(['ctl', 'topology', '--dir', c.dir], 30_000);
    assert.equal(topology.code, 0, `ctl over https with the node's certificate: ${topology.stderr}`);

    // Resume: down, up again (without --tls: the cluster remembers); the setup is not redone.
    assert.equal((await c.down()).code, 0);
    const again = await c.up();
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    assert.match(again.stdout, /etcd authentication on \(user pgkeel\)/);
    assert.doesNotMatch(again.stdout, /authentication enabled/);
    assert.equal((await c.status()).error, undefined);

    // No etcd password in any log or output of the run.
    const logs =
      filesUnder(c.dir)
        .filter((f) => f.endsWith('.log'))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n') +
      up.stdout +
      up.stderr +
      again.stdout +
      again.stderr +
      list.stdout;
    assert.ok(logs.length > 0);
    for (const p of [secrets.root_password, secrets.password])
      assert.ok(!logs.includes(p), 'an etcd password appears in a log');
  });

  it('refuses --tls on a cluster created without it', async () => {
    await using tmp = await tempDir('up-etcd-notls');
    createLocalCluster(join(tmp.path, 'c'), { nodes: 1, portBase: 30000 });
    assert.throws(() => prepare({ dir: join(tmp.path, 'c'), tls: true, progress: () => {} }), /created without --tls/);
  });
});
