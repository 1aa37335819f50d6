/**
 * `pgkeel config check -c FILE [--proxy]`: validates a node config (node.yml) or a proxy config (proxy.yml) and
 * prints one line when it is valid; an invalid file throws ConfigError, which main prints with every problem's key
 * path and expected form (exit 2).
 *
 * Which schema: `--proxy` says proxy; otherwise the file's top level decides — a proxy config has `listen` there,
 * a node config never does (its listener is `restapi.listen`) and has `scope`. So a proxy.yml is recognised
 * without the flag, and a node.yml with a stray `listen` is still checked as a node config (and the key refused).
 */
import { loadConfig } from '../config/load.js';
import { readYamlFile } from '../config/yaml.js';
import { loadProxyConfig } from '../proxy/config.js';

export type ConfigKind = 'node' | 'proxy';

/** Pure: the kind of a parsed document. */
export function configKind(doc: unknown, proxyFlag: boolean): ConfigKind {
  if (proxyFlag) return 'proxy';
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'node';
  const has = (k: string) => Object.hasOwn(doc, k);
  return has('listen') && !has('scope') ? 'proxy' : 'node';
}

/** The line printed for a valid file; throws ConfigError for an invalid one. */
export function checkConfigFile(file: string, proxyFlag: boolean): string {
  const kind = proxyFlag ? 'proxy' : configKind(readYamlFile(file), false);
  if (kind === 'node') {
    const c = loadConfig(file);
    return `${file}: valid node config (scope ${c.scope}, member ${c.name})`;
  }
  const p = loadProxyConfig(file);
  const topology = p.etcd ? `etcd scope ${p.etcd.scope}` : `primary ${p.primary}`;
  const trust =
    p.auth_type === 'trust'
      ? '\n  note: auth_type trust lets every client that reaches the listeners in without a password'
      : '';
  return `${file}: valid proxy config (listen ${p.listen}, ${topology}, pool_mode ${p.pool_mode}, auth_type ${p.auth_type})${trust}`;
}
