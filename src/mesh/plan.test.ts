import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from './errors.js';
import {
  checkSites,
  linkPlan,
  meshSettings,
  missingRunning,
  nodeNameFor,
  sameRecord,
  settingsPatch,
  siteDsn,
  withPreload,
  type MeshRecord,
} from './plan.js';

const ENGINE = { 'pglogical.conflict_resolution': 'last_update_wins' };

describe('link plan', () => {
  it('seeds from the first site, then every remaining ordered pair, each link once', () => {
    const links = linkPlan(['eu', 'us', 'ap']);
    assert.deepEqual(
      links.map((l) => `${l.from}>${l.to}:${l.syncData}`),
      ['eu>us:true', 'eu>ap:true', 'us>eu:false', 'us>ap:false', 'ap>eu:false', 'ap>us:false'],
    );
    assert.equal(new Set(links.map((l) => `${l.to}/${l.subscription}`)).size, 6);
    assert.equal(links[0]?.subscription, 'mesh_eu_us');
  });

  it('a 2-site mesh has two links, only the first copies data', () => {
    assert.deepEqual(
      linkPlan(['a', 'b']).map((l) => [l.from, l.to, l.syncData]),
      [
        ['a', 'b', true],
        ['b', 'a', false],
      ],
    );
  });

  it('refuses one site, and two scopes that would be the same node', () => {
    assert.throws(
      () => linkPlan(['only']),
      (e) => isMeshError(e, 'MESH_USAGE') && /at least two/.test(e.message),
    );
    assert.throws(
      () => checkSites(['a-b', 'a_b']),
      (e) => isMeshError(e, 'MESH_USAGE') && /"a_b"/.test(e.message),
    );
  });

  it('node names are SQL-safe identifiers', () => {
    assert.equal(nodeNameFor('EU-West.1'), 'eu_west_1');
    assert.equal(nodeNameFor('9lives'), 's_9lives');
  });
});

describe('provider DSN', () => {
  const site = {
    scope: 'eu',
    leader: 'node2',
    members: [
      { name: 'node1', host: '10.0.0.1', port: 5432 },
      { name: 'node2', host: '10.0.0.2', port: 5433 },
    ],
  };

  it('is multi-host over every member, leader first, read-write only', () => {
    assert.equal(
      siteDsn(site, 'app', 'postgres'),
      "host='10.0.0.2,10.0.0.1' port='5433,5432' dbname=app user=postgres target_session_attrs=read-write connect_timeout=5",
    );
  });

  it('quotes a password libpq-style and leaves it out when not given', () => {
    const dsn = siteDsn(site, 'app', 'postgres', "it's a secret");
    assert.match(dsn, / password='it\\'s a secret' /);
    assert.doesNotMatch(siteDsn(site, 'app', 'postgres'), /password/);
  });

  it('refuses a site without members', () => {
    assert.throws(
      () => siteDsn({ scope: 'x', leader: null, members: [] }, 'app', 'postgres'),
      (e) => isMeshError(e, 'MESH_NO_LEADER'),
    );
  });
});

describe('settings', () => {
  const wanted = meshSettings(3, 'pglogical');

  it('sizes workers, slots and senders for the number of sites', () => {
    assert.deepEqual(wanted.atLeast, { max_worker_processes: 14, max_replication_slots: 13, max_wal_senders: 13 });
  });

  it('patches only what is missing: keeps larger numbers and other preloaded libraries', () => {
    const patch = settingsPatch(
      { max_worker_processes: 32, WAL_LEVEL: 'logical', shared_preload_libraries: 'pg_stat_statements' },
      wanted,
      ENGINE,
    );
    assert.deepEqual(patch, {
      track_commit_timestamp: 'on',
      'pglogical.conflict_resolution': 'last_update_wins',
      max_replication_slots: 13,
      max_wal_senders: 13,
      shared_preload_libraries: 'pg_stat_statements,pglogical',
    });
  });

  it('an already complete configuration needs no patch', () => {
    const done = {
      wal_level: 'logical',
      track_commit_timestamp: 'on',
      'pglogical.conflict_resolution': 'last_update_wins',
      max_worker_processes: '14',
      max_replication_slots: 20,
      max_wal_senders: 13,
      shared_preload_libraries: 'pglogical',
    };
    assert.deepEqual(settingsPatch(done, wanted, ENGINE), {});
  });

  it('withPreload adds once, trims, drops blanks', () => {
    assert.equal(withPreload(' a , ,pglogical', 'pglogical'), 'a,pglogical');
    assert.equal(withPreload(undefined, 'pglogical'), 'pglogical');
  });

  it('names each running setting that still needs the restart', () => {
    const running = {
      wal_level: 'replica',
      track_commit_timestamp: 'on',
      shared_preload_libraries: 'pg_stat_statements',
      max_worker_processes: '8',
      max_replication_slots: '13',
      max_wal_senders: '13',
    };
    assert.deepEqual(missingRunning(running, wanted, ENGINE), [
      'wal_level: replica → logical',
      'max_worker_processes: 8 → at least 14',
      'shared_preload_libraries: "pg_stat_statements" lacks pglogical',
    ]);
    const ok = { ...running, wal_level: 'logical', max_worker_processes: '16', shared_preload_libraries: 'pglogical' };
    assert.deepEqual(
      missingRunning({ ...ok, 'pglogical.conflict_resolution': 'last_update_wins' }, wanted, ENGINE),
      [],
    );
    assert.deepEqual(missingRunning({ ...ok, 'pglogical.conflict_resolution': 'apply_remote' }, wanted, ENGINE), [
      'pglogical.conflict_resolution: apply_remote → last_update_wins',
    ]);
  });
});

describe('mesh record', () => {
  const r: MeshRecord = {
    version: 1,
    engine: 'pglogical',
    database: 'postgres',
    sites: [{ scope: 'a', node: 'a', dsn: 'host=h' }],
    links: [{ from: 'a', to: 'b', subscription: 'mesh_a_b', slot: 's', origin: 's' }],
  };

  it('is the same whatever the key order, and differs when a slot does', () => {
    const reordered = JSON.parse(
      JSON.stringify({ links: r.links, sites: r.sites, database: 'postgres', engine: 'pglogical', version: 1 }),
    );
    assert.equal(sameRecord(reordered as MeshRecord, r), true);
    assert.equal(sameRecord(null, r), false);
    assert.equal(
      sameRecord({ ...r, links: [{ ...(r.links[0] as MeshRecord['links'][number]), slot: 'x' }] }, r),
      false,
    );
  });
});
