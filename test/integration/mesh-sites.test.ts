/**
 * Adding and removing a site online (issue 14, deliverable 7) through the real CLI, etcd, PostgreSQL 15 and
 * pglogical 2.4.2: `up --mesh 2` (1 node each), writers inserting on both sites (disjoint keys, acknowledged keys
 * recorded) while `mesh add-site --dir D` makes and joins site3; after the load, `mesh check` over 3 sites and every
 * acknowledged key on every site; a write on site3 reaches the others; `mesh remove-site` takes site3 out: the two
 * left converge, no slot towards site3 remains on them, site3 keeps its rows as a standalone cluster.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cli, freePortBase } from '../helpers/cluster.js';
import { meshSites, SITE_SPAN } from '../helpers/mesh.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

describe('pgkeel mesh add-site / remove-site under write load', () => {
  let tmp: { path: string } & AsyncDisposable;
  let dir = '';
  let base = 0;

  const { connect, query, stop } = meshSites(
    () => dir,
    () => base,
  );
  const ids = async (k: number) => new Set((await query(k, 'SELECT id FROM t')).map((r) => Number(r['id'])));

  before(async () => {
    tmp = await tempDir('mesh-sites');
    dir = join(tmp.path, 'm');
    base = await freePortBase(SITE_SPAN * 3 + 30);
    const up = await cli(['up', '--dir', dir, '--mesh', '2', '--port-base', String(base), '--timeout', '120'], 300_000);
    assert.equal(up.code, 0, `up --mesh failed:\n${up.stdout}\n${up.stderr}`);
    for (const k of [1, 2]) await query(k, 'CREATE TABLE t (id int PRIMARY KEY, site int NOT NULL, v text)');
    const c = await cli(['mesh', 'create', '--dir', dir]);
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
  });

  after(async () => {
    await stop([1, 2, 3]);
    await tmp?.[Symbol.asyncDispose]();
  });

  const acked = new Set<number>();

  it('add-site makes site3 while both sites take inserts and updates; every acknowledged row ends on all three', async (t) => {
    let stop = false;
    const fromSite2: number[] = [];
    // Two writers per site, each its own key range; a key counts once its INSERT returned.
    const writer = async (k: number, from: number) => {
      const c = await connect(k);
      try {
        for (let i = from; !stop; i++) {
          await c.query('INSERT INTO t VALUES ($1::int, $2::int, md5($1::text))', [i, k]);
          acked.add(i);
          if (k === 2) fromSite2.push(i);
        }
      } finally {
        await c.end().catch(() => {});
      }
    };
    // Every row site2 inserts is then updated once, in order, by another session: an update made while site1's copy
    // runs, of a row already in the copy, is what a join without the freeze loses for good (docs/multi-master.md);
    // with one update per row nothing later hides it. The acknowledged value must end on every site.
    const updated = new Map<number, string>();
    const updater = async () => {
      const c = await connect(2);
      try {
        for (let i = 0; !stop; ) {
          const id = fromSite2[i];
          if (id === undefined) {
            await sleep(5);
            continue;
          }
          await c.query(`UPDATE t SET v = 'updated' WHERE id = $1`, [id]);
          updated.set(id, 'updated');
          i++;
        }
      } finally {
        await c.end().catch(() => {});
      }
    };
    const writers = [writer(1, 1_000_000), writer(1, 2_000_000), writer(2, 3_000_000), writer(2, 4_000_000), updater()];
    try {
      await sleep(1000);
      const add = await cli(['mesh', 'add-site', '--dir', dir, '--timeout', '120'], 240_000);
      assert.equal(add.code, 0, `${add.stdout}\n${add.stderr}`);
      assert.match(add.stdout, /site3: subscribed to site2, held \(mesh_site2_site3\)/);
      assert.match(add.stdout, /site3: subscribed to site1 \(mesh_site1_site3, copying its data\)/);
      assert.match(add.stdout, /site3: copied rows frozen/);
      assert.match(add.stdout, /site1: subscribed to site3 \(mesh_site3_site1\)/);
      assert.match(add.stdout, /site3 joined: .* the mesh is site1, site2, site3/);
      await sleep(1000);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    assert.ok(acked.size > 100, `only ${acked.size} rows written during the join`);
    t.diagnostic(`${acked.size} inserts and ${updated.size} updates acknowledged around the join`);
    const check = await cli(['mesh', 'check', '--dir', dir]);
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    assert.match(check.stdout, /converged: 1 table\(s\) equal on every site \(t\)/);
    for (const k of [1, 2, 3]) {
      const have = await ids(k);
      const lost = [...acked].filter((i) => !have.has(i));
      assert.deepEqual(lost.slice(0, 10), [], `site${k} lacks ${lost.length} of ${acked.size} acknowledged rows`);
      assert.equal(have.size, acked.size, `site${k}: rows that were never acknowledged`);
      const rows = await query(k, 'SELECT id, v FROM t WHERE id = ANY ($1::int[])', [[...updated.keys()]]);
      const stale = rows.filter((r) => updated.get(Number(r['id'])) !== r['v']);
      assert.deepEqual(stale.slice(0, 5), [], `site${k}: ${stale.length} of ${updated.size} updated rows stale`);
    }
  });

  it('site3 takes writes after the join, and they reach site1 and site2', async () => {
    await query(3, `INSERT INTO t VALUES (5000000, 3, 'from site3')`);
    for (const k of [1, 2]) {
      let v: unknown;
      for (let i = 0; i < 100 && v === undefined; i++) {
        v = (await query(k, 'SELECT v FROM t WHERE id = 5000000'))[0]?.['v'];
        if (v === undefined) await sleep(100);
      }
      assert.equal(v, 'from site3', `site${k}`);
    }
    const s = await cli(['mesh', 'status', '--dir', dir]);
    assert.equal(s.code, 0, `${s.stdout}\n${s.stderr}`);
    assert.equal((s.stdout.match(/: replicating, lag/g) ?? []).length, 6, s.stdout);
  });

  it('remove-site takes site3 out: no slot towards it is left, the two others converge, site3 keeps its rows', async () => {
    const r = await cli(['mesh', 'remove-site', '--dir', dir, '--remove', 'site3']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /site3 removed: .* the mesh is site1, site2/);
    for (const k of [1, 2]) {
      const slots = await query(k, `SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'`);
      assert.deepEqual(
        slots.map((x) => x['slot_name']).filter((n) => String(n).includes('site3')),
        [],
        `site${k}`,
      );
      const subs = await query(k, 'SELECT sub_name FROM pglogical.subscription ORDER BY 1');
      assert.deepEqual(
        subs.map((x) => x['sub_name']),
        [k === 1 ? 'mesh_site2_site1' : 'mesh_site1_site2'],
      );
    }
    await query(1, `INSERT INTO t VALUES (6000000, 1, 'after remove')`);
    const check = await cli(['mesh', 'check', '--dir', dir]);
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    assert.match(check.stdout, /converged/);
    assert.equal((await query(3, 'SELECT count(*)::int AS n FROM t'))[0]?.['n'], acked.size + 1);
    assert.deepEqual(await query(3, 'SELECT node_name FROM pglogical.node'), []);
    await query(3, `INSERT INTO t VALUES (7000000, 3, 'standalone')`);
    assert.equal((await query(1, 'SELECT count(*)::int AS n FROM t WHERE id = 7000000'))[0]?.['n'], 0);
  });
});
