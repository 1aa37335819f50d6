/**
 * Repeated failovers on namespace hosts (test/hosts/), for issue 9's acceptance figures: how long a client of the
 * proxy waits when the leader's host vanishes or its processes are killed, whether any write reached a read-only
 * member (SQLSTATE 25006), and whether two nodes were ever writable in one 100 ms round. A measurement, not a test:
 * it prints one line per trial and a summary, and never fails on a timing.
 *
 *   node dist/bench/failover/hosts-trials.js [--trials N] [--kinds vanish,kill]
 *
 * `vanish`: the leader's link goes down (nothing refuses) and comes back after the new leader is writable.
 * `kill`: the leader's agent and postmaster are SIGKILLed (the host stays; its ports refuse).
 * Runs under the /tmp/pgkeel-heavy.lock flock when started through `flock`; needs root (namespaces).
 */
import { sleep } from '../../src/lib/proc.js';
import { ProxyWriter, SplitBrainChecker } from '../../test/hosts/checker.js';
import { NODES, startHostCluster, type HostCluster } from '../../test/hosts/cluster.js';
import { available } from '../../test/hosts/net.js';

type Kind = 'vanish' | 'kill';

interface Trial {
  kind: Kind;
  from: string;
  to: string;
  writableAfterMs: number;
  clientWaitMs: number;
  errors: Record<string, number>;
  splitBrainRounds: number;
  lostAcked: number;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

async function trial(c: HostCluster, kind: Kind): Promise<Trial> {
  const from = await c.waitHealthy(180_000);
  const checker = new SplitBrainChecker(NODES, c.pgAddr, c.password);
  await checker.start((sql) => c.query(from, sql));
  const [host, port] = c.proxy.rwAddress.split(':') as [string, string];
  const writer = new ProxyWriter({ host, port: Number(port) });
  await writer.start();
  await sleep(1500);
  const t0 = Date.now();
  if (kind === 'vanish') c.net.linkDown(from);
  else c.killNode(from);
  const to = await c.waitForLeader(90_000, from);
  const writableAfterMs = Date.now() - t0;
  const n = writer.acked.length;
  for (let i = 0; i < 300 && writer.acked.length <= n + 5; i++) await sleep(100);
  await writer.stop();
  await checker.stop();
  const lostAcked = await writer.lostOn((sql, params) => c.query(to, sql, params));
  if (kind === 'vanish') c.net.linkUp(from);
  else await c.restartAgent(from);
  return {
    kind,
    from,
    to,
    writableAfterMs,
    clientWaitMs: writer.maxGapMs,
    errors: Object.fromEntries(writer.errors),
    splitBrainRounds: checker.splitBrainRounds().length,
    lostAcked,
  };
}

async function main(): Promise<void> {
  const why = available();
  if (why) throw new Error(`cannot run: ${why}`);
  const trials = Number(arg('trials', '5'));
  const kinds = arg('kinds', 'vanish,kill').split(',') as Kind[];
  const c = await startHostCluster();
  const results: Trial[] = [];
  try {
    await c.waitHealthy(180_000);
    for (let i = 0; i < trials; i++) {
      for (const k of kinds) {
        const t = await trial(c, k);
        results.push(t);
        console.log(
          `${k.padEnd(6)} ${t.from}→${t.to}  writable after ${t.writableAfterMs} ms  client waited ${t.clientWaitMs} ms  errors ${JSON.stringify(t.errors)}  split-brain rounds ${t.splitBrainRounds}  acknowledged writes lost ${t.lostAcked}`,
        );
      }
    }
  } finally {
    await c[Symbol.asyncDispose]();
  }
  for (const k of kinds) {
    const rs = results.filter((r) => r.kind === k);
    const waits = rs.map((r) => r.clientWaitMs).sort((a, b) => a - b);
    const ro = rs.reduce((a, r) => a + (r.errors['25006'] ?? 0), 0);
    console.log(
      `${k}: ${rs.length} failovers, client wait median ${waits[Math.floor(waits.length / 2)]} ms, max ${waits[waits.length - 1]} ms; 25006 errors ${ro}; split-brain rounds ${rs.reduce((a, r) => a + r.splitBrainRounds, 0)}; acknowledged writes lost ${rs.reduce((a, r) => a + r.lostAcked, 0)} (in ${rs.filter((r) => r.lostAcked > 0).length} trials)`,
    );
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
