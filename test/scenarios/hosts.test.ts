/**
 * Failover stories on three hosts made of network namespaces (test/hosts/): a 3-member etcd on e1–e3, an agent and
 * PostgreSQL on each of n1–n3, the proxy and the clients in the root namespace. A checker writes to every node
 * directly every 100 ms (two nodes acknowledging in one round would be a split brain) and a client writes through
 * the proxy every 50 ms (what an application sees: its longest wait and every error by SQLSTATE).
 *
 * - Given a healthy cluster, when the leader's host vanishes (link down: nothing refuses), then another node leads,
 *   writes through the proxy resume with no 25006 (read-only) error, and no round saw two writable nodes.
 * - When the leader is cut off from its replicas (not from etcd) for 20 s, then the replicas report that they do
 *   not stream within seconds (wal_receiver_timeout), nobody is promoted, and they stream again after the heal.
 * - When every etcd member is killed and restarted, then the leader demotes and is re-elected, and the proxy never
 *   sends a write to a read-only node.
 * The figures are printed (`# hosts: …`); the assertions are about outcomes, not timings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sleep } from '../../src/lib/proc.js';
import { ProxyWriter, SplitBrainChecker } from '../hosts/checker.js';
import { NODES, startHostCluster, type HostCluster } from '../hosts/cluster.js';
import { available } from '../hosts/net.js';

const why = available();

async function patroni(c: HostCluster, node: string): Promise<Record<string, unknown> | null> {
  try {
    const r = await fetch(c.apiUrl(node), { signal: AbortSignal.timeout(1500) });
    return (await r.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => null);
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`never happened within ${timeoutMs} ms: ${what}`);
}

function proxyAt(c: HostCluster): { host: string; port: number } {
  const [host, port] = c.proxy.rwAddress.split(':') as [string, string];
  return { host, port: Number(port) };
}

describe('failover on namespace hosts', { skip: why ?? false }, () => {
  let c: HostCluster;
  before(async () => {
    c = await startHostCluster();
    await c.waitHealthy();
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it("the leader's host vanishes: another node leads, proxy writes resume without 25006, no split brain", async () => {
    const leader = await c.waitHealthy();
    const checker = new SplitBrainChecker(NODES, c.pgAddr, c.password);
    await checker.start((sql) => c.query(leader, sql));
    const writer = new ProxyWriter(proxyAt(c));
    await writer.start();
    await sleep(1500);
    c.net.linkDown(leader);
    const cut = Date.now();
    let next = '';
    try {
      next = await c.waitForLeader(60_000, leader);
      const elected = Date.now() - cut;
      const before = writer.acked.length;
      await until('a write through the proxy on the new leader', async () => writer.acked.length > before + 5, 30_000);
      await sleep(1000);
      await writer.stop();
      await checker.stop();
      const lost = await writer.lostOn((sql, params) => c.query(next, sql, params));
      console.log(
        `# hosts: leader ${leader} vanished; ${next} writable after ${elected} ms; longest client wait through the proxy ${writer.maxGapMs} ms; errors ${JSON.stringify(Object.fromEntries(writer.errors))}; acknowledged writes lost (async) ${lost}`,
      );
      assert.notEqual(next, leader);
      assert.equal(writer.errors.get('25006') ?? 0, 0, 'no write was sent to a read-only member');
      assert.deepEqual(checker.splitBrainRounds(), [], 'never two writable nodes in one 100 ms round');
    } finally {
      await writer.stop();
      await checker.stop();
      c.net.linkUp(leader);
    }
    const healed = await c.waitHealthy(180_000);
    assert.equal(healed, next, 'the old leader rejoined as a replica');
  });

  it('the leader cut off from its replicas: they report it within seconds, nobody is promoted, they stream again after the heal', async () => {
    const leader = await c.waitHealthy();
    const replicas = NODES.filter((n) => n !== leader);
    const checker = new SplitBrainChecker(NODES, c.pgAddr, c.password);
    await checker.start((sql) => c.query(leader, sql));
    c.net.partition(leader, replicas);
    const cut = Date.now();
    try {
      for (const r of replicas) {
        await until(
          `${r} to report that it does not stream`,
          async () => (await patroni(c, r))?.['replication_state'] === 'in archive recovery',
          30_000,
        );
      }
      const noticed = Date.now() - cut;
      await c.query(
        leader,
        'CREATE TABLE IF NOT EXISTS during_partition (x int); INSERT INTO during_partition VALUES (1)',
      );
      await sleep(Math.max(0, 20_000 - (Date.now() - cut)));
      assert.equal((await c.dcs()).leader?.name, leader, 'the leader still reaches etcd: no failover');
      c.net.heal(leader, replicas);
      const healedAt = Date.now();
      for (const r of replicas) {
        await until(
          `${r} streaming again with the write made during the partition`,
          async () => {
            const st = await patroni(c, r);
            if (st?.['replication_state'] !== 'streaming') return false;
            return (await c.query(r, 'SELECT count(*)::int AS n FROM during_partition', [], 1000))[0]?.['n'] === 1;
          },
          60_000,
        );
      }
      await checker.stop();
      console.log(
        `# hosts: leader-replicas partition noticed by both replicas after ${noticed} ms; streaming again ${Date.now() - healedAt} ms after the heal`,
      );
      assert.deepEqual(checker.splitBrainRounds(), []);
      assert.equal((await c.dcs()).leader?.name, leader);
    } finally {
      await checker.stop();
      try {
        c.net.heal(leader, replicas);
      } catch {
        // already healed
      }
    }
  });

  it('every etcd member killed and restarted: the proxy never sends a write to a read-only node', async () => {
    const leader = await c.waitHealthy();
    const checker = new SplitBrainChecker(NODES, c.pgAddr, c.password);
    await checker.start((sql) => c.query(leader, sql));
    const writer = new ProxyWriter(proxyAt(c));
    await writer.start();
    try {
      await sleep(1000);
      c.killEtcd();
      await sleep(8000);
      await c.startEtcd();
      const next = await c.waitForLeader(90_000);
      const before = writer.acked.length;
      await until('writes through the proxy again', async () => writer.acked.length > before + 5, 60_000);
      await writer.stop();
      await checker.stop();
      console.log(
        `# hosts: etcd down 8 s; leader after restart ${next} (was ${leader}); longest client wait ${writer.maxGapMs} ms; errors ${JSON.stringify(Object.fromEntries(writer.errors))}`,
      );
      assert.equal(writer.errors.get('25006') ?? 0, 0, 'no write was sent to a read-only member');
      assert.deepEqual(checker.splitBrainRounds(), []);
    } finally {
      await writer.stop();
      await checker.stop();
    }
  });
});
