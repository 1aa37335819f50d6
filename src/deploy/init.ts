/**
 * `pgkeel init`: the node config for one host of a real deployment (Patroni's `--generate-config`), built from the
 * same pieces `pgkeel up` writes its node.yml with (src/local/layout.ts, tls.ts, rest-tls.ts) and checked with the
 * same loader `pgkeel config check` and the agent use before it is returned — init never prints a config the agent
 * would refuse.
 *
 * Secrets: the superuser, replication and REST passwords must be the same on every member (replicas log in to the
 * leader with them, `ctl` calls every member with the REST one). Without `secretsFrom` they are generated and
 * written inline (one host, or a template to copy); with `secretsFrom DIR` the config names DIR/<secret>.password
 * files (`password_file`), each read when present and generated (0600, in a 0700 DIR) when missing — run init on
 * the first host, copy DIR to the others, run init there.
 *
 * Paths are Debian's: data in /var/lib/pgkeel/<scope>/data (its socket directory and pgpass beside it, the
 * loader's defaults), PostgreSQL 15 from /usr/lib/postgresql/15/bin (the `postgresql-15` package).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { EtcdSecurity } from '../config/etcd-section.js';
import { configFromObject } from '../config/load.js';
import { ConfigError, type Problem } from '../config/schema.js';
import { nodeConfigText, REST_USER } from '../local/layout.js';
import { restTlsFromFiles } from '../local/rest-tls.js';
import { postgresTlsFiles, type PgBase } from '../local/tls.js';

export const DEFAULT_PG_PORT = 5432;
export const DEFAULT_REST_PORT = 8008;
export const DEBIAN_BIN_DIR = '/usr/lib/postgresql/15/bin';
export const defaultDataDir = (scope: string) => `/var/lib/pgkeel/${scope}/data`;

/** The secrets every member shares, by the file name they get under `secretsFrom`. */
export const SECRET_NAMES = ['superuser', 'replication', 'restapi'] as const;
export type SecretName = (typeof SECRET_NAMES)[number];
export const secretFile = (dir: string, name: SecretName) => join(resolve(dir), `${name}.password`);

export interface PemFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface InitOptions {
  readonly scope: string;
  readonly name: string;
  /** The etcd3 section: endpoints (host:port), and https, client certificate and user when given. */
  readonly etcd: { readonly hosts: readonly string[] } & Partial<EtcdSecurity>;
  /** The IP PostgreSQL and the REST API listen on (default: `hostAddress()`); 0.0.0.0 or :: needs `connectAddress`. */
  readonly listen?: string;
  /** The IP other members and clients reach this host at (default: `listen`). */
  readonly connectAddress?: string;
  readonly pgPort?: number;
  readonly restPort?: number;
  readonly dataDir?: string;
  readonly binDir?: string;
  /** This host's certificate (serverAuth + clientAuth) and the CA of the members: REST https + PostgreSQL ssl. */
  readonly tls?: PemFiles;
  readonly secretsFrom?: string;
}

export interface InitDeps {
  /** A new password (crypto random). */
  readonly newSecret: () => string;
  /** This host's address when `listen` is not given (the first non-internal IPv4), or undefined. */
  readonly hostAddress: () => string | undefined;
}

export interface InitResult {
  /** The node config, YAML with a header line. */
  readonly text: string;
  /** Secret files init generated under `secretsFrom` (absent ones; present ones are reused). */
  readonly created: readonly string[];
}

const WILDCARD = new Set(['0.0.0.0', '::']);
const hostPort = (ip: string, port: number) => (isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);
const refuse = (path: string, message: string): never => {
  throw new ConfigError([{ path, message }], 'pgkeel init');
};

function addresses(o: InitOptions, deps: InitDeps): { listen: string; connect: string } {
  const listen = o.listen ?? deps.hostAddress();
  if (listen === undefined)
    return refuse('--listen', 'this host has no non-loopback IPv4 address to default to: give --listen IP');
  if (isIP(listen) === 0) refuse('--listen', `expected an IP address, got ${JSON.stringify(listen)}`);
  const connect = o.connectAddress ?? listen;
  if (isIP(connect) === 0) refuse('--connect-address', `expected an IP address, got ${JSON.stringify(connect)}`);
  if (WILDCARD.has(connect))
    refuse(
      '--connect-address',
      `is required with --listen ${listen}: the address other members reach this host at (a wildcard is not one)`,
    );
  return { listen, connect };
}

/** Each shared password: inline (generated), or a `password_file` under `secretsFrom` (read, or generated once). */
function secrets(
  o: InitOptions,
  deps: InitDeps,
): { value: (n: SecretName) => Record<string, string>; created: string[] } {
  const created: string[] = [];
  if (o.secretsFrom === undefined) {
    const generated = Object.fromEntries(SECRET_NAMES.map((n) => [n, deps.newSecret()]));
    return { value: (n) => ({ password: generated[n] as string }), created };
  }
  const dir = resolve(o.secretsFrom);
  const problems: Problem[] = [];
  for (const n of SECRET_NAMES) {
    const file = secretFile(dir, n);
    if (!existsSync(file)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(file, `${deps.newSecret()}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      created.push(file);
    } else if (readFileSync(file, 'utf8').trim() === '')
      problems.push({ path: '--secrets-from', message: `${file} is empty: expected the ${n} password` });
  }
  if (problems.length) throw new ConfigError(problems, 'pgkeel init');
  return { value: (n) => ({ password_file: secretFile(dir, n) }), created };
}

/** Builds, checks (as `pgkeel config check` would) and returns one host's node config. */
export function initNodeConfig(o: InitOptions, deps: InitDeps): InitResult {
  if (o.etcd.hosts.length === 0) refuse('--etcd', 'expected at least one etcd endpoint HOST:PORT');
  const { listen, connect } = addresses(o, deps);
  const pgPort = o.pgPort ?? DEFAULT_PG_PORT;
  const restPort = o.restPort ?? DEFAULT_REST_PORT;
  const s = secrets(o, deps);
  const pgBase: PgBase = {
    authentication: {
      superuser: { username: 'postgres', ...s.value('superuser') },
      replication: { username: 'replicator', ...s.value('replication') },
    },
    parameters: {},
  };
  // One certificate serves REST (server, and client towards the other members) and PostgreSQL (server, and client
  // for replication and pg_rewind). verify_client optional: unsafe endpoints need a client certificate, while
  // health checks and a browser opening the dashboard do not.
  const rest = o.tls ? restTlsFromFiles({ ...o.tls, clientCert: o.tls.cert, clientKey: o.tls.key }, 'optional') : null;
  const pg = o.tls ? postgresTlsFiles(o.tls, pgBase) : pgBase;
  const cfg = {
    scope: o.scope,
    name: o.name,
    etcd3: { ...o.etcd, hosts: [...o.etcd.hosts] },
    restapi: {
      listen: hostPort(listen, restPort),
      connect_address: hostPort(connect, restPort),
      authentication: { username: REST_USER, ...s.value('restapi') },
      ...rest?.restapi,
    },
    ...(rest ? { ctl: rest.ctl } : {}),
    postgresql: {
      listen: hostPort(listen, pgPort),
      connect_address: hostPort(connect, pgPort),
      data_dir: o.dataDir ?? defaultDataDir(o.scope),
      bin_dir: o.binDir ?? DEBIAN_BIN_DIR,
      authentication: pg.authentication,
      ...(Object.keys(pg.parameters).length ? { parameters: pg.parameters } : {}),
    },
    log: { format: 'json' },
  };
  // The loader's own checks (schema, cross-field rules, secret files readable); no environment overrides.
  configFromObject(cfg, 'pgkeel init', {}, '/');
  return { text: nodeConfigText(cfg, 'pgkeel init'), created: s.created };
}
