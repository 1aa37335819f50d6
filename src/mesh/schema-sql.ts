/**
 * Reading the catalogue rows that schema.ts and sequences.ts judge: every user table's definition and every column
 * fed by a sequence (serial, `DEFAULT nextval(…)`, identity) with that sequence's state. Thin: SQL in, rows out.
 *
 * User tables are those the mesh replicates (pglogical.ts `ensureTables`): ordinary and partitioned tables, not
 * partitions, outside the system schemas, pglogical's, and pgkeel_mesh (the snowflake function's schema).
 */
import type { Sql } from './engine.js';
import type { TableDef } from './schema.js';
import type { SequenceState } from './sequences.js';

const USER_TABLES = `c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pglogical', 'pglogical_origin', 'pgkeel_mesh')
  AND n.nspname NOT LIKE 'pg_%'`;

export async function readTables(db: Sql): Promise<TableDef[]> {
  const rows = await db.query<{
    table: string;
    replident: string;
    columns: TableDef['columns'];
    uniques: TableDef['uniques'];
    identity_index: TableDef['identityIndex'];
  }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS table, c.relreplident::text AS replident,
       (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                 'notNull', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid), 'identity', a.attidentity::text)
                 ORDER BY a.attnum), '[]')
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT coalesce(json_agg(json_build_object('name', ic.relname,
                 'def', CASE WHEN con.oid IS NOT NULL THEN pg_get_constraintdef(con.oid)
                             ELSE regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE UNIQUE INDEX \\S+ ON ', 'UNIQUE INDEX ON ') END,
                 'deferrable', coalesce(con.condeferrable, NOT i.indimmediate),
                 'kind', CASE WHEN i.indisprimary THEN 'primary' WHEN con.oid IS NOT NULL THEN 'constraint' ELSE 'index' END)
                 ORDER BY ic.relname), '[]')
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
          LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = c.oid AND con.contype IN ('p', 'u')
         WHERE i.indrelid = c.oid AND i.indisunique) AS uniques,
       (SELECT json_build_object('name', ic.relname,
                 'valid', i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
                      AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                       WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey) AND NOT a.attnotnull))
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indrelid = c.oid AND i.indisreplident) AS identity_index
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${USER_TABLES}
    ORDER BY 1`,
  );
  return rows.map((r) => ({
    table: r.table,
    columns: r.columns,
    uniques: r.uniques,
    replicaIdentity: r.replident,
    identityIndex: r.identity_index,
  }));
}

/** Every user-table column whose values come from a sequence, with the sequence's next value and the column's max. */
export async function readSequences(db: Sql, site: string): Promise<SequenceState[]> {
  const rows = await db.query<{
    table: string;
    column: string;
    identity: boolean;
    type: string;
    sequence: string;
    increment: string;
  }>(
    `WITH cols AS (
       SELECT c.oid AS relid, n.nspname, c.relname, a.attname, a.attidentity, format_type(a.atttypid, a.atttypmod) AS type,
              CASE WHEN a.attidentity <> ''
                   THEN pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname)::regclass::oid
                   ELSE (SELECT dep.refobjid FROM pg_attrdef ad
                           JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = ad.oid
                                             AND dep.refclassid = 'pg_class'::regclass
                           JOIN pg_class sc ON sc.oid = dep.refobjid AND sc.relkind = 'S'
                          WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum
                            AND pg_get_expr(ad.adbin, ad.adrelid) LIKE 'nextval(%' LIMIT 1) END AS seq
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${USER_TABLES} AND a.attnum > 0 AND NOT a.attisdropped)
     SELECT format('%I.%I', cols.nspname, cols.relname) AS table, cols.attname AS column,
            cols.attidentity <> '' AS identity, cols.type,
            format('%I.%I', sn.nspname, sc.relname) AS sequence, s.seqincrement::text AS increment
       FROM cols JOIN pg_class sc ON sc.oid = cols.seq JOIN pg_namespace sn ON sn.oid = sc.relnamespace
       JOIN pg_sequence s ON s.seqrelid = sc.oid
      ORDER BY 1, 2`,
  );
  const out: SequenceState[] = [];
  for (const r of rows) {
    // Names come from format('%I') above, never from the user.
    const st = await db.query<{ last: string; called: boolean }>(
      `SELECT last_value::text AS last, is_called AS called FROM ${r.sequence}`,
    );
    const col = await db.query<{ max: string | null }>(
      `SELECT max(${quoteIdent(r.column)})::text AS max FROM ${r.table}`,
      [],
      600_000,
    );
    const inc = BigInt(r.increment);
    const last = BigInt(st[0]?.last ?? '1');
    out.push({
      site,
      table: r.table,
      column: r.column,
      sequence: r.sequence,
      identity: r.identity,
      type: r.type,
      increment: inc,
      next: st[0]?.called ? last + inc : last,
      maxUsed: col[0]?.max != null ? BigInt(col[0].max) : null,
    });
  }
  return out;
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
