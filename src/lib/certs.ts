/**
 * A private certificate authority for clusters that have none of their own (`pgkeel up --tls`, tests): one CA and
 * leaf certificates signed by it, made with the `openssl` command-line tool (Debian's `openssl` package), because
 * Node can verify X.509 certificates but not issue them.
 *
 * Keys are ECDSA P-256 (accepted by PostgreSQL 15, etcd 3.4, libpq and Node's TLS). Every file is written 0600 and
 * owned by the caller; whoever needs a key as another user (PostgreSQL runs as `postgres`) copies or chowns it.
 * Leaf certificates carry both serverAuth and clientAuth, so one pair can serve a member's listener and its
 * outgoing connections; `hosts` become subjectAltNames (IP addresses as IP:, names as DNS:), which is what
 * verify-full / Node's checkServerIdentity compare against.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface CertFiles {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM private key (unencrypted, mode 0600). */
  readonly key: string;
}

export interface Ca extends CertFiles {}

export class CertError extends Error {
  readonly code = 'CERT_GENERATION_FAILED';
}

const CURVE = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args as string[], { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const why =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'the openssl command is not installed (Debian package "openssl")'
          : String(stderr).trim().split('\n').slice(-3).join('; ') || err.message;
      reject(new CertError(`openssl ${args[0]} failed in ${cwd}: ${why}`));
    });
  });
}

/** A file name safe for a certificate's base name (member names are already restricted by the config schema). */
function safeName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
    throw new CertError(`invalid certificate name "${name}": letters, digits, _ . - only`);
  return name;
}

/** Creates DIR/<name>.crt and DIR/<name>.key: a self-signed CA valid for 10 years. Existing files are kept. */
export async function makeCa(dir: string, name = 'ca', commonName = 'pgkeel CA'): Promise<Ca> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { cert: join(dir, `${safeName(name)}.crt`), key: join(dir, `${name}.key`) };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  await openssl(
    [
      'req',
      '-x509',
      ...CURVE,
      '-keyout',
      files.key,
      '-out',
      files.cert,
      '-days',
      '3650',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  chmodSync(files.key, 0o600);
  chmodSync(files.cert, 0o600);
  return files;
}

export interface LeafOptions {
  /** Host names and IP addresses the certificate is valid for (subjectAltName). Default: 127.0.0.1, ::1, localhost. */
  readonly hosts?: readonly string[];
  /** Subject CN; defaults to the name. For a PostgreSQL client certificate (`cert` auth), the role name. */
  readonly commonName?: string;
  /** Days of validity (default 825, the longest browsers accept). */
  readonly days?: number;
}

/** Creates DIR/<name>.crt and DIR/<name>.key signed by `ca`. Existing files are kept. */
export async function makeCert(dir: string, ca: Ca, name: string, opts: LeafOptions = {}): Promise<CertFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = safeName(name);
  const files = { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  const hosts = opts.hosts ?? ['127.0.0.1', '::1', 'localhost'];
  const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  const csr = join(dir, `${base}.csr`);
  const ext = join(dir, `${base}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(san ? [`subjectAltName=${san}`] : []),
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  try {
    await openssl(
      ['req', '-new', ...CURVE, '-keyout', files.key, '-out', csr, '-subj', `/CN=${opts.commonName ?? name}`],
      dir,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-days',
        String(opts.days ?? 825),
        '-sha256',
        '-extfile',
        ext,
        '-out',
        files.cert,
      ],
      dir,
    );
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  chmodSync(files.key, 0o600);
  chmodSync(files.cert, 0o600);
  return files;
}
