/**
 * The small config `pgkeel ctl` needs on a machine that is not a member (patronictl's `-c` file, reduced to the
 * DCS): scope, namespace, the `etcd3` section (hosts, https, client certificate, user), and — only for the unsafe
 * calls (switchover, restart, pause, …) — `restapi.authentication` and the `ctl` certificates. Never a database
 * password. The keys and their rules are the node config's own (src/config/node.ts), so the same four lines work in
 * a node.yml and here:
 *
 *   scope: prod
 *   etcd3:
 *     hosts: [10.0.0.11:2379, 10.0.0.12:2379, 10.0.0.13:2379]
 *
 * `pgkeel ctl --etcd … --scope …` builds the same document from flags and goes through the same checks.
 */
import { dirname, resolve } from 'node:path';
import { restClientOptions } from '../cluster/rest-client.js';
import { etcdSecurityProblems, resolveEtcdFiles } from '../config/etcd-section.js';
import type { NodeConfig } from '../config/node.js';
import { nodeSchema } from '../config/node.js';
import { ConfigError, type Problem, type Schema, schemaAt, validate } from '../config/schema.js';
import { readYamlFile } from '../config/yaml.js';
import type { CtlTarget } from './target.js';

const nodeKey = (path: string): Schema => schemaAt(nodeSchema, path.split('.')) as Schema;

export const ctlConfigSchema: Schema = {
  kind: 'object',
  doc: "pgkeel ctl's DCS settings.",
  fields: {
    scope: nodeKey('scope'),
    namespace: nodeKey('namespace'),
    etcd3: nodeKey('etcd3'),
    restapi: {
      kind: 'object',
      doc: "Only what ctl needs to call the members' unsafe endpoints.",
      fields: { authentication: nodeKey('restapi.authentication'), cafile: nodeKey('restapi.cafile') },
    },
    ctl: nodeKey('ctl'),
  },
};

type CtlConfig = Pick<NodeConfig, 'scope' | 'namespace' | 'etcd3' | 'ctl'> & {
  restapi: Pick<NodeConfig['restapi'], 'authentication' | 'cafile'>;
};

/** A node config names its member (and its PostgreSQL); a ctl config has neither. */
export function isNodeConfigDoc(doc: unknown): boolean {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return false;
  return Object.hasOwn(doc, 'name') || Object.hasOwn(doc, 'postgresql');
}

/** Validates a ctl document (relative files from baseDir) into a target; throws ConfigError listing every problem. */
export function ctlTargetFromObject(raw: unknown, source: string, baseDir: string): CtlTarget {
  const { value, problems } = validate(ctlConfigSchema, raw ?? {}, '', { secretFiles: { baseDir } });
  if (problems.length) throw new ConfigError(problems, source);
  const c = value as CtlConfig;
  const cross: Problem[] = etcdSecurityProblems(c.etcd3, 'etcd3');
  const auth = c.restapi.authentication;
  if (auth && (!auth.username || !auth.password))
    cross.push({ path: 'restapi.authentication', message: 'expected both username and password' });
  if (cross.length) throw new ConfigError(cross, source);
  resolveEtcdFiles(c.etcd3, baseDir);
  if (c.restapi.cafile) c.restapi.cafile = resolve(baseDir, c.restapi.cafile);
  for (const k of ['certfile', 'keyfile', 'cacert'] as const) if (c.ctl[k]) c.ctl[k] = resolve(baseDir, c.ctl[k]);
  return {
    scope: c.scope,
    namespace: c.namespace.replace(/\//g, ''),
    hosts: c.etcd3.hosts,
    etcd: c.etcd3,
    // No restapi.certfile here: a client certificate comes from `ctl`, as Patroni's ctl section.
    rest: restClientOptions({
      ctl: c.ctl,
      restapi: { ...c.restapi, listen: '', connect_address: '', verify_client: 'none' },
    }),
    source,
  };
}

/** Reads a ctl config file. */
export function targetFromCtlFile(file: string): CtlTarget {
  return ctlTargetFromObject(readYamlFile(file), file, dirname(resolve(file)));
}
