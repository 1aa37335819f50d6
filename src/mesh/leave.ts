/**
 * `pgkeel mesh remove-site --remove SCOPE`: takes a site out of the mesh; it keeps its data and goes on as a
 * standalone cluster. Works from the sites given, not only from the record, so it also rolls back a join that
 * stopped half way, and works while the removed site is down (then its own side is left to clean by hand, said so):
 *
 *   1. On every remaining site: the subscription from the removed site (pglogical drops its slot there if it can
 *      reach it; the origin here goes with it).
 *   2. On the removed site, when reachable: its subscriptions to the others (their slots on the remaining sites
 *      go with them), then its pglogical nodes — the peers' and its own (which drops any slot left on it); its
 *      write block, if a join left one; its mesh record.
 *   3. On every remaining site: any slot still feeding the removed site is dropped (it would pin WAL for good),
 *      and pglogical's record of the removed node.
 *   4. The record without the site, on every remaining site.
 */
import type { Sql } from './engine.js';
import { MeshError } from './errors.js';
import { blockWrites, dropNode, dropSlot, dropSubscription, localNode, slotName } from './join-sql.js';
import { leaveLinks, recordWithout } from './join-plan.js';
import { nodeNameFor, type MeshRecord } from './plan.js';
import type { Site } from './site.js';

export interface LeaveIo {
  readonly progress: (line: string) => void;
  readonly timeoutMs: number;
}

export interface LeaveResult {
  readonly changes: readonly string[];
  readonly record: MeshRecord;
}

export async function removeSite(sites: readonly Site[], removed: string, io: LeaveIo): Promise<LeaveResult> {
  const gone = sites.find((s) => s.scope === removed);
  const remaining = sites.filter((s) => s.scope !== removed);
  if (remaining.length < 2)
    throw new MeshError('MESH_USAGE', `removing ${removed} would leave fewer than two sites; give the others too`, {
      site: removed,
    });
  const record = await remaining[0]?.readRecord();
  if (!record)
    throw new MeshError('MESH_NOT_CREATED', `site ${remaining[0]?.scope} has no mesh record in its DCS`, {
      site: remaining[0]?.scope as string,
    });
  const given = new Set(remaining.map((s) => s.scope));
  const missing = record.sites.filter((s) => s.scope !== removed && !given.has(s.scope)).map((s) => s.scope);
  if (missing.length)
    throw new MeshError('MESH_USAGE', `give every remaining site of the mesh: ${missing.join(', ')} missing`);
  const database = record.database;
  const changes: string[] = [];
  const note = (line: string) => {
    changes.push(line);
    io.progress(line);
  };
  const links = leaveLinks(
    sites.map((s) => s.scope),
    removed,
  );
  const byScope = new Map(sites.map((s) => [s.scope, s]));
  const step = async <T>(s: Site, what: string, fn: (db: Sql) => Promise<T>): Promise<T> => {
    try {
      return await fn(await s.sql());
    } catch (e) {
      throw new MeshError('MESH_SQL_FAILED', `site ${s.scope}: ${what} failed: ${(e as Error).message}`, {
        site: s.scope,
      });
    }
  };

  for (const l of links.filter((x) => x.from === removed)) {
    const to = byScope.get(l.to) as Site;
    if (await step(to, `dropping ${l.subscription}`, (db) => dropSubscription(db, l.subscription, io.timeoutMs)))
      note(`${l.to}: dropped ${l.subscription}`);
  }

  const goneDb = gone ? await gone.sql().catch(() => null) : null;
  if (gone && goneDb) {
    if ((await localNode(goneDb)) !== null) {
      for (const l of links.filter((x) => x.to === removed))
        if (await step(gone, `dropping ${l.subscription}`, (db) => dropSubscription(db, l.subscription, io.timeoutMs)))
          note(`${removed}: dropped ${l.subscription}`);
      for (const s of remaining)
        if (await step(gone, `dropping node ${nodeNameFor(s.scope)}`, (db) => dropNode(db, nodeNameFor(s.scope))))
          note(`${removed}: dropped its record of node ${nodeNameFor(s.scope)}`);
      if (await step(gone, 'dropping its own node', (db) => dropNode(db, nodeNameFor(removed))))
        note(`${removed}: node ${nodeNameFor(removed)} dropped (standalone now)`);
    }
    await step(gone, 'allowing writes', (db) => blockWrites(db, database, false));
    if (await gone.readRecord().catch(() => null)) {
      await gone.deleteRecord();
      note(`${removed}: mesh record removed from its DCS`);
    }
  } else if (gone || record.sites.some((s) => s.scope === removed))
    io.progress(`${removed}: not reachable; its own pglogical node and subscriptions are left as they are`);

  for (const l of links.filter((x) => x.to === removed)) {
    const from = byScope.get(l.from) as Site;
    await step(from, `dropping the slot of ${l.subscription}`, async (db) => {
      if ((await localNode(db)) === null) return;
      const slot = await slotName(db, database, nodeNameFor(l.from), l.subscription);
      if (await dropSlot(db, slot)) note(`${l.from}: dropped slot ${slot}`);
    });
  }
  for (const s of remaining)
    if (await step(s, `dropping node ${nodeNameFor(removed)}`, (db) => dropNode(db, nodeNameFor(removed))))
      note(`${s.scope}: dropped its record of node ${nodeNameFor(removed)}`);

  const next = recordWithout(record, removed);
  if (next.sites.length !== record.sites.length || next.links.length !== record.links.length) {
    for (const s of remaining) await s.writeRecord(next);
    note(`mesh recorded in the DCS of ${remaining.map((s) => s.scope).join(', ')}`);
  }
  return { changes, record: next };
}
