/**
 * The proxy `pgkeel up` starts announces itself in the DCS (src/proxy/registry.ts): the key appears with the
 * right stats_url, /stats answers with the pool the queries went through, and the key disappears when the proxy
 * stops cleanly (SIGTERM). Then the same proxy with `workers: 2`: the supervisor registers and serves /stats for all
 * workers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pidAlive } from '../../src/lib/proc.js';
import { proxiesPrefix } from '../../src/proxy/registry.js';
import type { ProxyStatsJson } from '../../src/proxy/stats-json.js';
import { healthyStatus, pgkeelBin, startCluster } from '../helpers/cluster.js';
import { rest, storeFor } from '../helpers/scenario.js';

describe('observe: the proxy in the DCS and its /stats', () => {
  it('registers under proxies/, serves /stats with the pool, leaves the DCS on SIGTERM; with 2 workers the supervisor does', async () => {
    await using c = await startCluster({ name: 'observe-proxy' });
    const up = await c.up();
    assert.equal(up.code, 0, up.stderr);
    const s = await healthyStatus(c);
    assert.ok(s.proxy, 'status --json lists the proxy');
    const rwPort = Number(s.proxy.rw.split(':')[1]);
    const metrics = `127.0.0.1:${c.portBase + 4}`;
    const key = `${proxiesPrefix(s.scope, 'service')}127.0.0.1_${rwPort}`;
    const store = storeFor(s);
    try {
      const kv = await c.waitFor('the proxy key', () => store.get(key), 15_000);
      assert.notEqual(kv.lease, '0', 'the key lives on a lease');
      const rec = JSON.parse(kv.value) as Record<string, unknown>;
      assert.equal(rec.id, `127.0.0.1_${rwPort}`);
      assert.equal(rec.listen, s.proxy.rw);
      assert.equal(rec.ro_listen, s.proxy.ro);
      assert.equal(rec.stats_url, `http://${metrics}/stats`);
      assert.equal(rec.metrics_url, `http://${metrics}/metrics`);
      assert.ok(!Number.isNaN(Date.parse(String(rec.started))), `started ${rec.started}`);

      for (let i = 0; i < 5; i++) await c.query(rwPort, 'SELECT 1');
      const stats = await rest(String(rec.stats_url));
      assert.equal(stats.code, 200);
      const body = stats.body as unknown as ProxyStatsJson;
      assert.ok(!Number.isNaN(Date.parse(body.time)));
      const pool = body.pools.find((p) => p.database === 'postgres' && p.user === 'postgres');
      assert.ok(pool, `the pool the queries used: ${JSON.stringify(body.pools)}`);
      assert.equal(typeof pool.p99_wait_ms, 'number');
      assert.ok(pool.tps >= 0 && pool.qps >= 0, `tps ${pool.tps} qps ${pool.qps}`);
      assert.equal(typeof body.totals.tps, 'number');

      const text = await (await fetch(String(rec.metrics_url))).text();
      const count = /^pgkeel_proxy_pool_wait_seconds_count\{database="postgres",user="postgres"\} (\d+)$/m.exec(text);
      assert.ok(count, 'the wait histogram is on /metrics');
      assert.ok(Number(count[1]) >= 5, `one wait per server assignment: ${count[1]}`);

      const pid = Number(readFileSync(join(c.dir, 'proxy.pid'), 'utf8').split('\n')[0]);
      assert.ok(pidAlive(pid));
      process.kill(pid, 'SIGTERM');
      await c.waitFor('the proxy key to disappear', async () => (await store.get(key)) === undefined, 15_000);
      await c.waitFor('the proxy to exit', async () => !pidAlive(pid), 15_000);

      const workers = spawn(process.execPath, [pgkeelBin, 'proxy', '-c', join(c.dir, 'proxy.yml'), '--workers', '2'], {
        cwd: c.dir,
        stdio: 'ignore',
      });
      try {
        const again = await c.waitFor('the key of the proxy with 2 workers', () => store.get(key), 20_000);
        assert.equal((JSON.parse(again.value) as { stats_url: string }).stats_url, `http://${metrics}/stats`);
        for (let i = 0; i < 4; i++) await c.query(rwPort, 'SELECT 1');
        const merged = (await rest(`http://${metrics}/stats`)).body as unknown as ProxyStatsJson;
        const p2 = merged.pools.find((p) => p.database === 'postgres' && p.user === 'postgres');
        assert.ok(p2, `the pool, merged over the workers: ${JSON.stringify(merged.pools)}`);
        assert.equal(typeof p2.p99_wait_ms, 'number');
        workers.kill('SIGTERM');
        await c.waitFor('the key to disappear after the supervisor stops', async () => !(await store.get(key)), 15_000);
      } finally {
        if (workers.pid !== undefined && pidAlive(workers.pid)) workers.kill('SIGKILL');
      }
    } finally {
      await store.close();
    }
  });
});
