/**
 * The multi-master mesh (issue 14, phase 1) end to end through the real CLI, real etcd, PostgreSQL 15 and
 * pglogical 2.4.2: `up --mesh 2` (two 1-node sites), `mesh create` picking up new tables and then changing
 * nothing, disjoint-row writes on both sites at once converging (barrier, equal aggregates, `mesh check` exit 0),
 * `status --json`'s mesh object, and a forced divergence that `mesh check` names by table and key (exit 1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cli, freePortBase } from '../helpers/cluster.js';
import { meshSites, SITE_SPAN } from '../helpers/mesh.js';
import { tempDir } from '../helpers/tmp.js';

describe('pgkeel mesh: a 2-site pglogical mesh', () => {
  let tmp: { path: string } & AsyncDisposable;
  let dir = '';
  let base = 0;

  const { sitePort, connect, query, stop } = meshSites(
    () => dir,
    () => base,
  );

  before(async () => {
    tmp = await tempDir('mesh');
    dir = join(tmp.path, 'm');
    base = await freePortBase(SITE_SPAN + 30);
    const up = await cli(['up', '--dir', dir, '--mesh', '2', '--port-base', String(base), '--timeout', '120'], 300_000);
    assert.equal(up.code, 0, `up --mesh failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /site1: subscribed to site2/);
    assert.match(up.stdout, /site2: subscribed to site1 \(mesh_site1_site2, copying its data\)/);
  });

  after(async () => {
    await stop([1, 2]);
    await tmp?.[Symbol.asyncDispose]();
  });

  it('mesh create picks up new tables, then changes nothing', async () => {
    for (const k of [1, 2]) await query(k, 'CREATE TABLE t (id int PRIMARY KEY, site int NOT NULL, v text)');
    const first = await cli(['mesh', 'create', '--dir', dir]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    assert.match(first.stdout, /site1: replicating t/);
    assert.match(first.stdout, /site2: replicating t/);
    const again = await cli(['mesh', 'create', '--dir', dir]);
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    assert.match(again.stdout, /mesh complete: nothing changed/);
    assert.doesNotMatch(again.stdout, /subscribed|replicating t|restart|recorded/);
  });

  it('disjoint writes on both sites at once converge: barrier, equal aggregates, check exit 0', async () => {
    // Four writers, two per site, each its own id range, 100 one-row transactions each.
    const writer = async (k: number, from: number) => {
      for (let i = 0; i < 100; i++)
        await query(k, 'INSERT INTO t VALUES ($1::int, $2::int, md5($1::text))', [from + i, k]);
    };
    await Promise.all([writer(1, 0), writer(1, 1000), writer(2, 2000), writer(2, 3000)]);
    const check = await cli(['mesh', 'check', '--dir', dir]);
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    assert.match(check.stdout, /converged: 1 table\(s\) equal on every site \(t\)/);
    const agg = (k: number) =>
      query(k, 'SELECT count(*)::int AS n, sum(id)::bigint::text AS s, sum(site)::int AS o FROM t');
    const [a, b] = [await agg(1), await agg(2)];
    assert.deepEqual(a, b);
    assert.equal(a[0]?.['n'], 400);
    assert.equal(a[0]?.['o'], 600);
  });

  it('status --json has the mesh object: sites with their leader, links with lag_bytes', async () => {
    const r = await cli(['status', '--dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      mesh: {
        sites: Array<{ scope: string; leader: string; members: string[] }>;
        links: Array<{ from: string; to: string; lag_bytes: number; state: string }>;
      };
    };
    assert.deepEqual(
      s.mesh.sites.map((x) => [x.scope, x.leader, x.members]),
      [
        ['site1', `127.0.0.1:${sitePort(1)}`, [`127.0.0.1:${sitePort(1)}`]],
        ['site2', `127.0.0.1:${sitePort(2)}`, [`127.0.0.1:${sitePort(2)}`]],
      ],
    );
    assert.deepEqual(
      s.mesh.links.map((l) => [l.from, l.to, l.state, typeof l.lag_bytes, Object.keys(l).sort().join()]),
      [
        ['site1', 'site2', 'replicating', 'number', 'from,lag_bytes,state,to'],
        ['site2', 'site1', 'replicating', 'number', 'from,lag_bytes,state,to'],
      ],
    );
  });

  it('a change that never reached the other site is named by table and key: check exit 1', async () => {
    // Written under a replication origin of its own, the update is not sent (forward_origins = '{}'), as a change
    // lost by the engine would be; the barrier still passes.
    await query(1, `SELECT pg_replication_origin_create('pgkeel_test_lost')`);
    const c = await connect(1);
    try {
      await c.query(`SELECT pg_replication_origin_session_setup('pgkeel_test_lost')`);
      await c.query(`UPDATE t SET v = 'diverged' WHERE id = 1042`);
      await c.query('SELECT pg_replication_origin_session_reset()');
    } finally {
      await c.end();
    }
    const check = await cli(['mesh', 'check', '--dir', dir, '--table', 't']);
    assert.equal(check.code, 1, `${check.stdout}\n${check.stderr}`);
    assert.match(check.stdout, /diverged: 1 of 1 table\(s\) differ/);
    assert.match(check.stdout, /t: site1 400 rows, site2 400 rows/);
    assert.match(check.stdout, /keys differing \(1\): 1042$/m);
  });
});
