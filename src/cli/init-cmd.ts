/**
 * `pgkeel init --scope S --name N --etcd HOST:PORT[,…] [options]`: prints one host's node config (src/deploy/init.ts)
 * on stdout, so `pgkeel init … > /etc/pgkeel/S.yml` is the whole step; what it created goes to stderr.
 * Exit codes: 0 printed, 2 invalid usage or a config the checker refuses.
 */
import { networkInterfaces } from 'node:os';
import { initNodeConfig, type InitOptions } from '../deploy/init.js';
import { newSecret } from '../local/layout.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { ETCD_FLAGS, etcdSectionFromFlags } from './etcd-flags.js';

const str = (doc: string, placeholder: string): FlagSpec => ({ type: 'string', doc, placeholder });

export const INIT_FLAGS: Record<string, FlagSpec> = {
  scope: str('cluster name (the same on every member)', 'S'),
  name: str("this member's name, unique in the cluster", 'N'),
  listen: str('IP PostgreSQL and the REST API listen on (default: the first non-loopback IPv4)', 'IP'),
  'connect-address': str('IP the other members reach this host at (default: --listen)', 'IP'),
  'pg-port': { type: 'number', doc: 'PostgreSQL port (default 5432)', placeholder: 'PORT' },
  'rest-port': { type: 'number', doc: 'REST API port (default 8008)', placeholder: 'PORT' },
  'data-dir': str('data directory (default /var/lib/pgkeel/S/data)', 'DIR'),
  'bin-dir': str('PostgreSQL programs (default /usr/lib/postgresql/15/bin)', 'DIR'),
  'ca-file': str("CA of the members' certificates: REST https and PostgreSQL ssl with verify-full", 'FILE'),
  'cert-file': str("this host's certificate (serverAuth + clientAuth, SAN = its IP)", 'FILE'),
  'key-file': str("this host's private key", 'FILE'),
  ...ETCD_FLAGS,
  'secrets-from': str(
    'directory of shared passwords (superuser, replication, restapi .password): read, or generated when missing; copy it to every member',
    'DIR',
  ),
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

/** Flags → InitOptions; a flag that needs a partner is refused here, the rest by the config checker. */
export function initOptionsFromFlags(flags: Record<string, unknown>): InitOptions {
  const s = (k: string) => flags[k] as string | undefined;
  const n = (k: string) => flags[k] as number | undefined;
  for (const k of ['scope', 'name', 'etcd'])
    if (!s(k)) throw new UsageError(`pgkeel init needs --${k}; \`pgkeel init --help\` lists the options`);
  const tlsGiven = ['ca-file', 'cert-file', 'key-file'].filter((k) => s(k) !== undefined);
  if (tlsGiven.length !== 0 && tlsGiven.length !== 3)
    throw new UsageError('give --ca-file, --cert-file and --key-file together (or none: no TLS)');
  return {
    scope: s('scope') as string,
    name: s('name') as string,
    etcd: etcdSectionFromFlags(flags),
    listen: s('listen'),
    connectAddress: s('connect-address'),
    pgPort: n('pg-port'),
    restPort: n('rest-port'),
    dataDir: s('data-dir'),
    binDir: s('bin-dir'),
    tls:
      tlsGiven.length === 3
        ? { ca: s('ca-file') as string, cert: s('cert-file') as string, key: s('key-file') as string }
        : undefined,
    secretsFrom: s('secrets-from'),
  };
}

/** The first non-internal IPv4 address of this host, as Patroni's --generate-config picks one. */
function firstIpv4(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

export function runInit(argv: readonly string[]): number {
  const { flags, positional } = parseArgs(argv, INIT_FLAGS);
  if (flags['help']) {
    process.stdout.write(
      `Usage: pgkeel init --scope S --name N --etcd HOST:PORT[,…] [options] > /etc/pgkeel/S.yml\n\n${usage(INIT_FLAGS)}\n\nDocs: docs/deploy.md\n`,
    );
    return 0;
  }
  if (positional.length) throw new UsageError(`pgkeel init takes no arguments, got "${positional.join(' ')}"`);
  const res = initNodeConfig(initOptionsFromFlags(flags), { newSecret, hostAddress: firstIpv4 });
  for (const f of res.created) process.stderr.write(`pgkeel init: generated ${f} (0600)\n`);
  if (flags['secrets-from'] === undefined)
    process.stderr.write(
      'pgkeel init: the passwords are generated inline for this host; every member needs the same ones (use --secrets-from DIR and copy DIR to the other hosts)\n',
    );
  process.stdout.write(res.text);
  return 0;
}
