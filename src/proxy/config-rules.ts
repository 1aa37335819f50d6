/**
 * proxy.yml's cross-field rules: combinations the schema alone cannot refuse (a static primary beside etcd,
 * auth_query without its user, TLS files without a mode…). Each problem names its key and the expected form.
 */
import type { Problem } from '../config/schema.js';
import { etcdSecurityProblems } from '../config/etcd-section.js';
import { DEFAULT_AUTH_QUERY, listenAddress, type ProxyConfig } from './config.js';

export function crossField(c: ProxyConfig): Problem[] {
  const out: Problem[] = [];
  if (c.primary && c.etcd)
    out.push({ path: 'primary', message: 'give either a static topology (primary/replicas) or etcd, not both' });
  if (!c.primary && !c.etcd)
    out.push({ path: 'primary', message: 'is required unless etcd is given: the proxy needs a topology' });
  if (c.replicas.length && !c.primary) out.push({ path: 'replicas', message: 'needs primary (static topology)' });
  if (c.etcd && c.etcd.hosts.length === 0) out.push({ path: 'etcd.hosts', message: 'expected at least one host:port' });
  if (c.etcd) out.push(...etcdSecurityProblems(c.etcd, 'etcd'));
  if (c.auth_type !== 'trust' && !c.auth_file && !c.auth_user) {
    out.push({
      path: 'auth_file',
      message: `is required with auth_type ${c.auth_type} (or auth_user); set auth_type: trust explicitly to let clients in without a password`,
    });
  }
  out.push(...authQueryRules(c));
  out.push(...tlsRules(c));
  if (c.min_pool_size > c.default_pool_size)
    out.push({
      path: 'min_pool_size',
      message: `must be at most default_pool_size (${c.default_pool_size}), got ${c.min_pool_size}`,
    });
  const addrs = [
    ['listen', c.listen],
    ['ro_listen', c.ro_listen],
    ['metrics_listen', c.metrics_listen],
  ].filter(([, v]) => v);
  for (let i = 0; i < addrs.length; i++) {
    for (let j = i + 1; j < addrs.length; j++) {
      const [a, av] = addrs[i] as [string, string];
      const [b, bv] = addrs[j] as [string, string];
      if (av === bv && listenAddress(av).port !== 0) out.push({ path: b, message: `must differ from ${a} (${av})` });
    }
  }
  return out;
}

/** auth_query and auth_dbname do nothing without auth_user: refused rather than silently ignored. */
function authQueryRules(c: ProxyConfig): Problem[] {
  const out: Problem[] = [];
  if (c.auth_user === undefined) {
    if (c.auth_dbname !== undefined)
      out.push({ path: 'auth_dbname', message: 'needs auth_user (the user auth_query runs as)' });
    if (c.auth_query !== DEFAULT_AUTH_QUERY)
      out.push({ path: 'auth_query', message: 'needs auth_user (the user it runs as)' });
  }
  if (!/\$1(?!\d)/.test(c.auth_query))
    out.push({ path: 'auth_query', message: 'must take the user name as the parameter $1' });
  return out;
}

/** Which files a TLS mode needs (their contents are checked when the proxy loads them: tls.ts loadTls). */
function tlsRules(c: ProxyConfig): Problem[] {
  const out: Problem[] = [];
  const cm = c.client_tls_sslmode;
  if (cm !== 'disable') {
    for (const k of ['client_tls_key_file', 'client_tls_cert_file'] as const)
      if (!c[k]) out.push({ path: k, message: `is required with client_tls_sslmode ${cm}` });
  }
  if ((cm === 'verify-ca' || cm === 'verify-full') && !c.client_tls_ca_file)
    out.push({ path: 'client_tls_ca_file', message: `is required with client_tls_sslmode ${cm}` });
  const sm = c.server_tls_sslmode;
  if ((sm === 'verify-ca' || sm === 'verify-full') && !c.server_tls_ca_file)
    out.push({ path: 'server_tls_ca_file', message: `is required with server_tls_sslmode ${sm}` });
  if (!c.server_tls_key_file !== !c.server_tls_cert_file) {
    const [missing, given] = c.server_tls_key_file
      ? ['server_tls_cert_file', 'server_tls_key_file']
      : ['server_tls_key_file', 'server_tls_cert_file'];
    out.push({ path: missing, message: `is required with ${given}` });
  }
  return out;
}
