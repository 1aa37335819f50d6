/**
 * No password of a cluster ever reaches a log: a default `pgkeel up` cluster is exercised the ways that log the
 * most — bootstrap and clones, a switchover through ctl, a failed login through the proxy, REST calls with wrong
 * credentials, a wrong PATCH /config — and then every log file under its directory is searched for every secret in
 * its cluster.json and config files.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { cli, healthyStatus, leaderOf, startCluster } from '../helpers/cluster.js';
import { clusterSecrets, leakedSecrets } from '../helpers/secrets.js';

describe('secrets stay out of the logs', () => {
  it('after bootstrap, a switchover, failed logins and refused REST calls, no log holds a password', async () => {
    await using c = await startCluster({ name: 'secrets' });
    assert.equal((await c.up()).code, 0);
    const s = await healthyStatus(c);
    const secrets = clusterSecrets(c.dir);
    assert.ok(secrets.length >= 2, `found the cluster's secrets (${secrets.length})`);
    const target = s.members.find((m) => m.role !== 'leader')?.name as string;
    const sw = await cli(['ctl', 'switchover', '--candidate', target, '--force', '--dir', c.dir], 120_000);
    assert.equal(sw.code, 0, sw.stdout + sw.stderr);
    const [host, port] = (s.proxy?.rw ?? '').split(':') as [string, string];
    const bad = new pg.Client({
      host,
      port: Number(port),
      user: 'postgres',
      password: `${secrets[0]}x`,
      database: 'postgres',
    });
    await assert.rejects(bad.connect());
    const leader = leaderOf(s);
    const api = (leader?.api_url ?? '').replace(/\/patroni$/, '');
    for (const pw of secrets) {
      const auth = `Basic ${Buffer.from(`pgkeel:${pw}x`).toString('base64')}`;
      const r = await fetch(`${api}/config`, {
        method: 'PATCH',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ postgresql: { parameters: { 'x y': pw } } }),
      });
      await r.text();
    }
    await c.waitFor('the switchover', async () => leaderOf(await c.status())?.name === target, 60_000);
    assert.deepEqual(leakedSecrets(c.dir, secrets), []);
  });
});
