/**
 * Topology sources: a static one (--primary/--replica) and one that follows a Patroni-layout cluster in etcd by
 * watch (not polling), so a leader change reaches the proxy as soon as etcd delivers the event.
 *
 * The DCS source keeps the last snapshot of the scope's keys, applies watch events to it and re-derives the
 * routing view (`topologyFromCluster`, pure). When the watch breaks it re-reads and re-watches with a capped backoff;
 * meanwhile the last known topology stays in force (the proxy never guesses a leader).
 *
 * A watch whose etcd member vanished (host down: no reset) stays silent until TCP keepalive gives up, about 15 s —
 * long after a failover. So once a second the source also reads the leader key through whichever member answers;
 * when it names someone else than the watch said, twice 300 ms apart (an event still in flight is not a dead
 * watch), the watch is replaced by a fresh read and watch.
 */
import { clusterKeys, parseCluster, type ClusterKeys } from '../../dcs/layout.js';
import type { KeyValue, Store, WatchHandle } from '../../dcs/store.js';
import type { Logger } from '../../lib/log.js';
import { type Topology, topologyFromCluster } from './router.js';

export interface TopologySource {
  readonly current: Topology;
  /** Resolves once a first topology is known (immediately for a static one). */
  start(onChange: (t: Topology) => void): Promise<void>;
  close(): Promise<void>;
}

export class StaticTopologySource implements TopologySource {
  constructor(readonly current: Topology) {}

  async start(): Promise<void> {}

  async close(): Promise<void> {}
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;
const CHECK_MS = 1000;
const RECHECK_MS = 300;

export class DcsTopologySource implements TopologySource {
  current: Topology = { leader: null, replicas: [], switching: true, reason: 'DCS not read yet' };
  private readonly keys: ClusterKeys;
  private readonly kvs = new Map<string, KeyValue>();
  private revision = 0;
  private watch: WatchHandle | null = null;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private onChange: (t: Topology) => void = () => {};
  private checkTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly store: Store,
    scope: string,
    namespace: string,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.keys = clusterKeys(scope, namespace);
  }

  /** Reads the cluster once; if the DCS is unreachable the proxy starts anyway (clients wait) and retries. */
  async start(onChange: (t: Topology) => void): Promise<void> {
    this.onChange = onChange;
    try {
      await this.resync();
    } catch (err) {
      this.log.warn('DCS unavailable at start; retrying', { err: (err as Error).message });
      this.scheduleResync();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    const w = this.watch;
    this.watch = null;
    await w?.close();
  }

  /** Reads the whole scope, then watches from the next revision. Throws only from the first call (start). */
  private async resync(): Promise<void> {
    const snap = await this.store.getPrefix(this.keys.prefix);
    if (this.closed) return;
    this.kvs.clear();
    for (const kv of snap.kvs) this.kvs.set(kv.key, kv);
    this.revision = snap.revision;
    this.publish();
    this.retryMs = RETRY_MIN_MS;
    this.watch = this.store.watchPrefix(this.keys.prefix, snap.revision + 1, {
      onEvents: (events, revision) => {
        for (const e of events) {
          if (e.type === 'put') this.kvs.set(e.kv.key, e.kv);
          else this.kvs.delete(e.key);
        }
        this.revision = Math.max(this.revision, revision);
        this.publish();
      },
      onError: (err) => {
        if (this.closed) return;
        this.log.warn('DCS watch broke; re-reading the cluster', { err: err.message });
        this.watch = null;
        this.scheduleResync();
      },
    });
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.closed || this.checkTimer) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = null;
      void this.checkWatch().finally(() => this.scheduleCheck());
    }, CHECK_MS);
  }

  /** Replaces the watch when the leader key in etcd differs from the watched copy twice in a row. */
  private async checkWatch(): Promise<void> {
    const differs = async (): Promise<boolean> => {
      const kv = await this.store.get(this.keys.leader);
      return (kv?.value ?? '') !== (this.kvs.get(this.keys.leader)?.value ?? '');
    };
    try {
      if (!this.watch || !(await differs())) return;
      await new Promise((r) => setTimeout(r, RECHECK_MS));
      if (this.closed || !this.watch || !(await differs())) return;
    } catch {
      return; // etcd unreachable: the watch's own error handling applies
    }
    this.log.warn('DCS watch is silent although the leader key changed; re-reading the cluster');
    const w = this.watch;
    this.watch = null;
    await w?.close();
    await this.resync().catch((err: Error) => {
      this.log.warn('DCS unavailable; keeping the last topology', { err: err.message, retry_ms: this.retryMs });
      this.scheduleResync();
    });
  }

  private scheduleResync(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.resync().catch((err: Error) => {
        this.log.warn('DCS unavailable; keeping the last topology', { err: err.message, retry_ms: this.retryMs });
        this.scheduleResync();
      });
    }, delay);
  }

  private publish(): void {
    const cluster = parseCluster(this.keys, { revision: this.revision, kvs: [...this.kvs.values()] });
    const t = topologyFromCluster(cluster, this.now());
    const prev = this.current;
    this.current = t;
    if (prev.reason !== t.reason || prev.leader?.name !== t.leader?.name || !sameReplicas(prev, t)) this.onChange(t);
  }
}

function sameReplicas(a: Topology, b: Topology): boolean {
  if (a.replicas.length !== b.replicas.length) return false;
  return a.replicas.every((r, i) => {
    const o = b.replicas[i];
    return (
      o !== undefined &&
      o.name === r.name &&
      o.host === r.host &&
      o.port === r.port &&
      o.lagBytes === r.lagBytes &&
      o.noloadbalance === r.noloadbalance
    );
  });
}
