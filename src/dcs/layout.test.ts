import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clusterKeys, encodeStatus, encodeSync, parseCluster } from './layout.js';
import type { KeyValue } from './store.js';

const keys = clusterKeys('batman');
let rev = 0;
const kv = (key: string, value: string, lease = '0'): KeyValue => ({
  key,
  value,
  createRevision: ++rev,
  modRevision: rev,
  lease,
});

describe('DCS layout: Patroni key names', () => {
  it('uses /service/<scope>/ and folds duplicate slashes', () => {
    assert.equal(keys.leader, '/service/batman/leader');
    assert.equal(keys.member('pg-1'), '/service/batman/members/pg-1');
    assert.equal(clusterKeys('x', '/svc/').prefix, '/svc/x/');
    for (const k of ['initialize', 'config', 'leader', 'status', 'sync', 'failover', 'history', 'failsafe'] as const)
      assert.equal(keys[k], `/service/batman/${k}`);
  });
});

describe('DCS layout: parsing values Patroni writes', () => {
  const snap = {
    revision: 99,
    kvs: [
      kv(keys.initialize, '7382175862789562070'),
      kv(keys.config, '{"ttl":30,"loop_wait":10,"postgresql":{"use_pg_rewind":true}}'),
      kv(keys.leader, 'pg-1', '694d8f'),
      kv(
        keys.member('pg-1'),
        '{"conn_url":"postgres://10.0.0.1:5432/postgres","api_url":"http://10.0.0.1:8008/patroni","state":"running","role":"master","version":"3.0.2","xlog_location":50331744,"timeline":2}',
        '694d8f',
      ),
      kv(
        keys.member('pg-2'),
        '{"conn_url":"postgres://10.0.0.2:5432/postgres","api_url":"http://10.0.0.2:8008/patroni","state":"running","role":"replica","xlog_location":50331744,"replication_state":"streaming","timeline":2,"tags":{"nofailover":true}}',
      ),
      kv(keys.member('broken'), 'not json'),
      kv(keys.sync, '{"leader":"pg-1","sync_standby":"pg-2,pg-3"}'),
      kv(keys.failover, '{"leader":"pg-1","member":"pg-2","scheduled_at":"2026-01-14T10:09:57+00:00"}'),
      kv(keys.history, '[[1,50331744,"no recovery target specified","2026-01-14T10:09:57+00:00","pg-1"],["bad"]]'),
      kv(keys.status, '{"optime":50331744,"slots":{"pg_2":50331744},"retain_slots":["pg_2"]}'),
      kv(keys.failsafe, '{"pg-1":"http://10.0.0.1:8008/patroni"}'),
    ],
  };
  const c = parseCluster(keys, snap);

  it('reads every key into the immutable cluster value', () => {
    assert.equal(c.revision, 99);
    assert.equal(c.initialize, '7382175862789562070');
    assert.equal(c.config?.value['ttl'], 30);
    assert.deepEqual(c.leader && { name: c.leader.name, lease: c.leader.lease }, { name: 'pg-1', lease: '694d8f' });
    assert.deepEqual([...c.members.keys()], ['pg-1', 'pg-2']);
    assert.equal(c.members.get('pg-1')?.record.role, 'master');
    assert.deepEqual(c.members.get('pg-2')?.record.tags, { nofailover: true });
    assert.deepEqual(c.sync?.standbys, ['pg-2', 'pg-3']);
    assert.deepEqual(
      { l: c.failover?.leader, m: c.failover?.member, at: c.failover?.scheduledAt },
      { l: 'pg-1', m: 'pg-2', at: '2026-01-14T10:09:57+00:00' },
    );
    assert.deepEqual(c.history, [[1, 50331744, 'no recovery target specified', '2026-01-14T10:09:57+00:00', 'pg-1']]);
    assert.deepEqual(c.status, { optime: 50331744, slots: { pg_2: 50331744 }, retainSlots: ['pg_2'] });
    assert.deepEqual(c.failsafe, { 'pg-1': 'http://10.0.0.1:8008/patroni' });
  });

  it('treats an empty failover ({}) and an empty leader value as absent', () => {
    const c2 = parseCluster(keys, { revision: 1, kvs: [kv(keys.failover, '{}'), kv(keys.leader, '')] });
    assert.equal(c2.failover, undefined);
    assert.equal(c2.leader, undefined);
  });

  it('accepts a null sync_standby and an initialize placeholder during bootstrap', () => {
    const c3 = parseCluster(keys, {
      revision: 1,
      kvs: [kv(keys.sync, '{"leader":"pg-1","sync_standby":null}'), kv(keys.initialize, '')],
    });
    assert.deepEqual(c3.sync?.standbys, []);
    assert.equal(c3.initialize, '');
  });
});

describe('DCS layout: writing values as Patroni does', () => {
  it('writes compact JSON', () => {
    assert.equal(encodeSync('pg-1', ['pg-2', 'pg-3']), '{"leader":"pg-1","sync_standby":"pg-2,pg-3"}');
    assert.equal(encodeSync('pg-1', []), '{"leader":"pg-1","sync_standby":null}');
    assert.equal(encodeStatus(5, null, []), '{"optime":5,"slots":null,"retain_slots":[]}');
  });
  it('round-trips through the parser', () => {
    const c = parseCluster(keys, {
      revision: 3,
      kvs: [kv(keys.sync, encodeSync('a', ['b'])), kv(keys.status, encodeStatus(7, { b: 6 }, ['b']))],
    });
    assert.deepEqual(c.sync?.standbys, ['b']);
    assert.equal(c.status?.optime, 7);
  });
});
