/**
 * The API's seam to the agent (ports.ts): the real Agent keeps the AgentPort contract (a frozen copy, failsafe pings
 * through a method, a fresh DCS read), and the server runs on a small fake of it — no agent context needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/load.js';
import { clusterKeys, encodeJson, type Cluster } from '../dcs/layout.js';
import { MemoryStore } from '../dcs/memory.js';
import { Agent, type AgentSnapshot } from '../ha/agent.js';
import type { Gathered } from '../ha/gather.js';
import { newMemory } from '../ha/state.js';
import { silentLogger } from '../lib/log.js';
import { freePort } from '../lib/net.js';
import type { AgentPort } from './ports.js';
import { ApiServer } from './server.js';

const keys = clusterKeys('t');

async function config(port = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-ports-'));
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
  return { cfg, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('Agent as the API sees it (AgentPort)', () => {
  it('snapshot() is a frozen copy: a later failsafe ping shows in the next snapshot, not in one already taken', async () => {
    using c = await config();
    const store = new MemoryStore({ now: Date.now });
    const agent: AgentPort = new Agent(c.cfg, store, silentLogger);
    const before = agent.snapshot();
    assert.ok(Object.isFrozen(before) && Object.isFrozen(before.memory));
    assert.throws(() => Object.assign(before.memory, { failsafeSeenAt: 1 }), TypeError);
    agent.noteFailsafePing(1234);
    assert.equal(before.memory.failsafeSeenAt, null);
    assert.equal(agent.snapshot().memory.failsafeSeenAt, 1234);
    await store.close();
  });

  it('readCluster() reads the DCS at the call, not the last cycle', async () => {
    using c = await config();
    const store = new MemoryStore({ now: Date.now });
    const agent: AgentPort = new Agent(c.cfg, store, silentLogger);
    await store.put(keys.leader, 'node1');
    assert.equal((await agent.readCluster()).leader?.name, 'node1');
    assert.equal(agent.snapshot().gathered, null);
    await store.close();
  });
});

/** A replica in failsafe mode whose DCS is down: readCluster rejects, the snapshot holds the last cluster. */
function fakeAgent(cluster: Cluster): AgentPort & { pings: number[]; pokes: number } {
  const gathered = {
    dynamic: { failsafe_mode: true, ttl: 30 },
    pgStatus: { inRecovery: true, replayedLsn: 42 },
    cluster,
    observed: { tags: {} },
  } as unknown as Gathered;
  const memory = { ...newMemory(), lastCluster: { ...cluster, failsafe: { node1: 'http://127.0.0.1:8008/patroni' } } };
  const snap: AgentSnapshot = Object.freeze({
    name: 'node2',
    scope: 't',
    at: 1,
    gathered,
    decision: null,
    memory,
    memberState: 'running',
    role: 'replica' as const,
  });
  const fake = {
    pings: [] as number[],
    pokes: 0,
    snapshot: () => snap,
    request: async () => 'done',
    noteFailsafePing: (at: number) => void fake.pings.push(at),
    readCluster: () => Promise.reject(new Error('DCS down')),
    poke: () => void fake.pokes++,
  };
  return fake;
}

describe('ApiServer on a fake AgentPort', () => {
  it('POST /failsafe reports the ping with the API clock; GET /failsafe and /cluster answer from the snapshot when the DCS is down', async () => {
    const port = await freePort();
    using c = await config(port);
    const store = new MemoryStore({ now: Date.now });
    const member = {
      conn_url: 'postgres://127.0.0.1:5432/postgres',
      api_url: 'http://127.0.0.1:8008/patroni',
      state: 'running',
      role: 'master',
    };
    await store.put(keys.member('node1'), encodeJson(member));
    await store.put(keys.leader, 'node1');
    const agent = fakeAgent(await new Agent(c.cfg, store, silentLogger).readCluster());
    const api = new ApiServer({ agent, store, keys, cfg: c.cfg, now: () => 5_000 }, silentLogger, {});
    await api.listen();
    try {
      const url = (p: string) => `http://127.0.0.1:${port}${p}`;
      const ping = await fetch(url('/failsafe'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(ping.status, 200);
      assert.equal(ping.headers.get('lsn'), '42');
      assert.deepEqual(agent.pings, [5_000]);
      assert.deepEqual(await (await fetch(url('/failsafe'))).json(), { node1: 'http://127.0.0.1:8008/patroni' });
      const cluster = (await (await fetch(url('/cluster'))).json()) as {
        members: Array<{ name: string; role: string }>;
      };
      assert.deepEqual(
        cluster.members.map((m) => [m.name, m.role]),
        [['node1', 'leader']],
      );
    } finally {
      await api.close();
      await store.close();
    }
  });
});
