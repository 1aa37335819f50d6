/**
 * The proxy registry: a proxy that follows a cluster in etcd and serves metrics_listen announces itself under
 * `/<namespace>/<scope>/proxies/<id>` (id: its listen address with ':' replaced by '_'), so the agents' dashboard
 * finds every proxy's /stats. The key lives on the proxy's own lease, renewed every third of its TTL: a proxy that
 * dies drops out when the lease expires; a clean stop revokes the lease, so the key goes at once. Not a Patroni key:
 * Patroni tools ignore it.
 *
 * The value is a contract (docs/proxy.md, "Registry"): `{id, listen, ro_listen?, metrics_url, stats_url, version,
 * started}`.
 */
import { hostname } from 'node:os';
import type { LeaseId, Store } from '../dcs/store.js';
import type { Logger } from '../lib/log.js';
import { formatHostPort, parseHostPort } from '../lib/net.js';

export const REGISTRY_TTL_S = 30;

export interface ProxyRecord {
  readonly id: string;
  readonly listen: string;
  readonly ro_listen?: string;
  readonly metrics_url: string;
  readonly stats_url: string;
  readonly version: string;
  /** ISO-8601 UTC. */
  readonly started: string;
}

export interface ProxyAddresses {
  /** Bound addresses ("host:port"), as RunningProxy reports them. */
  readonly rw: string;
  readonly ro: string | null;
  readonly metrics: string;
}

/** `/<namespace>/<scope>/proxies/` */
export function proxiesPrefix(scope: string, namespace: string): string {
  return `/${namespace}/${scope}/proxies/`.replace(/\/+/g, '/');
}

export function proxyId(listen: string): string {
  return listen.replace(/:/g, '_');
}

/** A wildcard bind address is not something to connect to: the URL names this host instead. */
function reachable(addr: string, host: () => string): string {
  const { host: h, port } = parseHostPort(addr);
  return ['0.0.0.0', '::', '*', ''].includes(h) ? formatHostPort(host(), port) : formatHostPort(h, port);
}

export function proxyRecord(
  a: ProxyAddresses,
  version: string,
  started: Date,
  host: () => string = hostname,
): ProxyRecord {
  const m = reachable(a.metrics, host);
  return {
    id: proxyId(a.rw),
    listen: a.rw,
    ...(a.ro ? { ro_listen: a.ro } : {}),
    metrics_url: `http://${m}/metrics`,
    stats_url: `http://${m}/stats`,
    version,
    started: started.toISOString(),
  };
}

export interface Registration {
  readonly key: string;
  /** Stops renewing and revokes the lease (the key disappears). Never throws. */
  stop(): Promise<void>;
}

/** Where the proxy's cluster lives in the DCS. */
export interface DcsScope {
  readonly store: Store;
  readonly scope: string;
  readonly namespace: string;
}

export interface RegisterOptions extends DcsScope {
  readonly record: ProxyRecord;
  readonly log: Logger;
  readonly ttlSeconds?: number;
}

/**
 * Writes the key and keeps it alive. A DCS that is down at start or later does not stop the proxy: the key is
 * (re)written on the next renewal round that reaches it, with a new lease when the old one expired meanwhile.
 */
export async function registerProxy(o: RegisterOptions): Promise<Registration> {
  const ttl = o.ttlSeconds ?? REGISTRY_TTL_S;
  const key = proxiesPrefix(o.scope, o.namespace) + o.record.id;
  const value = JSON.stringify(o.record);
  let lease: LeaseId | null = null;
  let stopped = false;
  let round: Promise<void> = Promise.resolve();
  let warned = false;

  const renew = async (): Promise<void> => {
    try {
      if (lease !== null && (await o.store.keepAlive(lease))) return;
      const fresh = await o.store.grantLease(ttl);
      await o.store.put(key, value, { lease: fresh });
      lease = fresh;
      o.log.info('proxy registered in the DCS', { key });
      warned = false;
    } catch (err) {
      if (!warned) o.log.warn('proxy registry: DCS unavailable; retrying', { key, err: (err as Error).message });
      warned = true;
    }
  };

  await renew();
  const timer = setInterval(
    () => {
      round = round.then(renew);
    },
    Math.max(1000, (ttl * 1000) / 3),
  );
  timer.unref();
  return {
    key,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await round;
      if (lease !== null) await o.store.revokeLease(lease).catch(() => {});
    },
  };
}
