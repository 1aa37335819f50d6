/**
 * The built-in VIP on three namespace hosts (test/hosts/): every node's config has `vip` (.100 on the bridge's
 * subnet, on its veth) and PostgreSQL listens on its own address and the VIP; the client is in the root namespace.
 *
 * - Given a healthy cluster, the leader's namespace — and only it — holds the VIP, and a client reaches the
 *   leader's PostgreSQL on it.
 * - When `pgkeel ctl switchover` hands over, the VIP answers from the new leader's namespace and not the old one.
 * - When the leader's agent and postmaster are SIGKILLed, the old namespace drops the VIP within seconds (the guard
 *   process), and the new leader holds it once it leads.
 * Printed, not asserted (`# vip: …`): how long after the new leader is writable a client reaches it on the VIP.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { sleep } from '../../src/lib/proc.js';
import { pgkeelBin } from '../helpers/cluster.js';
import { NODES, startHostCluster, type HostCluster } from '../hosts/cluster.js';
import { available } from '../hosts/net.js';

const why = available();

/** The nodes whose namespace has the VIP on an interface now. */
function holders(c: HostCluster): string[] {
  return NODES.filter((n) =>
    execFileSync('ip', [...c.net.exec(n).slice(1), 'ip', '-o', '-4', 'addr'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.includes(` inet ${c.vip}/`)),
  );
}

/** Which node answers on the VIP as a writable primary (cluster_name), or null. */
async function onVip(c: HostCluster, timeoutMs = 500): Promise<string | null> {
  const client = new pg.Client({
    host: c.vip as string,
    port: 5432,
    user: 'postgres',
    password: c.password,
    database: 'postgres',
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const r = await client.query(
      "SELECT current_setting('cluster_name') AS n, pg_is_in_recovery() AS r, host(inet_server_addr()) AS a",
    );
    const row = r.rows[0] as { n: string; r: boolean; a: string };
    return !row.r && row.a === c.vip ? row.n : null;
  } catch {
    return null;
  } finally {
    void client.end().catch(() => {});
  }
}

async function writable(c: HostCluster, node: string): Promise<boolean> {
  const rows = await c.query(node, 'SELECT pg_is_in_recovery() AS r', [], 500).catch(() => null);
  return rows?.[0]?.['r'] === false;
}

async function until<T>(what: string, fn: () => Promise<T | null | false> | T | null | false, ms: number): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(20);
  }
  throw new Error(`never happened within ${ms} ms: ${what}`);
}

/**
 * Waits for one of `nodes` to answer as writable on its own address, then for a client to get it on the VIP:
 * returns that node and the ms between the two.
 */
async function vipDelayAfterWritable(
  c: HostCluster,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<{ node: string; ms: number }> {
  const node = await until(
    `one of ${nodes.join(', ')} writable`,
    async () => {
      for (const n of nodes) if (await writable(c, n)) return n;
      return null;
    },
    timeoutMs,
  );
  // A connection attempt made while the VIP still points at the old host hangs until its timeout: start a fresh
  // attempt every 20 ms, so the figure is when the VIP became usable, not when a stuck attempt gave up.
  const t0 = Date.now();
  const end = t0 + timeoutMs;
  const attempts: Promise<void>[] = [];
  let reachedAt = 0;
  while (!reachedAt && Date.now() < end) {
    attempts.push(
      onVip(c, 1000).then((n) => {
        if (n === node && !reachedAt) reachedAt = Date.now();
      }),
    );
    await sleep(20);
  }
  await Promise.all(attempts);
  if (!reachedAt) throw new Error(`never happened within ${timeoutMs} ms: ${node} on the VIP`);
  return { node, ms: reachedAt - t0 };
}

describe('the built-in VIP on namespace hosts', { skip: why ?? false }, () => {
  let c: HostCluster;
  before(async () => {
    c = await startHostCluster({ vip: true });
    await c.waitHealthy();
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it("only the leader's namespace holds the VIP; a client in the root namespace reaches the leader on it", async () => {
    const leader = await c.waitHealthy();
    await until('the VIP on the leader only', () => holders(c).join() === leader, 10_000);
    assert.equal(await until('a client on the VIP', () => onVip(c, 2000), 10_000), leader);
  });

  it('switchover: the VIP answers from the new leader and the old namespace no longer holds it', async () => {
    const old = await c.waitHealthy();
    const candidate = NODES.find((n) => n !== old) as string;
    // waitHealthy sees the replicas stream; ctl also wants the candidate's agent to report it running.
    await until(
      'the candidate running',
      async () => (await c.dcs()).members.get(candidate)?.record.state === 'running',
      30_000,
    );
    const ctl = spawn(
      process.execPath,
      [pgkeelBin, 'ctl', '-c', join(c.dir, old, 'node.yml'), 'switchover', '--candidate', candidate, '--force'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    ctl.stdout.on('data', (d: Buffer) => (output += d.toString()));
    ctl.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => ctl.on('exit', r));
    void exited.then((code) => {
      if (code !== 0) console.log(`# vip: ctl switchover exited with ${code}: ${output}`);
    });
    const { ms } = await vipDelayAfterWritable(c, [candidate], 60_000);
    assert.equal(await exited, 0, `ctl switchover: ${output}`);
    await until('the VIP on the new leader only', () => holders(c).join() === candidate, 5000);
    console.log(
      `# vip: switchover ${old} -> ${candidate}: a client reaches the new leader on the VIP ${ms} ms after it is writable`,
    );
  });

  it("kill -9 of the leader's agent and postmaster: the old namespace drops the VIP at once, the new leader takes it", async () => {
    const old = await c.waitHealthy();
    await until('the VIP on the leader', () => holders(c).join() === old, 10_000);
    const killedAt = Date.now();
    c.killNode(old);
    await until('the VIP gone from the killed node', () => !holders(c).includes(old), 5000);
    const dropMs = Date.now() - killedAt;
    const { node: leader, ms } = await vipDelayAfterWritable(
      c,
      NODES.filter((n) => n !== old),
      90_000,
    );
    assert.equal(await c.waitForLeader(10_000, old), leader);
    assert.deepEqual(holders(c), [leader]);
    console.log(
      `# vip: kill -9 of ${old}: the guard removed the VIP after ${dropMs} ms; ${leader} leads and a client reaches it on the VIP ${ms} ms after it is writable`,
    );
  });
});
