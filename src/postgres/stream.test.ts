import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configFromObject } from '../config/load.js';
import { managedParameters, primaryConninfo } from './conf.js';
import { receiverStalled } from './instance.js';

const cfg = configFromObject(
  {
    scope: 's',
    name: 'n1',
    restapi: { listen: '127.0.0.1:8008' },
    postgresql: {
      listen: '127.0.0.1:5432',
      data_dir: '/tmp/x/data',
      authentication: { superuser: { password: 'a' }, replication: { password: 'b' } },
    },
  },
  'test',
  {},
);

describe('a replication stream that stalls is noticed in seconds', () => {
  it('bounds every way a stream can hang: receiver and sender timeouts, keepalives, tcp_user_timeout', () => {
    const p = managedParameters({
      cfg,
      dcsParameters: {},
      upstream: { host: '10.0.0.2', port: 5432, slot: 'n1' },
      synchronousStandbyNames: '',
    });
    assert.equal(p['wal_receiver_timeout'], '10s');
    assert.equal(p['wal_sender_timeout'], '10s');
    const ci = primaryConninfo(cfg, { host: '10.0.0.2', port: 5432, slot: 'n1' });
    assert.match(ci, /\btcp_user_timeout=10000\b/);
    assert.match(ci, /\bkeepalives_idle=5\b/);
    const own = managedParameters({
      cfg: { ...cfg, postgresql: { ...cfg.postgresql, parameters: { wal_receiver_timeout: '30s' } } },
      dcsParameters: {},
      upstream: null,
      synchronousStandbyNames: '',
    });
    assert.equal(own['wal_receiver_timeout'], '30s', 'a default, not a requirement: the operator may change it');
  });

  it('a receiver silent for longer than wal_receiver_timeout is stalled, whatever pg_stat_wal_receiver says', () => {
    assert.equal(receiverStalled(null, 10_000), false, 'no receiver: not a stalled one');
    assert.equal(receiverStalled(4_000, 10_000), false);
    assert.equal(receiverStalled(10_001, 10_000), true);
    assert.equal(receiverStalled(600_000, 0), false, 'wal_receiver_timeout = 0 disables the check, as in PostgreSQL');
  });
});
