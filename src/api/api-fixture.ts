/**
 * Test fixture (not a test itself): an ApiServer over real HTTP(S) whose Agent is not running; the DCS is an
 * in-memory store the test plays the other agents on. Used by actions.test.ts and server-limits.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/load.js';
import type { NodeConfig } from '../config/node.js';
import { clusterKeys } from '../dcs/layout.js';
import { MemoryStore } from '../dcs/memory.js';
import type { Store } from '../dcs/store.js';
import { Agent } from '../ha/agent.js';
import type { DrillHooks } from '../ha/drill.js';
import { createLogger, type Logger } from '../lib/log.js';
import { freePort } from '../lib/net.js';
import { actionHandlers } from './actions.js';
import { ApiServer } from './server.js';

export const silent = createLogger({ level: 'error', write: () => {} });

export interface Fixture extends AsyncDisposable {
  store: MemoryStore;
  port: number;
  agent: Agent;
  cfg: NodeConfig;
  req(method: string, path: string, body?: unknown, auth?: string): Promise<{ code: number; text: string }>;
}

export interface FixtureOptions {
  auth?: boolean;
  store?: (s: MemoryStore) => Store;
  waitMs?: number;
  /** Extra restapi/ctl settings (certificates). */
  restapi?: Record<string, unknown>;
  ctl?: Record<string, unknown>;
  log?: Logger;
  now?: () => number;
  /** Fault hooks for POST /drill (src/ha/drill.ts): the agent runs on `drills.wrap(store)`. */
  drills?: DrillHooks;
}

export const CREDS = { username: 'admin', password: 's3cret' };

/** A node config for API tests: node1 of scope "t", REST on 127.0.0.1:`port`, data in `dir`/data. */
export function testNodeConfig(dir: string, port: number, extra: Record<string, unknown> = {}): NodeConfig {
  const { restapi, ...rest } = extra;
  return configFromObject(
    {
      scope: 't',
      name: 'node1',
      restapi: { listen: `127.0.0.1:${port}`, ...(restapi as Record<string, unknown> | undefined) },
      ...rest,
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
}

export async function fixture(opts: FixtureOptions = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-api-'));
  const port = await freePort();
  const cfg = testNodeConfig(dir, port, {
    restapi: { ...(opts.auth ? { authentication: CREDS } : {}), ...opts.restapi },
    ...(opts.ctl ? { ctl: opts.ctl } : {}),
  });
  const store = new MemoryStore({ now: Date.now });
  const log = opts.log ?? silent;
  const plain = opts.store ? opts.store(store) : store;
  const dcs = opts.drills ? opts.drills.wrap(plain) : plain;
  const agent = new Agent(cfg, dcs, log, Date.now, opts.drills ?? null);
  const deps = { agent, store: dcs, keys: clusterKeys(cfg.scope, cfg.namespace), cfg, now: opts.now ?? Date.now };
  const api = new ApiServer(
    deps,
    log,
    actionHandlers(log, { pollIntervalMs: 20, waitMs: () => opts.waitMs ?? 5000, reinitStartMs: 200 }),
  );
  await api.listen();
  return {
    store,
    port,
    agent,
    cfg,
    async req(method, path, body, auth) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (auth) headers['authorization'] = 'Basic ' + Buffer.from(auth).toString('base64');
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { code: res.status, text: await res.text() };
    },
    async [Symbol.asyncDispose]() {
      await api.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
