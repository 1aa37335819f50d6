import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../dcs/memory.js';
import { isBackupError } from './errors.js';
import { takeBackupLease } from './lease.js';

test('one backup lease at a time; released, it can be taken again', async () => {
  let t = 0;
  const store = new MemoryStore({ now: () => t });
  const first = await takeBackupLease(store, '/service/s/backup', { holder: { member: 'cli', pid: 1 } });
  await assert.rejects(takeBackupLease(store, '/service/s/backup', { holder: { member: 'agent' } }), (err: unknown) => {
    assert.ok(isBackupError(err, 'BACKUP_IN_PROGRESS'));
    assert.match((err as Error).message, /"member":"cli"/);
    return true;
  });
  await first.release();
  t += 1;
  assert.equal(await store.get('/service/s/backup'), undefined);
  const second = await takeBackupLease(store, '/service/s/backup', { holder: { member: 'agent' } });
  assert.equal(second.signal.aborted, false);
  await second.release();
});

test('a holder that stops renewing loses the key when its lease expires', async () => {
  let t = 0;
  const store = new MemoryStore({ now: () => t });
  const stale = await takeBackupLease(store, '/service/s/backup', { holder: { member: 'killed' }, ttlSeconds: 5 });
  t += 4000; // within the lease: still refused
  await assert.rejects(takeBackupLease(store, '/service/s/backup', { holder: { member: 'next' } }));
  t += 2000; // no keep-alive ran (its timer fires once a second in real time): expired
  const next = await takeBackupLease(store, '/service/s/backup', { holder: { member: 'next' } });
  await next.release();
  await stale.release();
});
