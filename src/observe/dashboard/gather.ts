/**
 * The dashboard's I/O: one round of reads for `buildState` (state.ts), all in parallel with short timeouts so a
 * dead member costs at most one timeout, never the page. The DCS gives the cluster and the registered proxies;
 * each member's REST API (`api_url`, the agent's own TLS settings via rest-client.ts) its `/patroni` and
 * `/events`; the leader its `/statements`; each proxy its `stats_url`.
 */
import { type RestClientOptions, restRequest } from '../../cluster/rest-client.js';
import type { Cluster } from '../../dcs/layout.js';
import type { Fetched, ProxyRecord, RawInputs } from './state.js';

/** One member or proxy answer, at most this long. */
export const SOURCE_TIMEOUT_MS = 1500;
/** Events of the last hour (the chart's window too). */
const EVENTS_SINCE = '1h';

export interface GatherDeps {
  /** The cluster as the DCS holds it now (falls back to the last cycle's view in the caller). */
  readCluster(): Promise<Cluster>;
  /** Values of the keys under `<prefix>proxies/`. */
  readProxies(): Promise<readonly string[]>;
  readonly client: RestClientOptions;
  readonly timeoutMs?: number;
  /** The leader's `/statements` (the caller may answer from a cache: top queries need not be fresh each second). */
  readonly statements?: (url: string, read: () => Promise<Fetched>) => Promise<Fetched>;
}

/** GET a URL's JSON: ok with the body on 2xx, else the code or the error's message. */
export async function getJson(url: string, client: RestClientOptions, timeoutMs: number): Promise<Fetched> {
  try {
    const res = await restRequest(new URL(url), 'GET', client, undefined, timeoutMs);
    if (res.code < 200 || res.code >= 300) return { ok: false, code: res.code, error: `HTTP ${res.code}` };
    return { ok: true, body: JSON.parse(res.text) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** A member's REST base from its published `api_url` (`…/patroni`). */
export function apiBase(apiUrl: string): string {
  return apiUrl.replace(/\/patroni\/?$/, '').replace(/\/+$/, '');
}

/** A registered proxy's record; null when it is not the contract's JSON (id and listen at least). */
export function parseProxyRecord(text: string): ProxyRecord | null {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v?.['id'] !== 'string' || typeof v['listen'] !== 'string') return null;
    const s = (k: string) => (typeof v[k] === 'string' ? { [k]: v[k] as string } : {});
    return {
      id: v['id'],
      listen: v['listen'],
      ...s('ro_listen'),
      ...s('stats_url'),
      ...s('metrics_url'),
      ...s('version'),
      ...s('started'),
    };
  } catch {
    return null;
  }
}

export type Gathered = Pick<
  RawInputs,
  'cluster' | 'clusterError' | 'patroni' | 'events' | 'statements' | 'proxies' | 'proxyStats'
>;

/** `fallback`: the last HA cycle's cluster, used when the DCS does not answer now. */
export async function gatherSources(d: GatherDeps, fallback: Cluster | undefined): Promise<Gathered> {
  const t = d.timeoutMs ?? SOURCE_TIMEOUT_MS;
  let cluster: Cluster | undefined;
  let clusterError: string | null = null;
  const proxiesRead = d.readProxies().then(
    (values) => ({ list: values.map(parseProxyRecord).filter((p): p is ProxyRecord => p !== null), error: null }),
    (err: Error) => ({ list: [] as ProxyRecord[], error: `cannot read the proxy registry: ${err.message}` }),
  );
  const statsRead = proxiesRead.then((p) =>
    Promise.all(
      p.list
        .filter((x) => x.stats_url)
        .map(async (x) => [x.id, await getJson(x.stats_url as string, d.client, t)] as const),
    ),
  );
  try {
    cluster = await d.readCluster();
  } catch (err) {
    clusterError = (err as Error).message;
    cluster = fallback;
  }
  const readStatements = (url: string) => {
    const read = () => getJson(url, d.client, t);
    return d.statements ? d.statements(url, read) : read();
  };
  const members = [...(cluster?.members.values() ?? [])].filter((m) => m.record.api_url);
  const leaderUrl = cluster?.leader ? cluster.members.get(cluster.leader.name)?.record.api_url : undefined;
  const each = (path: string) =>
    Promise.all(
      members.map(async (m) => [m.name, await getJson(apiBase(m.record.api_url) + path, d.client, t)] as const),
    );
  const [patroni, events, statements, proxies, stats] = await Promise.all([
    each('/patroni'),
    each(`/events?since=${EVENTS_SINCE}`),
    leaderUrl ? readStatements(`${apiBase(leaderUrl)}/statements`) : Promise.resolve(null),
    proxiesRead,
    statsRead,
  ]);
  return {
    cluster,
    clusterError,
    patroni: new Map(patroni),
    events: new Map(events),
    statements,
    proxies,
    proxyStats: new Map(stats),
  };
}
