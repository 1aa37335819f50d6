import { it } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from '../config/load.js';
import { FakeInstance } from './fake-instance.js';
import { localInstanceContract } from './local-instance.contract.js';
import { PostgresError } from './local-instance.js';

const cfg = configFromObject(
  {
    scope: 's',
    name: 'node1',
    postgresql: {
      listen: '127.0.0.1:5432',
      data_dir: '/fake/data',
      authentication: { superuser: { password: 'x' }, replication: { password: 'y' } },
    },
  },
  't',
  {},
  '/fake',
);

localInstanceContract('FakeInstance', async () => {
  const instance = new FakeInstance();
  const self = { host: '127.0.0.1', port: 5432 };
  instance.remote.set('127.0.0.1:5432', { sysid: '7000', timeline: 1, walPosition: 1, databaseBytes: 7_500_000 });
  return {
    instance,
    self,
    nowhere: { host: '127.0.0.1', port: 1 },
    conf: (ssn = '') => ({ cfg, dcsParameters: {}, upstream: null, synchronousStandbyNames: ssn }),
    openTransaction: async () => {
      instance.inFlight = (instance.inFlight as number) + 1;
      return async () => void (instance.inFlight = (instance.inFlight as number) - 1);
    },
    [Symbol.asyncDispose]: async () => {},
  };
});

it('FakeInstance: an injected failure is thrown once, after the call is recorded, and changes nothing', async () => {
  const pg = new FakeInstance();
  await pg.initdb();
  pg.failNext('start', new PostgresError('PG_START_FAILED', 'boom'));
  await assert.rejects(pg.start(1000), /boom/);
  assert.equal(pg.isRunning(), false);
  await pg.start(1000);
  assert.equal(pg.isRunning(), true);
  assert.deepEqual(pg.calls, ['initdb', 'start', 'start']);
});
