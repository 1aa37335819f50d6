/**
 * The client side of `pgkeel ctl`, like patronictl: it reads the DCS directly (one range read of the scope's
 * prefix) and acts through a member's REST API, found from the `api_url` in its member record.
 */
import { clusterKeys, parseCluster, type Cluster, type Member } from '../dcs/layout.js';
import { EtcdStore } from '../dcs/etcd.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import { CtlError } from './errors.js';
import type { CtlTarget } from './target.js';
import { restRequest } from '../cluster/rest-client.js';

export interface RestAnswer {
  readonly code: number;
  readonly text: string;
}

export class CtlClient implements AsyncDisposable {
  private readonly store: EtcdStore;

  constructor(
    readonly target: CtlTarget,
    dcsTimeoutMs = 5000,
  ) {
    this.store = new EtcdStore(
      etcdStoreOptions({ ...target.etcd, hosts: target.hosts }, dcsTimeoutMs, 'etcd3', target.source),
    );
  }

  /** The cluster as the DCS holds it now; refuses a scope with nothing in it. */
  async cluster(): Promise<Cluster> {
    const keys = clusterKeys(this.target.scope, this.target.namespace);
    let c: Cluster;
    try {
      c = parseCluster(keys, await this.store.getPrefix(keys.prefix));
    } catch (err) {
      throw new CtlError(
        'CTL_DCS_UNAVAILABLE',
        `cannot read the DCS at ${this.target.hosts.join(',')}: ${(err as Error).message}`,
      );
    }
    if (c.members.size === 0 && c.initialize === undefined && !c.leader) {
      throw new CtlError(
        'CTL_NO_CLUSTER',
        `no cluster "${this.target.scope}" under ${keys.prefix} in the DCS at ${this.target.hosts.join(',')}`,
      );
    }
    return c;
  }

  /** `METHOD /path` on a member's REST API (http or https, as its api_url says) with the configured basic auth and
   *  certificates; any HTTP answer resolves. */
  async rest(m: Member, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<RestAnswer> {
    let url: URL;
    try {
      url = new URL(path, m.record.api_url);
    } catch {
      throw new CtlError(
        'CTL_REST_UNREACHABLE',
        `member ${m.name} publishes no usable api_url ("${m.record.api_url}")`,
      );
    }
    try {
      const res = await restRequest(url, method, this.target.rest, body, timeoutMs);
      return { code: res.code, text: res.text };
    } catch (err) {
      const e = err as Error;
      throw new CtlError('CTL_REST_UNREACHABLE', `${method} ${url.href} on member ${m.name} failed: ${e.message}`);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.store.close();
  }
}
