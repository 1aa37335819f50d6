/**
 * `pgkeel up --tls`: a private CA and certificates under DIR/tls (made with lib/certs.ts, files 0600, owned by the
 * user running `up`), and the config pieces that use them. PostgreSQL: `ssl` on with each node's certificate,
 * replication and pg_rewind with sslmode=verify-full against the CA (the members connect to 127.0.0.1, the
 * certificates' IP SAN), every TCP pg_hba line hostssl (conf.ts); the proxy checks the servers with verify-full.
 *
 * One place for the TLS of a local cluster, so etcd and REST certificates can be added beside PostgreSQL's.
 */
import { join } from 'node:path';
import { makeCa, makeCert, type Ca } from '../lib/certs.js';
import type { LocalCluster } from './layout.js';

export const localTlsDir = (dir: string) => join(dir, 'tls');

/** File names under DIR/tls: the CA and one certificate per node (serverAuth + clientAuth, SAN 127.0.0.1, ::1, localhost). */
export const tlsFiles = {
  caCert: (dir: string) => join(localTlsDir(dir), 'ca.crt'),
  nodeCert: (dir: string, node: string) => join(localTlsDir(dir), `${node}.crt`),
  nodeKey: (dir: string, node: string) => join(localTlsDir(dir), `${node}.key`),
};

/** Makes what is missing under DIR/tls (existing files are kept, so a later `up` changes nothing). */
export async function ensureLocalTls(lc: LocalCluster): Promise<Ca> {
  const dir = localTlsDir(lc.dir);
  const ca = await makeCa(dir, 'ca', `pgkeel ${lc.scope} CA`);
  for (const n of lc.nodes) await makeCert(dir, ca, n.name, { hosts: [lc.host, '::1', 'localhost'] });
  return ca;
}

export interface PgBase {
  readonly parameters: Record<string, string | number>;
  readonly authentication: { superuser: Record<string, string>; replication: Record<string, string> };
}

/** A node's postgresql.parameters and postgresql.authentication with TLS on (node.yml of a `up --tls` cluster). */
export function postgresTls(dir: string, node: string, base: PgBase): PgBase {
  return postgresTlsFiles(
    { ca: tlsFiles.caCert(dir), cert: tlsFiles.nodeCert(dir, node), key: tlsFiles.nodeKey(dir, node) },
    base,
  );
}

/**
 * The same from any PEM files (`pgkeel init`): the server serves `cert`, and replication and pg_rewind present it
 * (serverAuth + clientAuth) and check the other members with verify-full against `ca`.
 */
export function postgresTlsFiles(files: { ca: string; cert: string; key: string }, base: PgBase): PgBase {
  const { ca, cert, key } = files;
  const client = { sslmode: 'verify-full', sslrootcert: ca, sslcert: cert, sslkey: key };
  return {
    parameters: { ...base.parameters, ssl: 'on', ssl_cert_file: cert, ssl_key_file: key, ssl_ca_file: ca },
    authentication: {
      superuser: { ...base.authentication.superuser, ...client },
      replication: { ...base.authentication.replication, ...client },
    },
  };
}

/** proxy.yml: the proxy connects to PostgreSQL with TLS and checks the server's certificate and host name. */
export function proxyServerTls(dir: string): Record<string, string> {
  return { server_tls_sslmode: 'verify-full', server_tls_ca_file: tlsFiles.caCert(dir) };
}
