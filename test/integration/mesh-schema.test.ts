/**
 * The mesh's pre-flight, sequences and DDL (issue 14 deliverables 2 and 3) through the real CLI on a 2-site mesh
 * (PostgreSQL 15 + pglogical 2.4.2, one node per site): an unsafe schema refused by name with nothing subscribed;
 * `mesh sequences --apply` then concurrent default-id inserts on both sites without a collision; `mesh ddl` adding a
 * column on both sites with writes continuing after it; `mesh ddl --unblock` recovering a site left blocked whose
 * restarted apply worker refused queued DDL; plain DDL on one site named by `mesh check` (exit 1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cli, freePortBase } from '../helpers/cluster.js';
import { meshSites, SITE_SPAN } from '../helpers/mesh.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

/** Polls an async condition (eventually() in wait.ts takes a synchronous one). */
async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

describe('pgkeel mesh: pre-flight, sequences and DDL on a 2-site mesh', () => {
  let tmp: { path: string } & AsyncDisposable;
  let dir = '';
  let base = 0;

  const { query, stop } = meshSites(
    () => dir,
    () => base,
  );
  const both = async (sql: string) => {
    for (const k of [1, 2]) await query(k, sql);
  };
  // Each command's duration on stderr: a mesh step that stalls (seen once or twice: ~80 s) shows where.
  const mesh = async (...args: string[]) => {
    const t0 = Date.now();
    const r = await cli(['mesh', ...args, '--dir', dir], 180_000);
    process.stderr.write(`# mesh ${args.join(' ')}: ${Date.now() - t0} ms\n`);
    return r;
  };
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const r = await fn();
    process.stderr.write(`# ${what}: ${Date.now() - t0} ms\n`);
    return r;
  };

  before(async () => {
    tmp = await tempDir('mesh-schema');
    dir = join(tmp.path, 'm');
    base = await freePortBase(SITE_SPAN + 30);
    const up = await cli(['up', '--dir', dir, '--mesh', '2', '--port-base', String(base), '--timeout', '120'], 300_000);
    assert.equal(up.code, 0, `up --mesh failed:\n${up.stdout}\n${up.stderr}`);
  });

  after(async () => {
    await stop([1, 2]);
    await tmp?.[Symbol.asyncDispose]();
  });

  it('an unsafe schema is refused by name, every problem listed, nothing subscribed or replicated', async () => {
    await both('CREATE TABLE public.nopk (a int, b text)');
    await both('CREATE TABLE public.items (id serial PRIMARY KEY, site int NOT NULL, v text)');
    const subsBefore = await query(1, 'SELECT count(*)::int AS n FROM pglogical.subscription');

    const pre = await mesh('preflight', '--json');
    assert.equal(pre.code, 1, `${pre.stdout}\n${pre.stderr}`);
    const report = JSON.parse(pre.stdout) as { ok: boolean; problems: Array<{ code: string; table?: string }> };
    const found = report.problems.map((p) => `${p.code} ${p.table}`).sort();
    assert.deepEqual(found, [
      'MESH_NO_REPLICA_IDENTITY public.nopk',
      'MESH_NO_REPLICA_IDENTITY public.nopk',
      'MESH_SEQUENCE_COLLIDES public.items',
      'MESH_SEQUENCE_COLLIDES public.items',
    ]);

    const create = await mesh('create');
    assert.equal(create.code, 1, `${create.stdout}\n${create.stderr}`);
    assert.match(create.stderr, /MESH_PREFLIGHT_REFUSED/);
    assert.match(create.stderr, /MESH_NO_REPLICA_IDENTITY: site site1: table public\.nopk has no primary key/);
    assert.match(create.stderr, /MESH_SEQUENCE_COLLIDES: site site2: column public\.items\.id .*pgkeel mesh sequences/);
    for (const k of [1, 2]) {
      const inSet = await query(k, 'SELECT count(*)::int AS n FROM pglogical.replication_set_table');
      assert.equal(inSet[0]?.['n'], 0, `site${k} replicates tables after a refused create`);
    }
    assert.deepEqual(await query(1, 'SELECT count(*)::int AS n FROM pglogical.subscription'), subsBefore);
    await both('DROP TABLE public.nopk');
  });

  it('mesh sequences --apply gives each site its own values: concurrent inserts on both sites never collide', async () => {
    const plan = await mesh('sequences');
    assert.equal(plan.code, 0, `${plan.stdout}\n${plan.stderr}`);
    assert.match(plan.stdout, /site1: public\.items_id_seq: INCREMENT BY 10 RESTART WITH 1 \(values ≡ 1 mod 10\)/);
    assert.match(plan.stdout, /site2: public\.items_id_seq: INCREMENT BY 10 RESTART WITH 2 \(values ≡ 2 mod 10\)/);
    const applied = await mesh('sequences', '--apply');
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
    const again = await mesh('sequences', '--apply');
    assert.match(again.stdout, /nothing to change/);

    const create = await mesh('create');
    assert.equal(create.code, 0, `${create.stdout}\n${create.stderr}`);
    assert.match(create.stdout, /site1: replicating public\.items|site1: replicating items/);

    const writer = async (k: number) => {
      for (let i = 0; i < 40; i++)
        await query(k, 'INSERT INTO public.items (site, v) VALUES ($1, md5($2))', [k, String(i)]);
    };
    await timed('160 inserts', () => Promise.all([writer(1), writer(2), writer(1), writer(2)]));
    const check = await mesh('check');
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    for (const k of [1, 2]) {
      const r = await query(
        k,
        'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, sum(site)::int AS s FROM public.items',
      );
      assert.deepEqual(r[0], { n: 160, d: 160, s: 240 });
    }
    const odd = await query(1, 'SELECT count(*)::int AS n FROM public.items WHERE id % 10 <> site');
    assert.equal(odd[0]?.['n'], 0);
  });

  it('--scheme snowflake: ids made by pgkeel_mesh.snowflake_id() carry their site and never collide', async () => {
    await both('CREATE TABLE public.events (id bigserial PRIMARY KEY, site int NOT NULL)');
    const applied = await mesh('sequences', '--scheme', 'snowflake', '--apply');
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
    assert.match(applied.stdout, /site2: pgkeel_mesh\.snowflake_id\(\) created \(site id 2\)/);
    assert.match((await mesh('sequences', '--scheme', 'snowflake')).stdout, /nothing to change/);
    const create = await mesh('create');
    assert.equal(create.code, 0, `${create.stdout}\n${create.stderr}`);
    const writer = async (k: number) => {
      for (let i = 0; i < 20; i++) await query(k, 'INSERT INTO public.events (site) VALUES ($1)', [k]);
    };
    await Promise.all([writer(1), writer(2)]);
    const check = await mesh('check', '--table', 'events');
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    const r = await query(
      2,
      'SELECT count(*)::int AS n, count(*) FILTER (WHERE (id >> 12) & 1023 = site)::int AS own FROM public.events',
    );
    assert.deepEqual(r[0], { n: 40, own: 40 });
  });

  it('mesh ddl adds a column on both sites; writes go on afterwards and converge', async () => {
    const r = await mesh('ddl', 'ALTER TABLE public.items ADD COLUMN note text');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /site1: writes blocked/);
    assert.match(r.stdout, /schema hash equal on every site/);
    assert.match(r.stdout, /writes unblocked on every site/);
    for (const k of [1, 2]) {
      const col = await query(
        k,
        `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'note'`,
      );
      assert.equal(col[0]?.['n'], 1, `site${k} lacks the column`);
      const ro = await query(k, 'SHOW default_transaction_read_only');
      assert.equal(ro[0]?.['default_transaction_read_only'], 'off');
      await query(k, `INSERT INTO public.items (site, v, note) VALUES ($1, 'after', 'ddl')`, [k]);
    }
    const check = await mesh('check');
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    const n = await query(2, `SELECT count(*)::int AS n FROM public.items WHERE note = 'ddl'`);
    assert.equal(n[0]?.['n'], 2);
  });

  it('mesh ddl --unblock recovers a site left blocked, and the DDL its restarted apply worker refused arrives', async () => {
    // As if `mesh ddl` died after the DDL: site2 still blocked, and its apply worker restarted meanwhile (so it starts
    // read-only and refuses the queued ALTER TABLE; measured on pglogical 2.4.2).
    await query(2, 'ALTER DATABASE postgres SET default_transaction_read_only = on');
    await query(2, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type LIKE 'pglogical apply%'`);
    const appliers = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type LIKE 'pglogical apply%'`;
    await until('the apply worker to restart', async () => (await query(2, appliers))[0]?.['n'] === 1, 20_000);
    await query(
      1,
      `SELECT pglogical.replicate_ddl_command('ALTER TABLE public.items ADD COLUMN late int', '{ddl_sql}')`,
    );
    const hasLate = async () =>
      (
        await query(
          2,
          `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'late'`,
        )
      )[0]?.['n'];
    await sleep(2000);
    assert.equal(await hasLate(), 0, 'a read-only apply worker applied DDL');
    const r = await mesh('ddl', '--unblock');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /writes unblocked on every site/);
    await until('the DDL on site2 after unblocking', async () => (await hasLate()) === 1, 30_000);
    const check = await mesh('check');
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
  });

  it('plain DDL on one site is reported by mesh check, naming the table and column (exit 1)', async () => {
    await query(2, 'ALTER TABLE public.items ADD COLUMN extra int');
    const check = await mesh('check');
    assert.equal(check.code, 1, `${check.stdout}\n${check.stderr}`);
    assert.match(
      check.stdout,
      /MESH_SCHEMA_DIFFERS: table public\.items differs between sites .*column extra only on site2/,
    );
  });
});
