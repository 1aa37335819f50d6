/** `pgkeel agent -c node.yml`: one node's agent — HA loop, REST API — in the foreground until SIGTERM/SIGINT. */
import { loadConfig } from '../config/load.js';
import { EtcdStore } from '../dcs/etcd.js';
import { clusterKeys } from '../dcs/layout.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import { Agent } from '../ha/agent.js';
import { ApiServer } from '../api/server.js';
import { actionHandlers } from '../api/actions.js';
import { createLogger, stdioWriter } from '../lib/log.js';
import { assertConfigSecure } from '../lib/ownership.js';
import { secureOwnNodeFolder } from '../local/secure.js';
import { postgresIdentity } from '../lib/proc.js';
import { blockedAncestor, identityOf } from '../lib/reach.js';
import { ConfigError } from '../config/schema.js';
import { PgMetrics, socketConnect } from '../observe/pg-metrics/pg-metrics.js';
import { DrillHooks } from '../ha/drill.js';
import { withConflictMetrics } from '../mesh/conflicts-collect.js';

/** As root, PostgreSQL runs as `postgres`: refuse at once when that user cannot reach the data directory. */
function checkReachable(dataDir: string): void {
  if (!postgresIdentity()) return;
  const blocked = blockedAncestor(dataDir, identityOf('postgres'));
  if (blocked === null) return;
  throw new ConfigError(
    [
      {
        path: 'postgresql.data_dir',
        message: `the "postgres" OS user cannot enter ${blocked} (on the way to ${dataDir}), so PostgreSQL could not use its data directory; allow it (chmod o+x ${blocked}, or a group postgres is in) or choose a data_dir outside it`,
      },
    ],
    'pre-flight',
  );
}

export async function runAgent(configFile: string, format?: 'json' | 'text'): Promise<number> {
  const repaired = secureOwnNodeFolder(configFile);
  assertConfigSecure(configFile);
  const cfg = loadConfig(configFile);
  checkReachable(cfg.postgresql.data_dir);
  const log = createLogger(
    { level: cfg.log.level, format: format ?? cfg.log.format, write: stdioWriter(process.stdout, 1) },
    { component: 'agent', node: cfg.name },
  );
  for (const line of repaired) log.warn(`repaired a node folder made by an older pgkeel: ${line}`);
  const etcd = new EtcdStore(etcdStoreOptions(cfg.etcd3, cfg.bootstrap.dcs.retry_timeout * 1000, 'etcd3', configFile));
  // POST /drill's faults act here, at the I/O edge (src/ha/drill.ts); the endpoint refuses them unless allowed.
  const drills = new DrillHooks(Date.now);
  const store = drills.wrap(etcd);
  const agent = new Agent(cfg, store, log, Date.now, drills);
  const pgMetrics = new PgMetrics(
    cfg.metrics,
    socketConnect(cfg),
    { scope: cfg.scope, name: cfg.name },
    Date.now,
    log.child({ component: 'pg-metrics' }),
  );
  const deps = {
    agent,
    store,
    keys: clusterKeys(cfg.scope, cfg.namespace),
    cfg,
    now: Date.now,
    // mesh conflicts (issue 14): pgkeel_mesh_conflicts_total follows PostgreSQL's series on /metrics
    pgMetrics: withConflictMetrics(pgMetrics, agent.meshConflicts, { scope: cfg.scope, name: cfg.name }),
  };
  const api = new ApiServer(deps, log.child({ component: 'api' }), actionHandlers(log));
  await api.listen();
  log.info(`REST API listening on ${cfg.restapi.listen}`);
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.warn(`second ${sig}: exiting without a clean handover`);
      process.exit(1);
    }
    log.info(`${sig} received: stopping (a leader hands over first)`);
    agent.requestStop();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    await agent.run();
  } finally {
    await api.close();
    pgMetrics.close();
    await store.close();
  }
  return 0;
}
