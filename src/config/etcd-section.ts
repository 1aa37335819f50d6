/**
 * The security keys of an etcd client section, shared by the node config (`etcd3:`, Patroni's key names) and the
 * proxy config (`etcd:`): scheme, CA, client certificate, user and password; their cross-field rules; and turning a
 * validated section into `EtcdStoreOptions` (reading the PEM files, so the store never touches the filesystem).
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { EtcdStoreOptions } from '../dcs/etcd.js';
import { ConfigError, type Problem, type Schema } from './schema.js';

export const etcdSecurityFields: Record<string, Schema> = {
  protocol: {
    kind: 'enum',
    doc: "Scheme of the endpoints. https checks the members' certificates against cacert (or the system CAs).",
    values: ['http', 'https'],
    default: 'http',
  },
  cacert: {
    kind: 'string',
    doc: "CA certificate(s) the etcd members' certificates are checked against (PEM file; needs protocol https).",
    expected: 'a path (relative to the config file)',
  },
  cert: {
    kind: 'string',
    doc: "Client certificate presented to etcd, for an etcd run with --client-cert-auth (PEM file; needs key and protocol https). etcd 3.4's JSON gateway refuses one whose subject has a CN: use an empty subject with SANs.",
    expected: 'a path (relative to the config file)',
  },
  key: {
    kind: 'string',
    doc: 'Private key of cert (PEM file, unencrypted; keep it mode 0600).',
    expected: 'a path (relative to the config file)',
  },
  username: { kind: 'string', doc: 'etcd user (etcd authentication); needs password.' },
  password: { kind: 'string', doc: 'Password of the etcd user (never logged); needs username.', secret: true },
  password_file: {
    kind: 'string',
    doc: 'File holding the password instead of password (first line; the file must not be readable by group or others).',
    expected: 'a path (relative to the config file)',
  },
};

export interface EtcdSecurity {
  protocol: 'http' | 'https';
  cacert?: string;
  cert?: string;
  key?: string;
  username?: string;
  password?: string;
  password_file?: string;
}

const FILE_KEYS = ['cacert', 'cert', 'key'] as const;

/** Relative certificate paths are taken from the config file's directory. */
export function resolveEtcdFiles(s: EtcdSecurity, baseDir: string): void {
  for (const k of FILE_KEYS) if (s[k]) s[k] = resolve(baseDir, s[k]);
  if (s.password_file) s.password_file = resolve(baseDir, s.password_file);
}

/** The rules the schema cannot say: pairs that need each other, and TLS files that need https. `at` is "etcd3" or "etcd". */
export function etcdSecurityProblems(s: EtcdSecurity, at: string): Problem[] {
  const out: Problem[] = [];
  const hasPassword = s.password !== undefined || s.password_file !== undefined;
  if (s.password !== undefined && s.password_file !== undefined)
    out.push({ path: `${at}.password_file`, message: `give either ${at}.password or ${at}.password_file, not both` });
  if (s.username !== undefined && !hasPassword)
    out.push({ path: `${at}.password`, message: `is required with ${at}.username (or ${at}.password_file)` });
  if (hasPassword && s.username === undefined)
    out.push({
      path: `${at}.username`,
      message: `is required with ${at}.${s.password !== undefined ? 'password' : 'password_file'}`,
    });
  if (s.cert !== undefined && s.key === undefined)
    out.push({ path: `${at}.key`, message: `is required with ${at}.cert` });
  if (s.key !== undefined && s.cert === undefined)
    out.push({ path: `${at}.cert`, message: `is required with ${at}.key` });
  if (s.protocol !== 'https') {
    for (const k of FILE_KEYS)
      if (s[k] !== undefined)
        out.push({
          path: `${at}.${k}`,
          message: `needs ${at}.protocol https (got ${s.protocol}): certificates are only used over TLS`,
        });
  }
  return out;
}

/**
 * Store options for a validated section: reads cacert/cert/key now, so an unreadable file is a config error naming
 * its key, at start-up rather than at the first request.
 */
export function etcdStoreOptions(
  s: EtcdSecurity & { hosts: readonly string[] },
  requestTimeoutMs: number,
  at: string,
  source: string,
): EtcdStoreOptions {
  const problems: Problem[] = [];
  const read = (k: (typeof FILE_KEYS)[number]): string | undefined => {
    const file = s[k];
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({
        path: `${at}.${k}`,
        message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
      return undefined;
    }
  };
  const tls = { ca: read('cacert'), cert: read('cert'), key: read('key') };
  const password =
    s.password_file !== undefined ? readPasswordFile(s.password_file, `${at}.password_file`, problems) : s.password;
  if (problems.length) throw new ConfigError(problems, source);
  return {
    hosts: s.hosts,
    requestTimeoutMs,
    protocol: s.protocol,
    ...(s.protocol === 'https' ? { tls } : {}),
    ...(s.username !== undefined && password !== undefined ? { username: s.username, password } : {}),
  };
}

/** The first line of a password file that only its owner can read (libpq's rule for .pgpass, but refused, not ignored). */
function readPasswordFile(file: string, path: string, problems: Problem[]): string | undefined {
  try {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      problems.push({
        path,
        message: `${file} is readable or writable by group or others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`,
      });
      return undefined;
    }
    const first = readFileSync(file, 'utf8').split(/\r?\n/)[0] ?? '';
    if (first === '') problems.push({ path, message: `${file} is empty: expected the password on its first line` });
    return first;
  } catch (err) {
    problems.push({
      path,
      message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    });
    return undefined;
  }
}
