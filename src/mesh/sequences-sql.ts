/**
 * `pgkeel mesh sequences [--scheme offset|snowflake] [--apply]`: reads every site's sequence-fed columns, plans with
 * sequences.ts, and with `apply` runs the plan on every site (the snowflake function first). Idempotent: a second run
 * plans nothing.
 */
import type { Sql } from './engine.js';
import { readAllSequences, type PreflightSite } from './preflight.js';
import { planOffset, planSnowflake, type SequencePlan, type SequenceScheme, snowflakeBody } from './sequences.js';

/** Creates or updates pgkeel_mesh.snowflake_id() for site id `siteId`; true when it changed anything. */
export async function ensureSnowflake(db: Sql, siteId: number): Promise<boolean> {
  const body = snowflakeBody(siteId);
  const had = await db.query<{ src: string }>(
    `SELECT p.prosrc AS src FROM pg_proc p WHERE p.oid = to_regprocedure('pgkeel_mesh.snowflake_id()')`,
  );
  if (had[0]?.src.trim() === body) return false;
  await db.query('CREATE SCHEMA IF NOT EXISTS pgkeel_mesh');
  await db.query('CREATE SEQUENCE IF NOT EXISTS pgkeel_mesh.snowflake_counter');
  await db.query(
    `CREATE OR REPLACE FUNCTION pgkeel_mesh.snowflake_id() RETURNS bigint LANGUAGE sql VOLATILE AS $pgkeel$${body}$pgkeel$`,
  );
  return true;
}

export async function meshSequences(
  sites: readonly PreflightSite[],
  scheme: SequenceScheme,
  apply: boolean,
  progress: (line: string) => void,
): Promise<SequencePlan> {
  const states = await readAllSequences(sites);
  const order = sites.map((s) => s.scope);
  const plan = scheme === 'offset' ? planOffset(states, order) : planSnowflake(states, sites.length);
  if (!apply) return plan;
  for (const [i, s] of sites.entries()) {
    const mine = plan.actions.filter((a) => a.site === s.scope);
    if (scheme === 'snowflake' && mine.length && (await ensureSnowflake(s.db, i + 1)))
      progress(`${s.scope}: pgkeel_mesh.snowflake_id() created (site id ${i + 1})`);
    for (const a of mine) {
      await s.db.query(a.sql);
      progress(`${s.scope}: ${a.summary}`);
    }
  }
  return plan;
}
