/**
 * POST /reinitialize refuses when the filesystem cannot hold the clone: a data directory whose (sparse) file claims
 * 8 TiB stands in for a database larger than the disk. The answer is Patroni's shape — 503 with the reason — and
 * nothing is moved aside.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/load.js';
import { clusterKeys } from '../dcs/layout.js';
import { MemoryStore } from '../dcs/memory.js';
import { Agent, type RequestRefused } from '../ha/agent.js';
import { silentLogger } from '../lib/log.js';
import { freePort } from '../lib/net.js';
import { actionHandlers } from './actions.js';
import { ApiServer } from './server.js';

it('POST /reinitialize: 503 "not enough disk space to clone" (HA_REINIT_NO_SPACE) when the clone cannot fit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-reinit-'));
  const port = await freePort();
  const cfg = configFromObject(
    {
      scope: 't',
      name: 'node2',
      restapi: { listen: `127.0.0.1:${port}` },
      postgresql: {
        listen: '127.0.0.1:1',
        data_dir: 'data',
        authentication: { superuser: { password: 'x' }, replication: { password: 'y' } },
      },
    },
    'test',
    {},
    dir,
  );
  mkdirSync(cfg.postgresql.data_dir);
  const fd = openSync(join(cfg.postgresql.data_dir, 'huge'), 'w');
  ftruncateSync(fd, 8 * 1024 ** 4);
  closeSync(fd);
  const store = new MemoryStore({ now: Date.now });
  const agent = new Agent(cfg, store, silentLogger);
  const api = new ApiServer(
    { agent, store, keys: clusterKeys(cfg.scope), cfg, now: Date.now },
    silentLogger,
    actionHandlers(silentLogger, { reinitStartMs: 200 }),
  );
  await api.listen();
  try {
    await assert.rejects(agent.request('reinitialize'), (e: RequestRefused) => e.code === 'HA_REINIT_NO_SPACE');
    const res = await fetch(`http://127.0.0.1:${port}/reinitialize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"force":true}',
    });
    assert.equal(res.status, 503);
    assert.match(
      await res.text(),
      /^not enough disk space to clone: the clone needs about \d+ MB \(8388608 MB of data plus margin\), the filesystem has \d+ MB free/,
    );
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('data.')),
      [],
      'nothing moved aside',
    );
  } finally {
    await api.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
