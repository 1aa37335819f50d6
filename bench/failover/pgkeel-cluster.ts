/**
 * A pgkeel cluster for the benchmark: the integration-test fixture (`pgkeel up --detach` on a free port range in a
 * temp dir, torn down by pid) with pgkeel's defaults untouched — ttl 10, loop_wait 1, retry_timeout 3.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type TestCluster } from '../../test/helpers/cluster.js';
import { agentPid, patchDcsConfig, postmasterPid, superuserPassword } from '../../test/helpers/scenario.js';
import { statusRef, type BenchCluster } from './cluster.js';

export async function startPgkeel(): Promise<BenchCluster> {
  const c: TestCluster = await startCluster({ name: 'bench-failover' });
  try {
    const r = await c.up();
    if (r.code !== 0)
      throw new Error(`pgkeel up failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  } catch (err) {
    await c[Symbol.asyncDispose]();
    throw err;
  }
  const P = c.portBase;
  return {
    system: 'pgkeel',
    timers: { ttl: 10, loop_wait: 1, retry_timeout: 3 },
    nodes: [1, 2, 3].map((i) => ({ name: `node${i}`, pgPort: P + 10 + i, apiPort: P + 20 + i })),
    user: 'postgres',
    password: superuserPassword(c),
    dir: c.dir,
    dcs: { etcd: `127.0.0.1:${P}`, scope: 'pgkeel', passfile: join(c.dir, 'pgpass') },
    agentPid: (node) => agentPid(c, node),
    postmasterPid: (node) => postmasterPid(c, node),
    async restartStopped() {
      // `up` starts only what is not running and waits until the cluster is healthy.
      const r = await c.up();
      if (r.code !== 0)
        throw new Error(
          `pgkeel up (restart) failed (exit ${r.code}):\n${r.stdout.slice(-1500)}\n${r.stderr.slice(-1500)}`,
        );
    },
    async patchConfig(patch) {
      await patchDcsConfig(
        statusRef({ etcd: `127.0.0.1:${P}`, scope: 'pgkeel', passfile: join(c.dir, 'pgpass') }),
        patch,
      );
    },
    logTail(node, lines = 40) {
      try {
        return readFileSync(join(c.dir, node, 'agent.log'), 'utf8')
          .trimEnd()
          .split('\n')
          .slice(-lines)
          .join('\n');
      } catch {
        return '(no agent log)';
      }
    },
    [Symbol.asyncDispose]: () => c[Symbol.asyncDispose](),
  };
}
