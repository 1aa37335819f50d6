import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterKeys, parseCluster } from '../../dcs/layout.js';
import type { KeyValue } from '../../dcs/store.js';
import { ProxyErrorCode } from '../errors.js';
import {
  chooseReadOnly,
  chooseReadWrite,
  cutInFlight,
  parseConnUrl,
  staticTopology,
  stillValid,
  topologyFromCluster,
} from './router.js';

const keys = clusterKeys('demo');
let rev = 1;
const kv = (key: string, value: unknown): KeyValue => ({
  key,
  value: typeof value === 'string' ? value : JSON.stringify(value),
  createRevision: rev,
  modRevision: rev++,
  lease: '0',
});
const member = (name: string, port: number, extra: Record<string, unknown> = {}) =>
  kv(keys.member(name), {
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: '',
    state: 'running',
    role: 'replica',
    ...extra,
  });
const now = new Date('2026-01-01T00:00:00Z');

function cluster(...kvs: KeyValue[]) {
  return topologyFromCluster(parseCluster(keys, { revision: rev, kvs }), now);
}

describe('router', () => {
  it('parses conn_url', () => {
    assert.deepEqual(parseConnUrl('postgres://10.0.0.1:6543/postgres'), { host: '10.0.0.1', port: 6543 });
    assert.deepEqual(parseConnUrl('postgresql://[::1]:5433/x'), { host: '::1', port: 5433 });
    assert.equal(parseConnUrl('http://x:1/'), null);
    assert.equal(parseConnUrl('garbage'), null);
  });

  it('routes writes to the leader named by the leader key', () => {
    const t = cluster(
      kv(keys.leader, 'n2'),
      member('n1', 5001),
      member('n2', 5002, { role: 'primary', xlog_location: 1000 }),
    );
    const rw = chooseReadWrite(t);
    assert.ok(!('code' in rw));
    assert.equal(rw.name, 'n2');
    assert.equal(rw.port, 5002);
    assert.deepEqual(
      t.replicas.map((r) => r.name),
      ['n1'],
      'the leader is not a replica even if its record says replica',
    );
  });

  it('waits (error) without a leader key and during a due failover', () => {
    const none = cluster(member('n1', 5001));
    assert.equal(none.switching, true);
    const e = chooseReadWrite(none);
    assert.ok('code' in e && e.code === ProxyErrorCode.NoLeader);
    const failover = cluster(
      kv(keys.leader, 'n1'),
      member('n1', 5001, { role: 'primary' }),
      kv(keys.failover, { leader: 'n1', member: 'n2' }),
    );
    assert.equal(failover.switching, true);
    const later = cluster(
      kv(keys.leader, 'n1'),
      member('n1', 5001, { role: 'primary' }),
      kv(keys.failover, { leader: 'n1', scheduled_at: '2027-01-01T00:00:00Z' }),
    );
    assert.equal(later.switching, false, 'a failover scheduled in the future does not pause');
  });

  it('holds writes while the key holder does not report itself primary (promotion in progress, or demoted after an etcd restart)', () => {
    for (const role of ['replica', 'demoted', 'uninitialized']) {
      const t = cluster(
        kv(keys.leader, 'n2'),
        member('n1', 5001, { role: 'master' }),
        member('n2', 5002, { role, state: 'promoting' }),
      );
      assert.equal(t.switching, true, role);
      assert.equal(t.leader, null, role);
      assert.match(t.reason, /holds the key but does not report itself primary/);
      const e = chooseReadWrite(t);
      assert.ok(
        'code' in e && e.code === ProxyErrorCode.NoLeader,
        'new transactions wait; none is sent to a read-only member',
      );
      assert.equal(
        stillValid(t, { maxLagBytes: 0, roFallbackToLeader: true }, 'rw', 'n1'),
        false,
        'the former primary is fenced',
      );
    }
    for (const role of ['master', 'primary']) {
      const t = cluster(kv(keys.leader, 'n2'), member('n1', 5001), member('n2', 5002, { role }));
      assert.equal(t.switching, false, role);
      assert.equal(t.leader?.name, 'n2', role);
    }
  });

  it('cuts read-write connections in flight on a member once the leader key names another one', () => {
    const promoting = cluster(
      kv(keys.leader, 'n2'),
      member('n1', 5001, { role: 'master' }),
      member('n2', 5002, { role: 'replica' }),
    );
    assert.equal(cutInFlight(promoting, 'n1'), true, 'the old primary vanished or is demoting: do not wait for TCP');
    assert.equal(cutInFlight(promoting, 'n2'), false);
    const noKey = cluster(member('n1', 5001, { role: 'master' }));
    assert.equal(
      cutInFlight(noKey, 'n1'),
      false,
      'no key (etcd restarting, lease expired): in-flight work may still finish',
    );
    const planned = cluster(
      kv(keys.leader, 'n1'),
      member('n1', 5001, { role: 'master' }),
      kv(keys.failover, { leader: 'n1', member: 'n2' }),
    );
    assert.equal(
      cutInFlight(planned, 'n1'),
      false,
      'a switchover lets transactions in flight finish on the old leader',
    );
    assert.equal(cutInFlight(staticTopology({ name: 'a:1', host: 'a', port: 1 }, []), 'b:2'), false);
  });

  it('balances reads by least connections, excluding lagging and noloadbalance replicas', () => {
    const t = cluster(
      kv(keys.leader, 'p'),
      member('p', 5000, { role: 'primary', xlog_location: 10_000 }),
      member('r1', 5001, { replay_lsn: 9_000 }),
      member('r2', 5002, { xlog_location: 9_500 }),
      member('lag', 5003, { replay_lsn: 1_000 }),
      member('nolb', 5004, { replay_lsn: 10_000, tags: { noloadbalance: true } }),
      member('stopped', 5005, { replay_lsn: 10_000, state: 'stopped' }),
    );
    const s = { maxLagBytes: 2_000, roFallbackToLeader: true };
    const counts = new Map([
      ['r1', 3],
      ['r2', 1],
    ]);
    const pick = chooseReadOnly(t, s, (n) => counts.get(n) ?? 0);
    assert.ok(!('code' in pick));
    assert.equal(pick.name, 'r2');
    counts.set('r2', 5);
    assert.equal((chooseReadOnly(t, s, (n) => counts.get(n) ?? 0) as { name: string }).name, 'r1');
    assert.equal(stillValid(t, s, 'ro', 'lag'), false);
    assert.equal(stillValid(t, s, 'ro', 'r1'), true);
  });

  it('falls back to the leader for reads only when configured', () => {
    const t = cluster(kv(keys.leader, 'p'), member('p', 5000, { role: 'primary' }));
    const on = chooseReadOnly(t, { maxLagBytes: 0, roFallbackToLeader: true }, () => 0);
    assert.equal((on as { name: string }).name, 'p');
    const off = chooseReadOnly(t, { maxLagBytes: 0, roFallbackToLeader: false }, () => 0);
    assert.ok('code' in off && off.code === ProxyErrorCode.NoReplica);
  });

  it('static topology: every replica eligible', () => {
    const t = staticTopology({ name: 'a:1', host: 'a', port: 1 }, [{ name: 'b:2', host: 'b', port: 2 }]);
    assert.equal(
      (chooseReadOnly(t, { maxLagBytes: 0, roFallbackToLeader: false }, () => 0) as { name: string }).name,
      'b:2',
    );
  });
});
