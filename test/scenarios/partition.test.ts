/**
 * Given a 3-node cluster whose leader reaches etcd through a relay, when the relay is cut (the leader alone loses
 * the DCS, its replicas still reach both), then the leader demotes itself, a replica takes over, and a checker that
 * tries a short write on every node every 100 ms never gets commits acknowledged by two nodes in the same interval.
 * When the relay is restored, the old leader rejoins as a replica.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { sleep } from '../../src/lib/proc.js';
import { healthyStatus, leaderOf, newLeaderStatus, startCluster } from '../helpers/cluster.js';
import { agentPid, kill9, superuserPassword } from '../helpers/scenario.js';
import { TcpRelay } from '../helpers/tcp-relay.js';

interface Ack {
  node: string;
  at: number;
}

/** Every 100 ms, one short INSERT on every node (in parallel); records which node acknowledged when. */
class SplitBrainChecker {
  readonly acks: Ack[] = [];
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly clients = new Map<string, pg.Client | null>();

  constructor(
    private readonly nodes: ReadonlyArray<{ name: string; port: number }>,
    private readonly password: string,
  ) {}

  private async write(node: { name: string; port: number }): Promise<void> {
    let client = this.clients.get(node.name) ?? null;
    try {
      if (!client) {
        client = new pg.Client({
          host: '127.0.0.1',
          port: node.port,
          user: 'postgres',
          password: this.password,
          database: 'postgres',
          connectionTimeoutMillis: 300,
          query_timeout: 300,
          statement_timeout: 300,
        });
        client.on('error', () => {});
        this.clients.set(node.name, client);
        await client.connect();
      }
      await client.query('INSERT INTO split_check (node) VALUES ($1)', [node.name]);
      this.acks.push({ node: node.name, at: Date.now() });
    } catch {
      await client?.end().catch(() => {});
      this.clients.set(node.name, null);
    }
  }

  start(maxMs: number): void {
    const deadline = Date.now() + maxMs;
    this.loop = (async () => {
      while (!this.stopped && Date.now() < deadline) {
        const tick = Date.now();
        await Promise.all(this.nodes.map((n) => this.write(n)));
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    for (const c of this.clients.values()) await c?.end().catch(() => {});
  }
}

describe('partition: the leader alone loses etcd', () => {
  it('demotes the isolated leader before anyone else is promoted — never two writable primaries', async () => {
    await using c = await startCluster({ name: 'partition' });
    assert.equal((await c.up()).code, 0);
    let s = await healthyStatus(c);
    const old = leaderOf(s);
    assert.ok(old);
    await c.query(old.port, 'CREATE TABLE split_check (node text, at timestamptz DEFAULT clock_timestamp())');

    // Route only the leader's agent through a relay to etcd (its PostgreSQL keeps running meanwhile).
    const [etcdHost, etcdPort] = s.etcd.split(':');
    await using relay = new TcpRelay(etcdHost as string, Number(etcdPort));
    const via = await relay.listen();
    kill9(agentPid(c, old.name));
    const cfgFile = join(c.dir, old.name, 'node.yml');
    const cfg = parse(readFileSync(cfgFile, 'utf8')) as { etcd3: { hosts: string[] } };
    cfg.etcd3.hosts = [via];
    writeFileSync(cfgFile, stringify(cfg), { mode: 0o600 });
    assert.equal((await c.up()).code, 0);
    s = await healthyStatus(c);
    assert.equal(leaderOf(s)?.name, old.name, 'the restarted agent kept its leadership');

    const checker = new SplitBrainChecker(
      s.members.map((m) => ({ name: m.name, port: m.port })),
      superuserPassword(c),
    );
    checker.start(120_000);
    await c.waitFor('acknowledged writes on the leader', async () => checker.acks.length >= 10);
    relay.cut();
    const cutAt = Date.now();

    const after = await newLeaderStatus(c, old.name, 60_000);
    const next = leaderOf(after);
    assert.ok(next);
    await c.waitFor(
      'acknowledged writes on the new leader',
      async () => checker.acks.some((a) => a.node === next.name),
      30_000,
    );
    await sleep(1000);
    await checker.stop();

    const byNode = new Map<string, number[]>();
    for (const a of checker.acks) byNode.set(a.node, [...(byNode.get(a.node) ?? []), a.at]);
    assert.deepEqual(
      [...byNode.keys()].sort(),
      [old.name, next.name].sort(),
      'only the old and the new leader ever acknowledged',
    );
    const lastOld = Math.max(...(byNode.get(old.name) ?? [0]));
    const firstNew = Math.min(...(byNode.get(next.name) ?? [Infinity]));
    assert.ok(
      lastOld < firstNew,
      `the isolated leader acknowledged a write at ${lastOld}, after the new leader's first at ${firstNew}`,
    );
    const intervals = new Map<number, Set<string>>();
    for (const a of checker.acks) {
      const slot = Math.floor(a.at / 100);
      intervals.set(slot, (intervals.get(slot) ?? new Set()).add(a.node));
    }
    assert.deepEqual(
      [...intervals.values()].filter((set) => set.size > 1),
      [],
      'no 100 ms interval with commits on two nodes',
    );
    console.log(
      `isolated leader's last write ${lastOld - cutAt} ms after the cut; new leader's first ${firstNew - cutAt} ms after`,
    );
    const oldLog = readFileSync(join(c.dir, old.name, 'agent.log'), 'utf8');
    assert.match(oldLog, /demoting \(offline\)/);

    // The partition heals: the old leader follows the new one.
    relay.restore();
    s = await healthyStatus(c, 3, 90_000);
    assert.equal(leaderOf(s)?.name, next.name);
    assert.equal(s.members.find((m) => m.name === old.name)?.state, 'streaming');
  });
});
