/**
 * Conflicts counted and the four silent cases reported, on a real 3-site pglogical mesh (`up --mesh 3`, one node
 * per site). Each case is made deterministic by disabling subscriptions (pglogical.alter_subscription_disable),
 * writing, and enabling them again — for the third-site ordering only the link that must arrive late:
 *   (i) two inserts of one key, (ii) concurrent increments, (iii) a DELETE reaching a third site before its INSERT
 *   (a ghost row), (iv) a TRUNCATE racing an insert.
 * Then the agents' collectors have stored the history (`mesh conflicts --json`), `mesh check` names each case by
 * key and conflict type (exit 1: the ghost row and the truncate race diverge), and /metrics counts them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, freePortBase } from '../helpers/cluster.js';
import { meshSites, SITE_SPAN } from '../helpers/mesh.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

const SITES = [1, 2, 3];

interface HistoryRow {
  site: string;
  table: string;
  key: string;
  type: string;
  resolution: string;
  local_origin: string | null;
  remote_origin: string | null;
}

describe('pgkeel mesh conflicts: a 3-site mesh, the four silent cases', () => {
  let tmp: { path: string } & AsyncDisposable;
  let dir = '';
  let base = 0;

  const { query, stop } = meshSites(
    () => dir,
    () => base,
  );
  const sub = (from: number, to: number) => `mesh_site${from}_site${to}`;
  const links = SITES.flatMap((to) => SITES.filter((f) => f !== to).map((from) => [from, to] as const));
  const setLink = (from: number, to: number, on: boolean) =>
    query(to, `SELECT pglogical.alter_subscription_${on ? 'enable' : 'disable'}($1, true)`, [sub(from, to)]);
  const setAll = async (on: boolean) => {
    for (const [from, to] of links) await setLink(from, to, on);
  };
  /** Every change made on site k so far has reached every peer (the mesh's own barrier). */
  const barrier = (k: number) =>
    query(k, `SELECT pg_logical_emit_message(false, 'test', 'b'), pglogical.wait_slot_confirm_lsn(NULL, NULL)`);
  const waitFor = async (what: string, cond: () => Promise<boolean>, ms = 60_000) => {
    const until = Date.now() + ms;
    while (!(await cond().catch(() => false))) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await sleep(250);
    }
  };
  /** `sql` returns `n` rows on every site. */
  const onEvery = (what: string, sql: string, n: number) =>
    waitFor(what, async () => {
      for (const k of SITES) if ((await query(k, sql)).length !== n) return false;
      return true;
    });
  const history = async (): Promise<HistoryRow[]> => {
    const r = await cli(['mesh', 'conflicts', '--dir', dir, '--since', '1h', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    return (JSON.parse(r.stdout) as { rows: HistoryRow[] }).rows;
  };

  before(async () => {
    tmp = await tempDir('mesh-conflicts');
    dir = join(tmp.path, 'm');
    base = await freePortBase(SITE_SPAN * SITES.length + 30);
    const up = await cli(['up', '--dir', dir, '--mesh', '3', '--port-base', String(base), '--timeout', '120'], 300_000);
    assert.equal(up.code, 0, `up --mesh 3 failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /site1: conflict history pgkeel_mesh\.conflicts created/);
    for (const k of SITES) {
      await query(k, 'CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)');
      await query(k, 'CREATE TABLE t2 (id int PRIMARY KEY, v text)');
    }
    const create = await cli(['mesh', 'create', '--dir', dir]);
    assert.equal(create.code, 0, `${create.stdout}\n${create.stderr}`);
    assert.doesNotMatch(create.stdout, /replicating .*pgkeel_mesh/);
  });

  after(async () => {
    await stop(SITES);
    await tmp?.[Symbol.asyncDispose]();
  });

  it('sets up the four silent cases deterministically', async () => {
    // A counter every site has.
    await query(1, `INSERT INTO t VALUES (100, 0, 'counter')`);
    await onEvery('the counter', 'SELECT 1 FROM t WHERE id = 100', 1);

    // (i) + (ii): with every link off, site1 then site2 insert key 1 and increment the counter.
    await setAll(false);
    await query(1, `INSERT INTO t VALUES (1, 0, 'from site1')`);
    await query(1, 'UPDATE t SET n = n + 1 WHERE id = 100');
    await query(2, `INSERT INTO t VALUES (1, 0, 'from site2')`);
    await query(2, 'UPDATE t SET n = n + 1 WHERE id = 100');
    await setAll(true);
    // The later insert wins everywhere; both increments were of 0: one is lost, n = 1 everywhere.
    await onEvery("site2's row 1", `SELECT 1 FROM t WHERE id = 1 AND v = 'from site2'`, 1);
    await onEvery('the counter at 1', 'SELECT 1 FROM t WHERE id = 100 AND n = 1', 1);

    // (iii): site1's insert reaches site3 late, after site2's delete of it.
    await setLink(1, 3, false);
    await query(1, `INSERT INTO t VALUES (300, 0, 'ghost')`);
    await waitFor('row 300 on site2', async () => (await query(2, 'SELECT 1 FROM t WHERE id = 300')).length === 1);
    await query(2, 'DELETE FROM t WHERE id = 300');
    await barrier(2); // the delete has reached site1 and site3
    await setLink(1, 3, true);
    await waitFor(
      'the ghost row on site3',
      async () => (await query(3, 'SELECT 1 FROM t WHERE id = 300')).length === 1,
    );

    // (iv): site1 truncates t2 while site2 inserts into it.
    await setAll(false);
    await query(1, 'TRUNCATE t2');
    await query(2, `INSERT INTO t2 VALUES (400, 'raced')`);
    await setAll(true);
    // mesh check's own barrier waits for the rest.
  });

  it('mesh conflicts --json lists the history the agents stored, newest first', async () => {
    let rows: HistoryRow[] = [];
    await waitFor('the collectors to store the conflicts', async () => {
      rows = await history();
      return (
        rows.some((r) => r.type === 'insert_insert' && r.key === '1') &&
        rows.some((r) => r.type === 'update_update' && r.key === '100' && r.resolution === 'keep_local') &&
        rows.some((r) => r.type === 'delete_delete' && r.key === '300' && r.site === 'site3')
      );
    });
    const ii = rows.find((r) => r.type === 'insert_insert' && r.site === 'site2');
    assert.deepEqual(
      [ii?.table, ii?.resolution, ii?.local_origin, ii?.remote_origin],
      ['public.t', 'keep_local', 'site2', 'site1'],
    );
    const times = rows.map((r) => (r as unknown as { at: string }).at);
    assert.deepEqual(times, [...times].sort().reverse());
    const one = await cli(['mesh', 'conflicts', '--dir', dir, '--table', 't2', '--json']);
    assert.deepEqual((JSON.parse(one.stdout) as { rows: unknown[] }).rows, []);
  });

  it('mesh check reports each silent case by key and conflict type; exit 1 for the divergent ones', async () => {
    const r = await cli(['mesh', 'check', '--dir', dir, '--since', '1h']);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    assert.match(out, /diverged: 2 of 2 table\(s\) differ/);
    assert.match(out, /^conflicts since \S+: \d+ \(.*insert_insert \d.*\)$/m);
    assert.match(out, /lost: insert_insert on public\.t key 1: site1's row was lost .*from site1.*kept site2's/);
    assert.match(out, /lost: update_update on public\.t key 100: an update was overwritten — site1's update was lost/);
    assert.match(
      out,
      /t key 300: ghost row: a DELETE reached a site before the INSERT it deletes \(delete_delete logged on site3\); present on site3 only/,
    );
    assert.match(out, /t2 key 400: present on site1(, site3)? only, after a TRUNCATE of t2 at /);
    const json = await cli(['mesh', 'check', '--dir', dir, '--since', '1h', '--json']);
    const j = JSON.parse(json.stdout) as {
      converged: boolean;
      conflicts: {
        by_type: Record<string, number>;
        lost: Array<{ kind: string; key: string }>;
        keys: Array<{ key: string; label: string }>;
      };
    };
    assert.equal(j.converged, false);
    assert.deepEqual(j.conflicts.lost.map((l) => [l.kind, l.key]).sort(), [
      ['insert_insert', '1'],
      ['update_overwritten', '100'],
    ]);
    assert.deepEqual(j.conflicts.keys.map((k) => [k.key, k.label]).sort(), [
      ['300', 'ghost_row'],
      ['400', 'after_truncate'],
    ]);
  });

  it("the leaders' /metrics count pgkeel_mesh_conflicts_total by type", async () => {
    const listen = (k: number) =>
      /\n\s+listen: (\S+)/.exec(
        readFileSync(join(dir, `site${k}`, 'node1', 'node.yml'), 'utf8').split('\nrestapi:')[1] ?? '',
      )?.[1];
    const body = await (await fetch(`http://${listen(3)}/metrics`)).text();
    assert.match(body, /# TYPE pgkeel_mesh_conflicts_total counter/);
    assert.match(
      body,
      /pgkeel_mesh_conflicts_total\{scope="site3",name="node1",type="delete_delete",resolution="skip",table="public\.t"\} [1-9]/,
    );
    const two = await (await fetch(`http://${listen(2)}/metrics`)).text();
    assert.match(two, /type="insert_insert",resolution="keep_local",table="public\.t"\} 1/);
  });

  it('mesh status --json: lag in seconds, clock offsets; status --json keeps its fields', async () => {
    const r = await cli(['mesh', 'status', '--dir', dir, '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const s = JSON.parse(r.stdout) as {
      sites: Array<{ clock: { offset_ms: number; rtt_ms: number } | null }>;
      links: Array<{ lag_bytes: number | null; lag_seconds: number | null; apply_error: string | null }>;
    };
    assert.equal(s.links.length, 6);
    for (const l of s.links) {
      assert.ok('lag_seconds' in l && 'apply_error' in l, JSON.stringify(l));
      if (l.lag_bytes === 0) assert.equal(typeof l.lag_seconds, 'number', JSON.stringify(l));
    }
    for (const site of s.sites) assert.ok(site.clock && Math.abs(site.clock.offset_ms) < 1000, JSON.stringify(site));
    const st = await cli(['status', '--dir', dir, '--json']);
    const mesh = (JSON.parse(st.stdout) as { mesh: { links: Array<Record<string, unknown>> } }).mesh;
    for (const l of mesh.links) assert.deepEqual(Object.keys(l).sort(), ['from', 'lag_bytes', 'state', 'to']);
  });

  it("mesh status names a link's apply error (last, as it breaks the link)", async () => {
    await query(3, 'ALTER TABLE t2 DROP COLUMN v');
    await query(1, `INSERT INTO t2 VALUES (401, 'x')`);
    let last = '';
    await waitFor('the link site1 → site3 down with its error', async () => {
      const r = await cli(['mesh', 'status', '--dir', dir]);
      last = r.stdout;
      return r.code === 1 && /site1 → site3: down/.test(r.stdout);
    }).catch((e) => assert.fail(`${(e as Error).message}\n${last}`));
    assert.match(last, /last apply error on site3: unknown column name v/);
  });
});
