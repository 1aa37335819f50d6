import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { schemaDiffs, schemaDiffText, schemaHash, tableHash, tableProblems, type TableDef } from './schema.js';

const col = (name: string, type = 'integer', extra: Partial<TableDef['columns'][number]> = {}) => ({
  name,
  type,
  notNull: false,
  default: null,
  identity: '',
  ...extra,
});
const pk = (def = 'PRIMARY KEY (id)', deferrable = false) => ({
  name: 't_pkey',
  def,
  deferrable,
  kind: 'primary' as const,
});
const table = (extra: Partial<TableDef> = {}): TableDef => ({
  table: 'public.t',
  columns: [col('id', 'integer', { notNull: true }), col('v', 'text')],
  uniques: [pk()],
  replicaIdentity: 'd',
  identityIndex: null,
  ...extra,
});

describe('schema hash', () => {
  it('is deterministic and ignores constraint and index names and the order tables come in', () => {
    const a = table();
    const b = table({ uniques: [{ ...pk(), name: 'other_name' }] });
    assert.equal(tableHash(a), tableHash(b));
    const u = table({ table: 'public.u' });
    assert.equal(schemaHash([a, u]), schemaHash([u, b]));
    assert.match(schemaHash([a]), /^[0-9a-f]{16}$/);
  });

  it('changes with a column type, NOT NULL, default, identity, the key, a unique index or the replica identity', () => {
    const h = tableHash(table());
    const variants: TableDef[] = [
      table({ columns: [col('id', 'bigint', { notNull: true }), col('v', 'text')] }),
      table({ columns: [col('id', 'integer'), col('v', 'text')] }),
      table({ columns: [col('id', 'integer', { notNull: true, default: '0' }), col('v', 'text')] }),
      table({ columns: [col('id', 'integer', { notNull: true, identity: 'd' }), col('v', 'text')] }),
      table({ columns: [col('v', 'text'), col('id', 'integer', { notNull: true })] }),
      table({ uniques: [pk('PRIMARY KEY (id, v)')] }),
      table({
        uniques: [
          pk(),
          { name: 'i', def: 'UNIQUE INDEX ON public.t USING btree (v)', deferrable: false, kind: 'index' },
        ],
      }),
      table({ replicaIdentity: 'f' }),
    ];
    for (const v of variants) assert.notEqual(tableHash(v), h, JSON.stringify(v));
  });
});

describe('schemaDiffs', () => {
  it('names the table, each site with its hash, and what differs (column only on one site, type, key)', () => {
    const s1 = [table(), table({ table: 'public.same' })];
    const s2 = [
      table({ columns: [col('id', 'integer', { notNull: true }), col('v', 'character varying(10)'), col('extra')] }),
      table({ table: 'public.same' }),
    ];
    const d = schemaDiffs(
      new Map([
        ['site1', s1],
        ['site2', s2],
      ]),
    );
    assert.equal(d.length, 1);
    assert.equal(d[0]?.table, 'public.t');
    assert.deepEqual(Object.keys(d[0]?.sites ?? {}), ['site1', 'site2']);
    assert.deepEqual(d[0]?.what, ['column v: site1 text vs site2 character varying(10)', 'column extra only on site2']);
    assert.match(
      schemaDiffText(d)[0] ?? '',
      /^MESH_SCHEMA_DIFFERS: table public\.t differs between sites \(site1 [0-9a-f]{12}, site2 [0-9a-f]{12}\): /,
    );
  });

  it('reports a table missing on a site, and the primary key and replica identity when they differ', () => {
    const d = schemaDiffs(
      new Map([
        ['a', [table(), table({ table: 'public.only_a' })]],
        ['b', [table({ uniques: [pk('PRIMARY KEY (id)', true)], replicaIdentity: 'f' })]],
      ]),
    );
    assert.deepEqual(
      d.map((x) => [x.table, x.sites['b'], x.what]),
      [
        ['public.only_a', null, ['missing on b']],
        [
          'public.t',
          tableHash(table({ uniques: [pk('PRIMARY KEY (id)', true)], replicaIdentity: 'f' })),
          ['primary key: a PRIMARY KEY (id) vs b PRIMARY KEY (id) DEFERRABLE', 'replica identity: a default vs b full'],
        ],
      ],
    );
  });

  it('finds nothing when every site has the same tables', () => {
    assert.deepEqual(
      schemaDiffs(
        new Map([
          ['a', [table()]],
          ['b', [table()]],
        ]),
      ),
      [],
    );
  });
});

describe('tableProblems', () => {
  it('accepts a primary key, or a valid replica identity index', () => {
    assert.deepEqual(tableProblems('s', [table()]), []);
    const byIndex = table({
      uniques: [{ name: 'u', def: 'UNIQUE (v)', deferrable: false, kind: 'constraint' }],
      replicaIdentity: 'i',
      identityIndex: { name: 'u', valid: true },
    });
    assert.deepEqual(tableProblems('s', [byIndex]), []);
  });

  it('refuses no key, FULL, NOTHING and an unusable identity index, naming site and table', () => {
    const cases: TableDef[] = [
      table({ table: 'public.a', uniques: [] }),
      table({ table: 'public.b', uniques: [], replicaIdentity: 'f' }),
      table({ table: 'public.c', replicaIdentity: 'n' }),
      table({ table: 'public.d', uniques: [], replicaIdentity: 'i', identityIndex: { name: 'x', valid: false } }),
    ];
    const p = tableProblems('site2', cases);
    assert.deepEqual(
      p.map((x) => [x.code, x.site, x.table]),
      ['a', 'b', 'c', 'd'].map((t) => ['MESH_NO_REPLICA_IDENTITY', 'site2', `public.${t}`]),
    );
    assert.match(p[1]?.message ?? '', /REPLICA IDENTITY FULL/);
    assert.match(p[3]?.message ?? '', /index x is not unique/);
  });

  it('refuses a deferrable primary key and a deferrable unique constraint, naming the constraint', () => {
    const t = table({
      uniques: [
        pk('PRIMARY KEY (id) DEFERRABLE', true),
        { name: 't_v_key', def: 'UNIQUE (v) DEFERRABLE INITIALLY DEFERRED', deferrable: true, kind: 'constraint' },
      ],
    });
    const p = tableProblems('site1', [t]);
    assert.deepEqual(
      p.map((x) => [x.code, x.constraint]),
      [
        ['MESH_DEFERRABLE_UNIQUE', 't_pkey'],
        ['MESH_DEFERRABLE_UNIQUE', 't_v_key'],
      ],
    );
  });
});
