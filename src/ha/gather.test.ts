import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster } from '../dcs/layout.js';
import { confirmFailsafe } from './gather.js';

it('failsafe: a member named like an Object.prototype member is not "listed" by inheritance', async () => {
  const last = { failsafe: {} } as unknown as Cluster;
  for (const me of ['toString', 'constructor', 'hasOwnProperty'])
    assert.equal(await confirmFailsafe(last, me, '127.0.0.1:1', null), false, me);
});
