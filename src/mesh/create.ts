/**
 * `pgkeel mesh create`: joins the leaders of N ≥ 2 sites into a full mesh, idempotently and always in this order —
 * settings (+ the one restart) → extension → nodes → replication sets → the seed site's data copied to the others
 * (`synchronize_data := true`, links from the first site only; the other sites must take no writes meanwhile) → the
 * remaining links (`synchronize_data := false`), every one with `forward_origins := '{}'` → a barrier on every
 * node → the convergence check → the record in every site's DCS. A step already done changes nothing; running it on
 * a complete mesh reports "nothing changed".
 */
import type { MeshEngine } from './engine.js';
import { MeshError } from './errors.js';
import { checkMesh } from './check.js';
import type { CheckResult } from './compare.js';
import { linkPlan, nodeNameFor, sameRecord, siteDsn, type MeshRecord } from './plan.js';
import { applySettings, registerPermanentSlots } from './settings.js';
import type { Site } from './site.js';
import { ensureConflictHistory, HISTORY_TABLE } from './conflicts-store.js';
// --- pre-flight and DDL set (issue 14 deliverables 2 and 3) ---
import { DEFAULT_MAX_CLOCK_OFFSET_MS } from './clock.js';
import { ensureDdlSets } from './ddl.js';
import { preflight, preflightText, refuseUnsafe } from './preflight.js';
// --- end pre-flight and DDL set ---

export interface CreateIo {
  readonly progress: (line: string) => void;
  readonly timeoutMs: number;
  /** Pre-flight: the clock bound between sites (default 500 ms) and the local clock (default Date.now). */
  readonly preflight?: { readonly maxClockOffsetMs?: number; readonly now?: () => number };
}

export interface CreateResult {
  readonly changes: readonly string[];
  readonly record: MeshRecord;
  readonly check: CheckResult;
}

/** Runs one step on one site; a failing statement becomes MESH_SQL_FAILED naming both (or MESH_ENGINE_MISSING). */
async function step<T>(site: Site, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MeshError) throw err;
    const msg = (err as Error).message;
    if (/extension "\w+" is not available|could not open extension control file/.test(msg))
      throw new MeshError(
        'MESH_ENGINE_MISSING',
        `site ${site.scope}: the replication engine is not installed (${msg}); install postgresql-15-pglogical on every member`,
        { site: site.scope },
      );
    throw new MeshError('MESH_SQL_FAILED', `site ${site.scope}: ${what} failed: ${msg}`, { site: site.scope });
  }
}

/** The logical decoding plugin behind an engine's slots (permanent slots, issue 14). */
const outputPlugin = (engine: MeshEngine): string => (engine.name === 'pglogical' ? 'pglogical_output' : engine.name);

export async function createMesh(
  sites: readonly Site[],
  engine: MeshEngine,
  database: string,
  io: CreateIo,
): Promise<CreateResult> {
  const links = linkPlan(sites.map((s) => s.scope));
  const byScope = new Map(sites.map((s) => [s.scope, s]));
  const changes: string[] = [];
  const note = (line: string) => {
    changes.push(line);
    io.progress(line);
  };
  for (const s of sites) changes.push(...(await applySettings(s, engine, sites.length, io)));

  const dsn = new Map<string, { full: string; shown: string }>();
  for (const s of sites) {
    const t = await s.topology();
    const su = s.access.superuser;
    dsn.set(s.scope, {
      full: siteDsn(t, database, su.username, su.password),
      shown: siteDsn(t, database, su.username),
    });
  }
  const dsnOf = (scope: string) => dsn.get(scope) as { full: string; shown: string };

  for (const s of sites) {
    const db = await s.sql();
    if (await step(s, 'CREATE EXTENSION pglogical', () => engine.ensureInstalled(db)))
      note(`${s.scope}: extension ${engine.name} created`);
  }
  // --- pre-flight (preflight.ts): unsafe schemas or clocks stop here, before nodes, sets or subscriptions ---
  {
    const conns = await Promise.all(sites.map(async (s) => ({ scope: s.scope, db: await s.sql() })));
    const report = await preflight(conns, {
      maxClockOffsetMs: io.preflight?.maxClockOffsetMs ?? DEFAULT_MAX_CLOCK_OFFSET_MS,
      now: io.preflight?.now ?? Date.now,
    });
    if (!report.ok) {
      for (const l of preflightText(report).slice(0, 2)) io.progress(l); // hashes and clocks; problems: below
      refuseUnsafe(report);
    }
  }
  // --- end pre-flight ---
  // --- conflict history (issue 14, conflicts-store.ts): before the tables are added, as it is never replicated
  for (const s of sites) {
    const db = await s.sql();
    if (await step(s, `CREATE TABLE ${HISTORY_TABLE}`, () => ensureConflictHistory(db)))
      note(`${s.scope}: conflict history ${HISTORY_TABLE} created`);
  }
  // --- end conflict history
  for (const s of sites) {
    const db = await s.sql();
    const node = nodeNameFor(s.scope);
    if (await step(s, `creating node ${node}`, () => engine.ensureNode(db, node, dsnOf(s.scope).full)))
      note(`${s.scope}: node ${node} created`);
  }
  for (const s of sites) {
    const db = await s.sql();
    const added = await step(s, 'adding tables to the replication set', () => engine.ensureTables(db));
    if (added.length) note(`${s.scope}: replicating ${added.join(', ')}`);
  }

  const existing = new Map<string, Set<string>>();
  for (const s of sites) {
    const db = await s.sql();
    const subs = await step(s, 'reading subscriptions', () => engine.subscriptions(db));
    existing.set(s.scope, new Set(subs.map((x) => x.name)));
  }
  // Seed links first and wait for their copy: the remaining links must not stream rows the copy also brings.
  for (const seeding of [true, false]) {
    for (const l of links.filter((x) => x.syncData === seeding)) {
      const sub = byScope.get(l.to) as Site;
      const db = await sub.sql();
      if (existing.get(l.to)?.has(l.subscription)) continue;
      await step(sub, `subscribing to ${l.from}`, () => engine.subscribe(db, l, dsnOf(l.from).full));
      note(`${l.to}: subscribed to ${l.from} (${l.subscription}${l.syncData ? ', copying its data' : ''})`);
    }
    if (seeding)
      for (const l of links.filter((x) => x.syncData)) {
        const sub = byScope.get(l.to) as Site;
        const db = await sub.sql();
        await step(sub, `initial copy from ${l.from}`, () => engine.waitSynced(db, l.subscription, io.timeoutMs));
      }
  }

  // --- DDL set (ddl.ts): every subscription also receives the DDL its provider queues with `mesh ddl` ---
  for (const s of sites) {
    const db = await s.sql();
    const added = await step(s, 'adding the ddl_sql set to its subscriptions', () => ensureDdlSets(db));
    if (added.length) note(`${s.scope}: ${added.join(', ')} now also receive DDL (ddl_sql)`);
  }
  // --- end DDL set ---

  const conns = await Promise.all(sites.map(async (s) => ({ scope: s.scope, db: await s.sql() })));
  const check = await checkMesh(conns, engine, { barrierTimeoutMs: io.timeoutMs });

  const slots = new Map<string, string>();
  for (const s of sites)
    for (const x of await engine.subscriptions(await s.sql())) slots.set(`${s.scope}/${x.name}`, x.slot);
  const record: MeshRecord = {
    version: 1,
    engine: engine.name,
    database,
    sites: sites.map((s) => ({ scope: s.scope, node: nodeNameFor(s.scope), dsn: dsnOf(s.scope).shown })),
    links: links.map((l) => {
      const slot = slots.get(`${l.to}/${l.subscription}`) ?? '';
      return { from: l.from, to: l.to, subscription: l.subscription, slot, origin: slot };
    }),
  };
  // --- permanent slots (issue 14, deliverable 6): each provider's pglogical slots, copied by its replicas. ---
  for (const s of sites) {
    const provided = record.links.filter((l) => l.from === s.scope && l.slot).map((l) => l.slot);
    for (const line of await registerPermanentSlots(s, provided, database, outputPlugin(engine))) note(line);
  }
  // --- end permanent slots ---
  for (const s of sites) {
    if (sameRecord(await s.readRecord(), record)) continue;
    await s.writeRecord(record);
    note(`${s.scope}: mesh recorded in the DCS`);
  }
  return { changes, record, check };
}
