/**
 * What the admin console's queries do in a running proxy (proxy.ts). A proxy alone answers SHOW from its own data
 * and runs PAUSE/RESUME/RECONNECT/KILL/RELOAD/SHUTDOWN itself. A worker (workers: N) answers SHOW from every
 * worker's snapshot, merged (admin-merge.ts), and has every worker run the other commands through the supervisor
 * (worker-link.ts); `serveWorker` is the other side: what this worker answers when the supervisor asks.
 */
import type { Logger } from '../../lib/log.js';
import { type AdminActions, type AdminData, executeAdmin } from './admin.js';
import { mergeAdmin, snapshotAdmin } from './admin-merge.js';
import type { ClientConn } from '../session/client.js';
import { loadProxyConfig, type ProxyConfig } from '../config.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import type { PoolRegistry } from '../pool/pools.js';
import type { AdminVerb, WorkerLink } from '../workers/worker-link.js';

/** The running proxy, as its admin commands see it. */
export interface AdminHost {
  readonly config: ProxyConfig;
  /** The file `config` came from: RELOAD re-reads it. */
  readonly configFile: string | undefined;
  readonly registry: PoolRegistry;
  readonly clients: ReadonlySet<ClientConn>;
  readonly log: Logger;
  /** SHOW's data; `config`: the configuration SHOW CONFIG reports (default: the running one). */
  metricsData(config?: ProxyConfig): AdminData;
  cancel(pid: number, secret: Buffer): void;
  /** Throws ConfigError when the new configuration is invalid (nothing is applied then). */
  reload(): void;
  stop(timeoutMs: number): Promise<void>;
}

/** One admin console query → the messages answering it; with several workers a SHOW waits for every worker's snapshot. */
export function adminQuery(
  p: AdminHost,
  w: WorkerLink | null,
  c: ClientConn,
  sql: string,
): Buffer[] | Promise<Buffer[]> {
  if (!w || w.count <= 1) return executeAdmin(sql, p.metricsData(), localActions(p), c.adminReadOnly);
  const shared = sharedActions(p, w);
  if (!/^\s*show\b/i.test(sql)) return executeAdmin(sql, p.metricsData(), shared, c.adminReadOnly);
  return w.gather().then((snaps) => executeAdmin(sql, mergeAdmin(snaps), shared, c.adminReadOnly));
}

/** Admin commands run in this process. */
function localActions(p: AdminHost): AdminActions {
  const reg = p.registry;
  return {
    pause: (db) => (db ? reg.pauseDatabase(db) : reg.pauseAll()),
    resume: (db) => (db ? reg.resumeDatabase(db) : reg.resumeAll()),
    reconnect: (db) => reg.fenceAll('RECONNECT', (e) => !db || e.database === db),
    kill: (db) => {
      reg.fenceAll('KILL', (e) => e.database === db);
      for (const c of [...p.clients])
        if (c.database === db && !c.admin)
          c.fatal(new ProxyError(ProxyErrorCode.Killed, `connection killed by admin (KILL ${db})`));
    },
    reload: () => p.reload(),
    shutdown: () => void p.stop(p.config.shutdown_timeout * 1000),
  };
}

/** Admin commands as run in a worker: forwarded to every worker through the supervisor. */
function sharedActions(p: AdminHost, w: WorkerLink): AdminActions {
  return {
    pause: (db) => w.action('pause', db ?? null),
    resume: (db) => w.action('resume', db ?? null),
    reconnect: (db) => w.action('reconnect', db ?? null),
    kill: (db) => w.action('kill', db),
    // Validated here first, so an invalid file is reported to the admin client and nothing is applied.
    reload: () => {
      if (p.configFile) loadProxyConfig(p.configFile);
      w.action('reload', null);
    },
    shutdown: () => w.shutdown(),
  };
}

/** What this worker answers the supervisor: cancels, its admin snapshot, and the commands every worker runs. */
export function serveWorker(p: AdminHost, w: WorkerLink): void {
  w.serve({
    cancel: (pid, secret) => p.cancel(pid, secret),
    // SHOW CONFIG shows the configured totals, not this worker's share (the rest of the data does not read them).
    snapshot: () => snapshotAdmin(p.metricsData(w.totalConfig)),
    action: (verb: AdminVerb, arg: string | null) => {
      const a = localActions(p);
      try {
        if (verb === 'kill') a.kill(arg ?? '');
        else if (verb === 'reload') a.reload();
        else a[verb](arg ?? undefined);
      } catch (err) {
        p.log.error(`admin ${verb.toUpperCase()} failed in this worker`, { err: (err as Error).message });
      }
    },
  });
}
