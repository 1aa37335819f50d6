/**
 * `pgkeel mesh add-site`: a new site joins a running mesh while the existing sites keep taking writes, and ends with
 * every row they acknowledged. With forward_origins = '{}' the new site N gets a site's changes only from that site,
 * so (docs/multi-master.md "Adding and removing a site"):
 *
 *   0. N's settings (+ restart), extension; N's database read-only for new sessions until the end; the seed's
 *      schema when N has no tables; N's node.
 *   1. Held links P → N from every existing site P but the seed S: their slots start now, nothing is applied yet.
 *   2. Each P's slot towards S confirms P's slot-to-N start: S has applied every P change before it.
 *   3. S → N with synchronize_data: S's rows at a snapshot (P's rows up to S's progress for P, at least step 1's
 *      start), and S's changes after it.
 *   4. VACUUM (FREEZE) of N's tables: the copied rows lose their copy-time commit timestamp, so P's changes replayed
 *      over them are applied, not resolved as older than the copy (measured: without it P's updates made during the
 *      copy are kept out for good).
 *   5. The held links released: P's changes from step 1's start are applied (those already in the copy again:
 *      harmless, whole rows).
 *   6. N's tables in its replication set; each existing site's slot towards N confirms the site's current WAL.
 *   7. N → every existing site (no copy: N took no writes); writes on N allowed again; the record on every site.
 *
 * Every step looks before it acts, so running the command again resumes where it stopped. The existing sites only
 * ever gain slots (steps 1, 3) and, at 7, subscriptions to N; `mesh remove-site --remove N` takes them away again.
 */
import type { MeshEngine } from './engine.js';
import { MeshError } from './errors.js';
import {
  blockWrites,
  copySchema,
  freeze,
  nonEmpty,
  release,
  slotName,
  slotState,
  subscribeHeld,
  subscriptionSets,
  userTableCount,
  waitSlot,
  type Endpoint,
} from './join-sql.js';
import { HOLD_SET, joinPlan, recordWith } from './join-plan.js';
import { nodeNameFor, siteDsn, type Link, type MeshRecord } from './plan.js';
import { applySettings } from './settings.js';
import type { Site } from './site.js';

export interface JoinIo {
  readonly progress: (line: string) => void;
  readonly timeoutMs: number;
  /** How a failed run is resumed or rolled back, for the error message (the CLI's own words). */
  readonly resume: string;
  readonly rollback: string;
}

export interface JoinResult {
  readonly changes: readonly string[];
  readonly record: MeshRecord;
}

/** The record every existing site must agree on, and the site objects in the record's order. */
export async function meshOf(sites: readonly Site[]): Promise<{ record: MeshRecord; ordered: Site[] }> {
  const record = await sites[0]?.readRecord();
  if (!record)
    throw new MeshError(
      'MESH_NOT_CREATED',
      `site ${sites[0]?.scope} has no mesh record in its DCS; run \`pgkeel mesh create\` first`,
    );
  const byScope = new Map(sites.map((s) => [s.scope, s]));
  const missing = record.sites.filter((s) => !byScope.has(s.scope)).map((s) => s.scope);
  if (missing.length)
    throw new MeshError('MESH_USAGE', `give every site of the mesh: ${missing.join(', ')} missing`, {
      site: missing[0] as string,
    });
  return { record, ordered: record.sites.map((s) => byScope.get(s.scope) as Site) };
}

export async function addSite(
  existing: readonly Site[],
  joining: Site,
  engine: MeshEngine,
  io: JoinIo,
): Promise<JoinResult> {
  const { record, ordered } = await meshOf(existing);
  if (record.sites.some((s) => s.scope === joining.scope)) {
    io.progress(`${joining.scope} is already a site of the mesh`);
    return { changes: [], record };
  }
  const plan = joinPlan(
    ordered.map((s) => s.scope),
    joining.scope,
  );
  const changes: string[] = [];
  const note = (line: string) => {
    changes.push(line);
    io.progress(line);
  };
  const database = record.database;
  const byScope = new Map([...ordered, joining].map((s) => [s.scope, s]));
  const site = (scope: string) => byScope.get(scope) as Site;
  let phase = 'settings';
  try {
    changes.push(...(await applySettings(joining, engine, ordered.length + 1, io)));
    const dsn = async (s: Site, withPassword: boolean) => {
      const su = s.access.superuser;
      return siteDsn(await s.topology(), database, su.username, withPassword ? su.password : undefined);
    };
    const n = await joining.sql();
    phase = 'blocking writes on the new site';
    if (await engine.ensureInstalled(n)) note(`${joining.scope}: extension ${engine.name} created`);
    await blockWrites(n, database, true);
    phase = 'copying the schema';
    if ((await userTableCount(n)) === 0) {
      const end = async (s: Site): Promise<Endpoint> => ({ ...(await s.leaderAddress()), auth: s.access.superuser });
      await copySchema(await end(site(plan.seed)), await end(joining), database);
      note(`${joining.scope}: schema copied from ${plan.seed}`);
    }
    phase = 'creating the node';
    // The node's DSN is what pglogical's copy connects to on this site: it must not start read-only.
    // (Harmless afterwards; a replica still counts as read-only for target_session_attrs through in_hot_standby.)
    const nodeDsn = `${await dsn(joining, true)} options='-c default_transaction_read_only=off'`;
    if (await engine.ensureNode(n, nodeNameFor(joining.scope), nodeDsn))
      note(`${joining.scope}: node ${nodeNameFor(joining.scope)} created`);

    const slotOf = async (l: Link) => slotName(n, database, nodeNameFor(l.from), l.subscription);
    const seedSets = await subscriptionSets(n, plan.seedLink.subscription);
    if (seedSets === null) {
      phase = 'checking that the new site is empty';
      const full = await nonEmpty(n, await engine.replicatedTables(await site(plan.seed).sql()));
      if (full.length)
        throw new MeshError(
          'MESH_USAGE',
          `${joining.scope} already holds rows in ${full.join(', ')}; a joining site gets its rows from the mesh and must start empty`,
          { site: joining.scope },
        );
      phase = 'holding the links from the other sites';
      const starts = new Map<string, string>();
      for (const l of plan.held) {
        if ((await subscriptionSets(n, l.subscription)) === null) {
          await subscribeHeld(n, l, await dsn(site(l.from), true));
          note(`${joining.scope}: subscribed to ${l.from}, held (${l.subscription})`);
        }
        starts.set(l.from, await slotStart(site(l.from), await slotOf(l), io.timeoutMs));
      }
      phase = "waiting until the seed has applied the other sites' changes";
      for (const l of plan.held) {
        const toSeed = record.links.find((x) => x.from === l.from && x.to === plan.seed);
        if (!toSeed) throw new Error(`the record has no link ${l.from} → ${plan.seed}`);
        await waitSlot(await site(l.from).sql(), toSeed.slot, starts.get(l.from) as string, io.timeoutMs);
      }
      phase = 'copying the seed';
      await engine.subscribe(n, plan.seedLink, await dsn(site(plan.seed), true));
      note(`${joining.scope}: subscribed to ${plan.seed} (${plan.seedLink.subscription}, copying its data)`);
    }
    await engine.waitSynced(n, plan.seedLink.subscription, io.timeoutMs);

    const held: Link[] = [];
    for (const l of plan.held) if ((await subscriptionSets(n, l.subscription))?.includes(HOLD_SET)) held.push(l);
    if (held.length) {
      phase = 'freezing the copied rows';
      const left = await freeze(n, await engine.replicatedTables(await site(plan.seed).sql()), io.timeoutMs);
      if (left.length)
        throw new Error(
          `${left.join(', ')} not frozen: a transaction older than the copy still runs on ${joining.scope}`,
        );
      note(`${joining.scope}: copied rows frozen`);
      phase = 'releasing the held links';
      for (const l of held) {
        await release(n, l.subscription);
        note(`${joining.scope}: ${l.subscription} released`);
      }
    }
    phase = 'catching up';
    const added = await engine.ensureTables(n);
    if (added.length) note(`${joining.scope}: replicating ${added.join(', ')}`);
    for (const s of ordered) {
      const l = s.scope === plan.seed ? plan.seedLink : (plan.held.find((x) => x.from === s.scope) as Link);
      await waitSlot(await s.sql(), await slotOf(l), null, io.timeoutMs);
    }
    phase = 'subscribing the existing sites to the new one';
    // Also through the node's DSN: until the end new sessions on the new site are read-only, which
    // target_session_attrs=read-write would refuse.
    const nDsn = nodeDsn;
    for (const l of plan.outgoing) {
      const db = await site(l.to).sql();
      if ((await subscriptionSets(db, l.subscription)) === null) {
        await engine.subscribe(db, l, nDsn);
        note(`${l.to}: subscribed to ${joining.scope} (${l.subscription})`);
      }
      await engine.waitSynced(db, l.subscription, io.timeoutMs);
    }
    phase = 'allowing writes on the new site';
    await blockWrites(n, database, false);
    phase = 'recording the mesh';
    const slots = new Map<string, string>();
    for (const l of [plan.seedLink, ...plan.held, ...plan.outgoing]) slots.set(l.subscription, await slotOf(l));
    const next = recordWith(
      record,
      { scope: joining.scope, dsn: await dsn(joining, false) },
      [...plan.held, plan.seedLink, ...plan.outgoing].sort((a, b) => a.from.localeCompare(b.from)),
      (l) => slots.get(l.subscription) as string,
    );
    for (const s of [...ordered, joining]) await s.writeRecord(next);
    note(`mesh recorded in the DCS of ${[...ordered, joining].map((s) => s.scope).join(', ')}`);
    return { changes, record: next };
  } catch (e) {
    const m = e instanceof MeshError ? `${e.code}: ${e.message}` : (e as Error).message;
    throw new MeshError(
      'MESH_JOIN_FAILED',
      `site ${joining.scope} did not join (${phase}): ${m}. The existing sites took no change but slots and links towards ${joining.scope}; resume with \`${io.resume}\`, or roll back with \`${io.rollback}\``,
      { site: joining.scope },
    );
  }
}

/** The start of a held link's slot on its provider, once pglogical has made it. */
async function slotStart(provider: Site, slot: string, timeoutMs: number): Promise<string> {
  const db = await provider.sql();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await slotState(db, slot);
    if (s?.lsn) return s.lsn;
    if (Date.now() > deadline) throw new Error(`slot ${slot} did not appear on ${provider.scope}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
