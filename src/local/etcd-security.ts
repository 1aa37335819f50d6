/**
 * etcd security of a local cluster. Every `pgkeel up` cluster has etcd authentication on (a `pgkeel` user limited to
 * the cluster's prefix; passwords in DIR/etcd/auth.json), so no local user can write the DCS. With `--tls`, etcd
 * also serves https only (certificate from the cluster's CA under DIR/tls),
 * requires a client certificate from that CA (--client-cert-auth, peers too), and has authentication on with
 * `root` and a `pgkeel` user whose role may read and write only the cluster's prefix (/service/<scope>/).
 *
 *   DIR/tls/{ca,etcd,etcd-client}.{crt,key}   0600, made with lib/certs (kept when present)
 *   DIR/etcd/auth.json                        0600: root and pgkeel passwords (random, made once)
 *
 * node.yml (`etcd3:`) and proxy.yml (`etcd:`) carry the client settings with Patroni's key names, so the agents,
 * the proxy, `status` and `ctl --dir` need nothing else.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeCa, makeCert } from '../lib/certs.js';
import { ensureEtcdAuth } from '../dcs/etcd-auth-setup.js';
import type { EtcdServerTls } from '../dcs/etcd-server.js';
import type { EtcdTlsMaterial } from '../dcs/etcd-transport.js';
import { clusterKeys } from '../dcs/layout.js';
import { LocalClusterError, paths, type LocalCluster } from './layout.js';

export const ETCD_USER = 'pgkeel';

interface EtcdSecrets {
  root_password: string;
  username: string;
  password: string;
}

const tlsDir = (dir: string): string => join(dir, 'tls');
const authFile = (dir: string): string => join(paths.etcdDir(dir), 'auth.json');
const pem = (dir: string, name: string) => ({
  cert: join(tlsDir(dir), `${name}.crt`),
  key: join(tlsDir(dir), `${name}.key`),
});

/** The etcd passwords of a local cluster, made (0600) on first use. */
export function localEtcdSecrets(dir: string): EtcdSecrets {
  const file = authFile(dir);
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as EtcdSecrets;
    } catch (err) {
      throw new LocalClusterError(
        `${file} is not valid JSON (${(err as Error).message}); it holds the etcd passwords of this cluster`,
      );
    }
  }
  mkdirSync(paths.etcdDir(dir), { recursive: true, mode: 0o700 });
  const s: EtcdSecrets = {
    root_password: randomBytes(18).toString('base64url'),
    username: ETCD_USER,
    password: randomBytes(18).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  return s;
}

/**
 * The `etcd3:` (node.yml) / `etcd:` (proxy.yml) keys of a local cluster: always the `pgkeel` user (etcd
 * authentication is on for every local cluster, so no local user can write the DCS); with --tls also https and the
 * client certificate (the files exist once etcd has started).
 */
export function localEtcdClientSection(dir: string, tls = true): Record<string, string> {
  const s = localEtcdSecrets(dir);
  if (!tls) return { username: s.username, password: s.password };
  const client = pem(dir, 'etcd-client');
  return {
    protocol: 'https',
    cacert: pem(dir, 'ca').cert,
    cert: client.cert,
    key: client.key,
    username: s.username,
    password: s.password,
  };
}

/** Makes the CA, etcd's certificate and the client certificate when missing. */
export async function ensureLocalEtcdCerts(
  lc: LocalCluster,
): Promise<{ server: EtcdServerTls; client: EtcdTlsMaterial }> {
  const dir = tlsDir(lc.dir);
  const ca = await makeCa(dir);
  const server = await makeCert(dir, ca, 'etcd', { hosts: [lc.host, 'localhost'] });
  // No CN: etcd 3.4's JSON gateway answers 400 to a client certificate with one when --client-cert-auth is on.
  const client = await makeCert(dir, ca, 'etcd-client', { commonName: '' });
  return {
    server: { cert: server.cert, key: server.key, ca: ca.cert, clientCertAuth: true },
    client: {
      ca: readFileSync(ca.cert, 'utf8'),
      cert: readFileSync(client.cert, 'utf8'),
      key: readFileSync(client.key, 'utf8'),
    },
  };
}

/**
 * Turns on etcd authentication for the cluster's prefix (https with `client`, else plain http on loopback: only root
 * can read loopback traffic); does nothing when the pgkeel user can already log in.
 */
export async function enableLocalEtcdAuth(lc: LocalCluster, client?: EtcdTlsMaterial): Promise<'enabled' | 'already'> {
  const s = localEtcdSecrets(lc.dir);
  return await ensureEtcdAuth(
    {
      endpoint: `${lc.host}:${lc.etcd.clientPort}`,
      ...(client ? { protocol: 'https' as const, tls: client } : { protocol: 'http' as const }),
      timeoutMs: 10_000,
    },
    {
      rootPassword: s.root_password,
      username: s.username,
      password: s.password,
      prefixes: [clusterKeys(lc.scope).prefix],
    },
  );
}
