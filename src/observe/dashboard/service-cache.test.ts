/** DashboardService without HTTP: one gather per cache period however many ask; lag samples from the snapshot. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentPort } from '../../api/ports.js';
import { clusterKeys, type Cluster, parseCluster } from '../../dcs/layout.js';
import { MemoryStore } from '../../dcs/memory.js';
import type { AgentSnapshot } from '../../ha/agent.js';
import { silentLogger } from '../../lib/log.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CACHE_MS, DashboardService, type DashboardDeps, STATEMENTS_CACHE_MS } from './service.js';

const keys = clusterKeys('t');
let apiUrl = 'http://127.0.0.1:1/patroni';
const rec = (role: string, pos: number) =>
  JSON.stringify({
    // Port 1 by default: refused at once, so the members' REST reads fail fast.
    conn_url: 'postgres://127.0.0.1:1/postgres',
    api_url: apiUrl,
    state: 'running',
    role,
    xlog_location: pos,
    replay_lsn: pos,
    replication_state: 'streaming',
  });
const kv = (key: string, value: string) => ({ key, value, createRevision: 1, modRevision: 1, lease: '0' });
const clusterAt = (replicaPos: number): Cluster =>
  parseCluster(keys, {
    revision: 1,
    kvs: [
      kv(keys.leader, 'node1'),
      kv(keys.member('node1'), rec('master', 1000)),
      kv(keys.member('node2'), rec('replica', replicaPos)),
    ],
  });

function setup() {
  let now = 1_000_000;
  let cluster = clusterAt(1000);
  let reads = 0;
  const agent: AgentPort = {
    snapshot: () => ({ name: 'node2', scope: 't', gathered: { cluster } }) as unknown as AgentSnapshot,
    request: async () => 'done',
    noteFailsafePing: () => {},
    readCluster: async () => {
      reads++;
      return cluster;
    },
    poke: () => {},
  };
  const deps: DashboardDeps = {
    agent,
    store: new MemoryStore({ now: () => now }),
    keys,
    cfg: { restapi: {}, ctl: { insecure: false } } as unknown as DashboardDeps['cfg'],
    now: () => now,
  };
  return {
    svc: new DashboardService(deps, silentLogger),
    reads: () => reads,
    advance: (ms: number) => void (now += ms),
    setReplicaPos: (pos: number) => void (cluster = clusterAt(pos)),
  };
}

describe('DashboardService', () => {
  it('many concurrent and repeated requests within CACHE_MS cost one gather; the next period gathers again', async () => {
    const t = setup();
    const states = await Promise.all(Array.from({ length: 10 }, () => t.svc.state()));
    assert.equal(t.reads(), 1);
    assert.ok(states.every((s) => s === states[0]));
    t.advance(CACHE_MS - 1);
    await t.svc.state();
    assert.equal(t.reads(), 1);
    t.advance(1);
    const s = await t.svc.state();
    assert.equal(t.reads(), 2);
    assert.deepEqual(
      s.members.map((m) => [m.name, m.role, m.reachable]),
      [
        ['node1', 'leader', false],
        ['node2', 'replica', false],
      ],
    );
  });

  it("samples each member's lag from the HA snapshot into the history the state carries", async () => {
    const t = setup();
    t.svc.sample();
    t.advance(5000);
    t.setReplicaPos(400);
    t.svc.sample();
    const s = await t.svc.state();
    assert.deepEqual(s.lag_history.series['node2'], [
      [1_000_000, 0],
      [1_005_000, 600],
    ]);
    assert.deepEqual(s.lag_history.series['node1'], [
      [1_000_000, 0],
      [1_005_000, 0],
    ]);
  });

  it("reads the leader's /statements at most once per STATEMENTS_CACHE_MS", async () => {
    let hits = 0;
    const server = createServer((req, res) => {
      if (req.url === '/statements') hits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url === '/statements' ? JSON.stringify({ enabled: true, statements: [] }) : '{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/patroni`;
    try {
      const t = setup();
      assert.equal((await t.svc.state()).statements.enabled, true);
      t.advance(CACHE_MS);
      await t.svc.state();
      assert.equal(t.reads(), 2, 'the rest was gathered again');
      assert.equal(hits, 1, 'the statements were not');
      t.advance(STATEMENTS_CACHE_MS);
      await t.svc.state();
      assert.equal(hits, 2);
    } finally {
      apiUrl = 'http://127.0.0.1:1/patroni';
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
