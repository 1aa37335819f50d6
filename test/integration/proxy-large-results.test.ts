/**
 * Large results through the proxy stay byte-identical: servers read into one reusable buffer per connection
 * (server-conn.ts nextReadBuffer), so a buffer reused while a write to a slow client still references it would
 * corrupt the stream. Four psql clients (two of them slow consumers) share a pool of 2 in transaction mode, so
 * server connections change hands between big results; every output must hash the same as a direct query.
 */
import assert from 'node:assert/strict';
import { exec } from 'node:child_process';
import { describe, it } from 'node:test';
import type { RunningProxy } from '../../src/proxy/proxy.js';
import { proxyFixture } from '../helpers/proxy.js';

const fx = proxyFixture('proxy-large', { postgres: { maxConnections: 20 }, setup });
let proxy: RunningProxy;

const QUERY = "SELECT i, md5(i::text) || repeat('y', 700) FROM generate_series(1, 60000) i";

/** The md5 of psql's unaligned output; `slow` consumers start reading two seconds late. */
function hashOf(port: number, slow: boolean): Promise<string> {
  const cmd = `psql -h 127.0.0.1 -p ${port} -U postgres -d postgres -At -c "${QUERY}" | ${slow ? '(sleep 2; md5sum)' : 'md5sum'}`;
  return new Promise((resolve, reject) =>
    exec(cmd, { maxBuffer: 1 << 20, timeout: 120_000 }, (err, out) => (err ? reject(err) : resolve(out.trim()))),
  );
}

/** One proxy for the whole file (fixture setup: it is closed after all tests). */
async function setup(): Promise<void> {
  proxy = (await fx.proxy({ default_pool_size: 2 })).p;
}

describe('large results through the proxy', () => {
  it('are byte-identical to direct results for slow and fast readers sharing servers', async () => {
    const direct = await hashOf(fx.pg.port, false);
    assert.match(direct, /^[0-9a-f]{32} /);
    const port = Number(proxy.rwAddress.split(':').pop());
    const through = await Promise.all([
      hashOf(port, true),
      hashOf(port, false),
      hashOf(port, true),
      hashOf(port, false),
    ]);
    assert.deepEqual(through, [direct, direct, direct, direct]);
  });
});
