/**
 * Issue 14, deliverable 6: a physical failover inside a site keeps the mesh. `up --mesh 2 --nodes 2` (two 2-node
 * sites), synchronous_mode on site1, a table on both, `mesh create` (which registers each provider's pglogical
 * slots as permanent logical slots); site1's replica copies them. Writers insert on both sites at once (disjoint
 * keys, every acknowledged key recorded); site1's leader is SIGKILLed (agent and postmaster); site1's replica is
 * promoted; site2 keeps accepting writes (its longest gap is reported, not asserted); writers continue on site1
 * through its new leader; after the load, `mesh check` passes and every acknowledged key is on both sites.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pidAlive } from '../../src/lib/proc.js';
import { cli, freePortBase } from '../helpers/cluster.js';
import { kill9 } from '../helpers/scenario.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

const SITE_SPAN = 40;
const SLOT_TIMEOUT_MS = 60_000;

/** Retries an async assertion until it passes or `timeoutMs` ends (then its last error is thrown). */
async function until(fn: () => Promise<void> | void, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(250);
    }
  }
}

describe('pgkeel mesh: a failover inside a site keeps the mesh', () => {
  let tmp: { path: string } & AsyncDisposable;
  let dir = '';
  let base = 0;
  const passwords = new Map<number, string>();

  const pgPort = (site: number, node: number) => base + SITE_SPAN * (site - 1) + 10 + node;
  const password = (site: number) => {
    let p = passwords.get(site);
    if (!p) {
      const saved = JSON.parse(readFileSync(join(dir, `site${site}`, 'cluster.json'), 'utf8')) as {
        superuser: { password: string };
      };
      p = saved.superuser.password;
      passwords.set(site, p);
    }
    return p;
  };
  const connectNode = async (site: number, node: number) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: pgPort(site, node),
      user: 'postgres',
      password: password(site),
      database: 'postgres',
      connectionTimeoutMillis: 3000,
      query_timeout: 5000,
    });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  /** A connection to whichever member of `site` is writable (what the links' multi-host DSN with
   *  target_session_attrs=read-write reaches; node-postgres has no multi-host URLs). */
  const connectSite = async (site: number) => {
    for (const n of [1, 2]) {
      const c = await connectNode(site, n).catch(() => null);
      if (!c) continue;
      const r = await c.query('SELECT pg_is_in_recovery() AS r').catch(() => null);
      if (r?.rows[0]?.r === false) return c;
      await c.end().catch(() => {});
    }
    throw new Error(`site${site} has no writable member`);
  };
  const queryNode = async (site: number, node: number, sql: string) => {
    const c = await connectNode(site, node);
    try {
      return (await c.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await c.end().catch(() => {});
    }
  };
  const pidOf = (site: number, file: string) => {
    try {
      const pid = Number(readFileSync(join(dir, `site${site}`, file), 'utf8').split('\n')[0]);
      return pid > 0 && pidAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  };
  const pids = () =>
    [1, 2].flatMap((k) =>
      [
        'etcd/etcd.pid',
        'proxy.pid',
        'node1/agent.pid',
        'node1/data/postmaster.pid',
        'node2/agent.pid',
        'node2/data/postmaster.pid',
      ]
        .map((f) => pidOf(k, f))
        .filter((p): p is number => p !== null),
    );
  const leaderNode = async (site: number): Promise<number> => {
    for (const n of [1, 2]) {
      const rows = await queryNode(site, n, 'SELECT pg_is_in_recovery() AS r').catch(() => []);
      if (rows[0]?.['r'] === false) return n;
    }
    throw new Error(`site${site} has no writable member`);
  };

  before(async () => {
    tmp = await tempDir('mesh-failover');
    dir = join(tmp.path, 'm');
    base = await freePortBase(SITE_SPAN * 2 + 30);
    const up = await cli(
      ['up', '--dir', dir, '--mesh', '2', '--nodes', '2', '--port-base', String(base), '--timeout', '120'],
      300_000,
    );
    assert.equal(up.code, 0, `up --mesh failed:\n${up.stdout}\n${up.stderr}`);
    // `up --mesh` runs `mesh create`, which registers each provider's pglogical slot as a permanent slot.
    assert.match(up.stdout, /site1: permanent logical slots pgl_/);
    assert.match(up.stdout, /site2: permanent logical slots pgl_/);
  });

  after(async () => {
    await cli(['down', '--dir', dir], 120_000).catch(() => undefined);
    for (const pid of pids()) kill9(pid); // only live ones are listed
    await tmp?.[Symbol.asyncDispose]();
  });

  it('site1 fails over under load on both sites: the mesh continues, no acknowledged key is lost', async () => {
    const sync = await cli([
      'ctl',
      '--dir',
      join(dir, 'site1'),
      'edit-config',
      '--force',
      '--set',
      'synchronous_mode=true',
    ]);
    assert.equal(sync.code, 0, `${sync.stdout}\n${sync.stderr}`);
    for (const k of [1, 2]) {
      const c = await connectSite(k);
      await c.query('CREATE TABLE IF NOT EXISTS f (id bigint PRIMARY KEY, site int NOT NULL)');
      await c.end();
    }
    const create = await cli(['mesh', 'create', '--dir', dir]);
    assert.equal(create.code, 0, `${create.stdout}\n${create.stderr}`);

    // site1's replica copies its slot (and restarts once to load it).
    const l1 = await leaderNode(1);
    const r1 = l1 === 1 ? 2 : 1;
    const slotOf = async (node: number) =>
      (await queryNode(1, node, "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'")).map(
        (r) => r['slot_name'],
      );
    const leaderSlots = await slotOf(l1);
    assert.equal(leaderSlots.length, 1, `site1's leader has one pglogical slot: ${leaderSlots}`);
    await until(async () => assert.deepEqual(await slotOf(r1), leaderSlots), SLOT_TIMEOUT_MS);

    // Writers on both sites, disjoint keys; every acknowledged key is recorded.
    const acked: Record<number, number[]> = { 1: [], 2: [] };
    const lastAck: Record<number, number> = { 1: 0, 2: 0 };
    const gap: Record<number, number> = { 1: 0, 2: 0 };
    let stop = false;
    const writer = async (site: number) => {
      let c: pg.Client | null = null;
      for (let i = 0; !stop; i++) {
        const id = site * 1_000_000 + i;
        try {
          c ??= await connectSite(site);
          await c.query('INSERT INTO f VALUES ($1, $2)', [id, site]);
          acked[site]?.push(id);
          const now = Date.now();
          if (lastAck[site]) gap[site] = Math.max(gap[site] ?? 0, now - (lastAck[site] ?? now));
          lastAck[site] = now;
        } catch {
          await c?.end().catch(() => {});
          c = null;
          await sleep(200);
        }
      }
      await c?.end().catch(() => {});
    };
    const writers = [writer(1), writer(2)];
    await sleep(3000);

    const killedAt = Date.now();
    const before1 = acked[1]?.length ?? 0;
    kill9(pidOf(1, `node${l1}/agent.pid`), pidOf(1, `node${l1}/data/postmaster.pid`));
    await until(async () => assert.equal(await leaderNode(1), r1), 90_000);
    const promotedAfter = Date.now() - killedAt;
    // Writers continue on site1 through its new leader.
    await until(() => assert.ok((acked[1]?.length ?? 0) > before1 + 20, 'site1 takes writes again'), 30_000);
    await sleep(3000);
    stop = true;
    await Promise.all(writers);
    // site2 streams site1's changes from the copied slot on site1's new leader.
    const active = async () =>
      (await queryNode(1, r1, "SELECT active FROM pg_replication_slots WHERE slot_type = 'logical'")).map(
        (r) => r['active'],
      );
    await until(async () => assert.deepEqual(await active(), [true]), 30_000);

    const check = await cli(['mesh', 'check', '--dir', dir]);
    assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
    for (const k of [1, 2]) {
      const c = await connectSite(k);
      const rows = (await c.query('SELECT id FROM f')).rows as { id: string }[];
      await c.end();
      const have = new Set(rows.map((r) => Number(r.id)));
      for (const w of [1, 2]) {
        const missing = (acked[w] ?? []).filter((id) => !have.has(id));
        assert.deepEqual(missing.slice(0, 10), [], `site${k} lacks ${missing.length} key(s) acknowledged by site${w}`);
      }
    }
    console.log(
      `mesh-failover: site1 promoted ${promotedAfter} ms after the kill; acknowledged ${acked[1]?.length} (site1) / ${acked[2]?.length} (site2) keys; longest write gap site2 ${gap[2]} ms, site1 ${gap[1]} ms`,
    );
  });
});
