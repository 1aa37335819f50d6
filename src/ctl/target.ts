/**
 * Which cluster `pgkeel ctl` talks to: from a node config (`-c node.yml`: scope, namespace, etcd3.hosts,
 * restapi.authentication and the `ctl`/`restapi` certificate keys — the same file the agent runs with) or from a
 * local cluster directory made by `pgkeel up` (`--dir DIR`, default ./pgkeel-data: its first node's config, else
 * the credentials in cluster.json); or from the DCS settings alone (`-c ctl.yml`, or `--etcd … --scope …`:
 * ctl-config.ts), for a machine that is not a member and must not hold database passwords.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { eventsFileFor } from '../observe/events/recorder.js';
import { loadConfig } from '../config/load.js';
import { restClientOptions, type RestClientOptions } from '../cluster/rest-client.js';
import { paths, readLocalCluster, LocalClusterError } from '../local/layout.js';
import { localEtcdSection } from '../local/etcd-client.js';
import type { EtcdSecurity } from '../config/etcd-section.js';
import { readYamlFile } from '../config/yaml.js';
import { ctlTargetFromObject, isNodeConfigDoc, targetFromCtlFile } from './ctl-config.js';

export interface CtlTarget {
  readonly scope: string;
  readonly namespace: string;
  readonly hosts: readonly string[];
  /** https, CA, client certificate and etcd user (the node config's `etcd3` section). */
  readonly etcd: EtcdSecurity;
  /** Basic auth for the members' unsafe REST endpoints, and the certificates for https. */
  readonly rest: RestClientOptions;
  /** Where this came from, for messages. */
  readonly source: string;
  /** Members whose agents' files this machine can read (`ctl events` reads them when the agent does not answer):
   *  with `-c` the node's own, with `--dir` every node of the local cluster. */
  readonly eventFiles?: readonly { readonly member: string; readonly file: string }[];
}

export function targetFromConfig(file: string, env: NodeJS.ProcessEnv = process.env): CtlTarget {
  const cfg = loadConfig(file, env);
  return {
    scope: cfg.scope,
    namespace: cfg.namespace,
    hosts: cfg.etcd3.hosts,
    etcd: cfg.etcd3,
    rest: restClientOptions(cfg),
    source: file,
    eventFiles: [{ member: cfg.name, file: eventsFileFor(cfg.postgresql.data_dir) }],
  };
}

export function targetFromDir(dir: string, env: NodeJS.ProcessEnv = process.env): CtlTarget {
  const lc = readLocalCluster(dir);
  if (!lc)
    throw new LocalClusterError(
      `no pgkeel cluster in ${dir} (no cluster.json); start one with \`pgkeel up --dir ${dir}\` or point at a node config with -c node.yml`,
    );
  const first = lc.nodes[0]?.name;
  const nodeFile = first ? paths.nodeConfig(lc.dir, first) : undefined;
  const hosts = [`${lc.host}:${lc.etcd.clientPort}`];
  const etcd = localEtcdSection(lc);
  const eventFiles = lc.nodes.map((n) => ({
    member: n.name,
    file: eventsFileFor(join(paths.nodeDir(lc.dir, n.name), 'data')),
  }));
  // The node's own file says what its agent requires (credentials, https, client certificates).
  if (nodeFile && existsSync(nodeFile))
    return { ...targetFromConfig(nodeFile, env), hosts, etcd, source: lc.dir, eventFiles };
  const auth = lc.restapi.password ? lc.restapi : undefined;
  return {
    scope: lc.scope,
    namespace: 'service',
    hosts,
    etcd,
    rest: { auth, tls: { insecure: false } },
    source: lc.dir,
    eventFiles,
  };
}

/** `-c FILE`: a node config (it names its member) or a ctl config (only the DCS settings). */
export function targetFromFile(file: string, env: NodeJS.ProcessEnv = process.env): CtlTarget {
  return isNodeConfigDoc(readYamlFile(file)) ? targetFromConfig(file, env) : targetFromCtlFile(file);
}

/** `--etcd … --scope … [--namespace …]`: the etcd3 section built from flags, checked like a ctl config. */
export function targetFromFlags(
  etcd3: Record<string, unknown>,
  scope: string,
  namespace: string | undefined,
  cwd = process.cwd(),
): CtlTarget {
  return ctlTargetFromObject(
    { scope, ...(namespace !== undefined ? { namespace } : {}), etcd3 },
    'the command line',
    cwd,
  );
}
