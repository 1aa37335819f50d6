/**
 * The etcd flags `pgkeel init` and `pgkeel ctl` share: endpoints, https with a CA and a client certificate, a user
 * with a password file. They become an `etcd3` section with Patroni's key names (the schema checks the values).
 */
import type { EtcdSecurity } from '../config/etcd-section.js';
import { UsageError, type FlagSpec } from './args.js';

const str = (doc: string, placeholder: string): FlagSpec => ({ type: 'string', doc, placeholder });

export const ETCD_FLAGS: Record<string, FlagSpec> = {
  etcd: str('etcd client endpoints, comma-separated', 'HOST:PORT[,…]'),
  'etcd-ca-file': str("etcd over https: the CA of etcd's certificates", 'FILE'),
  'etcd-cert-file': str('client certificate for an etcd run with --client-cert-auth', 'FILE'),
  'etcd-key-file': str('its private key', 'FILE'),
  'etcd-user': str('etcd user (etcd authentication); needs --etcd-password-file', 'USER'),
  'etcd-password-file': str("file holding the etcd user's password (mode 0600)", 'FILE'),
};

/** An `etcd3` section as written to a config file: only the keys that were given. */
export type EtcdSection = { hosts: string[] } & Partial<EtcdSecurity>;

/** `--etcd` and friends → an etcd3 section; a flag without its partner is refused. */
export function etcdSectionFromFlags(flags: Record<string, unknown>): EtcdSection {
  const s = (k: string) => flags[k] as string | undefined;
  const given = (k: string) => s(k) !== undefined;
  if (given('etcd-cert-file') !== given('etcd-key-file'))
    throw new UsageError('give --etcd-cert-file and --etcd-key-file together');
  if (given('etcd-cert-file') && !given('etcd-ca-file'))
    throw new UsageError('--etcd-cert-file needs --etcd-ca-file (client certificates are only used over https)');
  if (given('etcd-user') !== given('etcd-password-file'))
    throw new UsageError('give --etcd-user and --etcd-password-file together');
  const hosts = (s('etcd') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (hosts.length === 0) throw new UsageError('--etcd needs at least one HOST:PORT');
  const ca = s('etcd-ca-file');
  const cert = s('etcd-cert-file');
  const user = s('etcd-user');
  return {
    hosts,
    ...(ca ? { protocol: 'https' as const, cacert: ca } : {}),
    ...(cert ? { cert, key: s('etcd-key-file') as string } : {}),
    ...(user ? { username: user, password_file: s('etcd-password-file') as string } : {}),
  };
}
