/**
 * `workers: N` (N > 1): this process supervises N worker processes (node:cluster). Each worker runs a whole proxy
 * with its share of the pool limits (workers-config.ts); the listeners are shared through the cluster module, whose
 * round-robin scheduling (the Linux default) hands each accepted connection to the next worker. The supervisor holds
 * no client connection: it relays what spans workers (worker-link.ts), serves /metrics from the merged snapshots of
 * all workers, restarts a worker that dies (its clients are lost; the others keep serving), and stops them all on
 * shutdown.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Server as HttpServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../lib/log.js';
import { type AdminSnapshot, mergeAdmin } from '../admin/admin-merge.js';
import { listenAddress, loadProxyConfig, type ProxyConfig } from '../config.js';
import { startMetricsServer } from '../metrics.js';
import { EtcdStore } from '../../dcs/etcd.js';
import { etcdStoreOptions } from '../../config/etcd-section.js';
import { PROXY_VERSION } from '../admin/admin-data.js';
import { proxyRecord, type Registration, registerProxy } from '../registry.js';
import type { RunningProxy } from '../proxy.js';
import type { FromWorker, ToWorker, WorkerSpec } from './worker-link.js';
import { workerOfPid } from './workers-config.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
const RESTART_DELAY_MS = 1000;
const KILL_AFTER_MS = 5000;
const SNAPSHOT_TIMEOUT_MS = 4000;

export interface WorkersOptions {
  readonly log: Logger;
  readonly configFile?: string;
  readonly workerLog: WorkerSpec['log'];
}

/** Running workers plus a supervisor-side RunningProxy. */
export interface RunningWorkers extends RunningProxy {
  /** Process ids of the running workers (tests, status). */
  workerPids(): number[];
}

class Supervisor {
  private readonly workers: (Worker | null)[];
  private stopping = false;
  private nextId = 1;
  private readonly pendingSnaps = new Map<
    number,
    { snaps: Map<number, AdminSnapshot>; done: (s: AdminSnapshot[]) => void; timer: NodeJS.Timeout }
  >();
  private metrics: HttpServer | null = null;
  /** The supervisor announces the proxy (registry.ts); its workers serve no metrics_listen, so they do not. */
  private registration: { reg: Registration; store: EtcdStore } | null = null;
  private stopped!: () => void;
  readonly done = new Promise<void>((r) => (this.stopped = r));
  private stopPromise: Promise<void> | null = null;

  constructor(
    private config: ProxyConfig,
    private readonly opts: WorkersOptions,
  ) {
    this.workers = new Array<Worker | null>(config.workers).fill(null);
  }

  async start(): Promise<RunningWorkers> {
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [] });
    let listeners: { rw: string; ro: string | null };
    let metricsAddress: string | null = null;
    try {
      // Every worker binds the same shared listeners, so the first one's addresses are everyone's.
      [listeners] = (await Promise.all(this.workers.map((_, i) => this.fork(i)))) as [
        { rw: string; ro: string | null },
      ];
      if (this.config.metrics_listen) {
        const { host, port } = listenAddress(this.config.metrics_listen);
        const m = await startMetricsServer(host, port, async () => mergeAdmin(await this.collect()));
        this.metrics = m.server;
        metricsAddress = m.address;
        await this.register(listeners, m.address);
      }
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    this.opts.log.info('proxy workers running', { workers: this.workers.length, pids: this.workerPids() });
    return {
      rwAddress: listeners.rw,
      roAddress: listeners.ro,
      metricsAddress,
      shutdown: () => this.stop(this.config.shutdown_timeout * 1000),
      close: () => this.stop(0),
      reload: () => this.reload(),
      done: this.done,
      workerPids: () => this.workerPids(),
    };
  }

  private async register(l: { rw: string; ro: string | null }, metrics: string): Promise<void> {
    const etcd = this.config.etcd;
    if (!etcd) return;
    const from = this.opts.configFile ?? 'the proxy config';
    const store = new EtcdStore(etcdStoreOptions(etcd, etcd.request_timeout, 'etcd', from));
    const record = proxyRecord({ ...l, metrics }, PROXY_VERSION, new Date());
    const reg = await registerProxy({
      store,
      scope: etcd.scope,
      namespace: etcd.namespace,
      record,
      log: this.opts.log,
    });
    this.registration = { reg, store };
  }

  workerPids(): number[] {
    return this.workers.flatMap((w) => (w?.process.pid !== undefined && !w.isDead() ? [w.process.pid] : []));
  }

  /** Forks worker `index`; resolves with its listener addresses once it serves. */
  private fork(index: number): Promise<{ rw: string; ro: string | null }> {
    const spec: WorkerSpec = {
      index,
      count: this.workers.length,
      config: this.config,
      log: this.opts.workerLog,
      ...(this.opts.configFile ? { configFile: this.opts.configFile } : {}),
    };
    const w = cluster.fork({ PGKEEL_PROXY_WORKER: JSON.stringify(spec) });
    this.workers[index] = w;
    return new Promise((resolve, reject) => {
      let started = false;
      w.on('message', (m: FromWorker) => {
        if (m.t === 'ready' && !started) {
          started = true;
          resolve({ rw: m.rw, ro: m.ro });
        } else if (m.t === 'failed' && !started) {
          started = true;
          reject(new Error(`proxy worker ${index}: ${m.message}`));
        } else this.onMessage(index, m);
      });
      w.on('exit', (code, signal) => {
        if (this.workers[index] === w) this.workers[index] = null;
        if (!started) {
          started = true;
          reject(new Error(`proxy worker ${index} exited during start-up (${signal ?? `code ${code}`})`));
          return;
        }
        if (this.stopping) return;
        this.opts.log.error('proxy worker died; restarting it (its clients were disconnected)', {
          worker: index,
          code,
          signal,
        });
        setTimeout(() => {
          if (!this.stopping)
            this.fork(index).catch((err: Error) =>
              this.opts.log.error('proxy worker restart failed', { worker: index, err: err.message }),
            );
        }, RESTART_DELAY_MS).unref();
      });
    });
  }

  private send(index: number, m: ToWorker): void {
    const w = this.workers[index];
    if (w && !w.isDead() && w.isConnected()) w.send(m);
  }

  private broadcast(m: ToWorker): void {
    for (let i = 0; i < this.workers.length; i++) this.send(i, m);
  }

  private onMessage(from: number, m: FromWorker): void {
    switch (m.t) {
      case 'cancel':
        this.send(workerOfPid(m.pid), m);
        return;
      case 'gather':
        void this.collect().then((snaps) => this.send(from, { t: 'gathered', id: m.id, snaps }));
        return;
      case 'snapshot-reply': {
        const p = this.pendingSnaps.get(m.id);
        if (!p) return;
        p.snaps.set(from, m.snap);
        if (p.snaps.size >= this.liveCount()) this.finishCollect(m.id);
        return;
      }
      case 'action':
        this.broadcast(m);
        return;
      case 'shutdown':
        void this.stop(this.config.shutdown_timeout * 1000);
        return;
      default:
        return;
    }
  }

  private liveCount(): number {
    return this.workers.filter((w) => w && !w.isDead() && w.isConnected()).length;
  }

  /** Every live worker's snapshot, in worker order (those that do not answer in time are left out). */
  private collect(): Promise<AdminSnapshot[]> {
    const id = this.nextId++;
    return new Promise((done) => {
      const timer = setTimeout(() => this.finishCollect(id), SNAPSHOT_TIMEOUT_MS);
      this.pendingSnaps.set(id, { snaps: new Map(), done, timer });
      this.broadcast({ t: 'snapshot', id });
      if (this.liveCount() === 0) this.finishCollect(id);
    });
  }

  private finishCollect(id: number): void {
    const p = this.pendingSnaps.get(id);
    if (!p) return;
    this.pendingSnaps.delete(id);
    clearTimeout(p.timer);
    p.done([...p.snaps.entries()].sort(([a], [b]) => a - b).map(([, s]) => s));
  }

  /** Validates the config file here first (so an invalid one is reported to the caller), then every worker reloads. */
  private reload(): void {
    if (this.opts.configFile) {
      const next = loadProxyConfig(this.opts.configFile);
      if (next.workers !== this.config.workers)
        this.opts.log.warn('RELOAD: workers changed; it takes effect at the next restart');
      this.config = { ...next, workers: this.config.workers };
    }
    this.broadcast({ t: 'action', verb: 'reload', arg: null });
  }

  stop(timeoutMs: number): Promise<void> {
    this.stopPromise ??= this.doStop(timeoutMs);
    return this.stopPromise;
  }

  private async doStop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.registration) {
      await this.registration.reg.stop();
      await this.registration.store.close();
    }
    const live = this.workers.filter((w): w is Worker => w !== null && !w.isDead());
    const exited = Promise.all(
      live.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r())))),
    );
    this.broadcast({ t: 'shutdown', timeoutMs });
    const killer = setTimeout(() => {
      for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
    }, timeoutMs + KILL_AFTER_MS);
    await exited;
    clearTimeout(killer);
    if (this.metrics) {
      this.metrics.closeAllConnections();
      await new Promise<void>((r) => this.metrics?.close(() => r()));
    }
    this.opts.log.info('proxy workers stopped');
    this.stopped();
  }
}

/** Starts `config.workers` worker processes sharing the listeners; see the file comment. */
export function startProxyWorkers(config: ProxyConfig, opts: WorkersOptions): Promise<RunningWorkers> {
  return new Supervisor(config, opts).start();
}
