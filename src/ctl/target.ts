/**
 * Which cluster `pgkeel ctl` talks to: from a node config (`-c node.yml`: scope, namespace, etcd3.hosts,
 * restapi.authentication — the same file the agent runs with) or from a local cluster directory made by
 * `pgkeel up` (`--dir DIR`, default ./pgkeel-data).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadConfig } from '../config/load.js';
import { paths, readLocalCluster, LocalClusterError } from '../local/layout.js';
import { localEtcdSection } from '../local/etcd-client.js';
import type { EtcdSecurity } from '../config/etcd-section.js';

export interface CtlTarget {
  readonly scope: string;
  readonly namespace: string;
  readonly hosts: readonly string[];
  /** https, CA, client certificate and etcd user (the node config's `etcd3` section). */
  readonly etcd: EtcdSecurity;
  /** Basic auth for the members' unsafe REST endpoints. */
  readonly auth: { readonly username: string; readonly password: string } | undefined;
  /** Where this came from, for messages. */
  readonly source: string;
}

export function targetFromConfig(file: string, env: NodeJS.ProcessEnv = process.env): CtlTarget {
  const cfg = loadConfig(file, env);
  const a = cfg.restapi.authentication;
  return {
    scope: cfg.scope,
    namespace: cfg.namespace,
    hosts: cfg.etcd3.hosts,
    etcd: cfg.etcd3,
    auth: a?.username ? { username: a.username, password: a.password ?? '' } : undefined,
    source: file,
  };
}

/** The REST credentials of a local cluster's first node config, if it sets any. */
function localAuth(dir: string, node: string): CtlTarget['auth'] {
  const file = paths.nodeConfig(dir, node);
  if (!existsSync(file)) return undefined;
  const doc = parse(readFileSync(file, 'utf8')) as { restapi?: { authentication?: { username?: unknown; password?: unknown } } } | null;
  const a = doc?.restapi?.authentication;
  return typeof a?.username === 'string' ? { username: a.username, password: typeof a.password === 'string' ? a.password : '' } : undefined;
}

export function targetFromDir(dir: string): CtlTarget {
  const lc = readLocalCluster(dir);
  if (!lc) throw new LocalClusterError(`no pgkeel cluster in ${dir} (no cluster.json); start one with \`pgkeel up --dir ${dir}\` or point at a node config with -c node.yml`);
  const first = lc.nodes[0]?.name;
  return {
    scope: lc.scope,
    namespace: 'service',
    hosts: [`${lc.host}:${lc.etcd.clientPort}`],
    etcd: localEtcdSection(lc),
    auth: first ? localAuth(lc.dir, first) : undefined,
    source: lc.dir,
  };
}
