/**
 * The multi-host fault suite (issue 13 item 4) on namespace hosts: a 3-member etcd on e1–e3, an agent and
 * PostgreSQL on each of n1–n3 (synchronous_mode on, each node's directory a 1 GiB tmpfs so a disk can fill), the
 * proxy and the clients in the root namespace. Every scenario of test/hosts/faults.ts runs once, under a checker
 * writing to every node directly every 100 ms and two clients writing every 20 ms (through the proxy, and through
 * libpq's multi-host failover).
 *
 * For each: given a healthy cluster, when the fault is injected and later healed, then
 * - no 100 ms round saw two nodes acknowledge a write;
 * - the proxy never sent a write to a read-only node (SQLSTATE 25006);
 * - no acknowledged write of either client is missing on the leader afterwards (synchronous mode);
 * - another node took over where the scenario demands it, the leader stayed where it must;
 * - the cluster healed by itself: one leader, both replicas streaming.
 * The timings are printed (`# fault: …`), never asserted. `PGKEEL_FAULTS=a,b` runs only the named scenarios.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHostCluster, type HostCluster } from '../hosts/cluster.js';
import { problems, runTrial, SCENARIOS, type ScenarioName } from '../hosts/faults.js';
import { available } from '../hosts/net.js';

const why = available();
const only = process.env['PGKEEL_FAULTS']?.split(',').filter(Boolean);
const chosen = SCENARIOS.filter((s) => !only || only.includes(s));

describe('multi-host faults on namespace hosts (synchronous mode)', { skip: why ?? false }, () => {
  let c: HostCluster;
  before(async () => {
    c = await startHostCluster({ sync: true, diskMb: 1024 });
    await c.waitHealthy();
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  for (const name of chosen) {
    it(name, async () => {
      const t = await runTrial(c, name as ScenarioName);
      console.log(
        `# fault: ${name}: ${t.from} → ${t.during} → ${t.after}${t.newLeaderMs !== null ? `; new leader writable after ${t.newLeaderMs} ms` : ''}; longest wait proxy ${t.proxyOutageMs} ms, libpq ${t.libpqOutageMs} ms; healed ${t.healedMs} ms after the heal; acked ${t.acked}, lost ${t.lostAcked}; split-brain rounds ${t.splitBrainRounds}; proxy errors ${JSON.stringify(t.proxyErrors)}; libpq errors ${JSON.stringify(t.libpqErrors)}${t.notes.length ? `; ${t.notes.join('; ')}` : ''}`,
      );
      assert.deepEqual(problems(t, true), []);
      assert.ok(t.acked > 0, 'the clients wrote');
    });
  }
});
