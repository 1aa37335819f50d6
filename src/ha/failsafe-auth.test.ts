/**
 * failsafe_mode's confirmation (POST /failsafe to every member) now passes the members' authentication: the
 * primary sends the cluster's REST credentials, and a peer that requires them answers 200 only with them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster } from '../dcs/layout.js';
import { NO_TLS_OPTIONS } from '../cluster/rest-client.js';
import { confirmFailsafe } from './gather.js';

describe('failsafe confirmation', () => {
  it('sends the REST credentials to every member; without them a member refuses', async () => {
    const expected = 'Basic ' + Buffer.from('pgkeel:pw').toString('base64');
    const seen: string[] = [];
    const peer = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization === expected ? 'auth' : 'none'}`);
      req.resume();
      res.writeHead(req.headers.authorization === expected ? 200 : 401).end();
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(peer.address() as AddressInfo).port}/patroni`;
      const last = { failsafe: { node1: 'http://127.0.0.1:1/patroni', node2: url } } as unknown as Cluster;
      assert.equal(await confirmFailsafe(last, 'node1', 'http://127.0.0.1:1/patroni', 5, NO_TLS_OPTIONS), false);
      assert.equal(
        await confirmFailsafe(last, 'node1', 'http://127.0.0.1:1/patroni', 5, {
          auth: { username: 'pgkeel', password: 'pw' },
          tls: { insecure: false },
        }),
        true,
      );
      assert.deepEqual(seen, ['POST /failsafe none', 'POST /failsafe auth']);
    } finally {
      await new Promise((r) => peer.close(r));
    }
  });
});
