/**
 * `pgkeel proxy`: the leader-following pooler in the foreground.
 *
 *   pgkeel proxy -c proxy.yml
 *   pgkeel proxy --listen HOST:PORT --primary HOST:PORT [--replica HOST:PORT ...] [--pool-mode session|transaction]
 *                [--pool-size N] [--max-client-conn N] [--workers N] [--auth scram-sha-256|md5|trust] [--auth-file userlist.txt]
 *   pgkeel proxy --listen HOST:PORT --etcd HOST:PORT --scope NAME [--ro-listen HOST:PORT]
 *                [--client-tls-sslmode require --client-tls-cert FILE --client-tls-key FILE]
 *
 * Flags given with -c override the file's settings. SIGTERM/SIGINT: graceful shutdown (a second one: immediate);
 * SIGHUP: RELOAD. Exit codes: 0 stopped, 1 failure, 2 invalid usage or configuration.
 */
import { ConfigError } from '../config/schema.js';
import { createLogger } from '../lib/log.js';
import { loadProxyConfig, proxyConfigFromObject, type ProxyConfig } from '../proxy/config.js';
import { startProxy } from '../proxy/proxy.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';

const SPEC: Record<string, FlagSpec> = {
  config: { type: 'string', short: 'c', doc: 'proxy config file (YAML)', placeholder: 'FILE' },
  listen: { type: 'string', doc: 'read-write listener', placeholder: 'HOST:PORT' },
  'ro-listen': { type: 'string', doc: 'read-only listener (replicas)', placeholder: 'HOST:PORT' },
  'metrics-listen': {
    type: 'string',
    doc: 'HTTP listener for Prometheus /metrics and the /stats JSON (with --etcd the proxy also registers itself in the DCS for the dashboard)',
    placeholder: 'HOST:PORT',
  },
  primary: { type: 'string', doc: 'static topology: the primary', placeholder: 'HOST:PORT' },
  replica: { type: 'list', doc: 'static topology: a replica (repeatable)', placeholder: 'HOST:PORT' },
  etcd: { type: 'list', doc: 'follow a cluster in etcd (repeatable)', placeholder: 'HOST:PORT' },
  scope: { type: 'string', doc: 'cluster name in etcd', placeholder: 'NAME' },
  namespace: { type: 'string', doc: 'etcd key namespace (default service)', placeholder: 'NS' },
  'pool-mode': { type: 'string', doc: 'session or transaction (default transaction)', placeholder: 'MODE' },
  'pool-size': { type: 'number', doc: 'server connections per pool (default 20)', placeholder: 'N' },
  'max-client-conn': { type: 'number', doc: 'client connections (default 100)', placeholder: 'N' },
  workers: { type: 'number', doc: 'worker processes sharing the listeners (default 1)', placeholder: 'N' },
  auth: {
    type: 'string',
    doc: 'scram-sha-256 (default), md5 or trust (no password: only when asked for)',
    placeholder: 'METHOD',
  },
  'auth-file': { type: 'string', doc: 'userlist.txt ("user" "secret" per line)', placeholder: 'FILE' },
  'admin-user': {
    type: 'list',
    doc: 'admin console user (repeatable; default: anyone authenticated)',
    placeholder: 'NAME',
  },
  'client-tls-sslmode': {
    type: 'string',
    doc: 'TLS for clients: disable, allow, prefer, require, verify-ca, verify-full (default disable)',
    placeholder: 'MODE',
  },
  'client-tls-cert': { type: 'string', doc: 'certificate presented to clients (PEM)', placeholder: 'FILE' },
  'client-tls-key': { type: 'string', doc: 'private key for --client-tls-cert (PEM)', placeholder: 'FILE' },
  'log-format': { type: 'string', doc: 'text or json (default text)', placeholder: 'FORMAT' },
  'log-level': { type: 'string', doc: 'debug, info, warn, error (default info)', placeholder: 'LEVEL' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

const FLAG_TO_KEY: Record<string, string> = {
  listen: 'listen',
  'ro-listen': 'ro_listen',
  'metrics-listen': 'metrics_listen',
  primary: 'primary',
  replica: 'replicas',
  'pool-mode': 'pool_mode',
  'pool-size': 'default_pool_size',
  'max-client-conn': 'max_client_conn',
  workers: 'workers',
  auth: 'auth_type',
  'auth-file': 'auth_file',
  'admin-user': 'admin_users',
  'client-tls-sslmode': 'client_tls_sslmode',
  'client-tls-cert': 'client_tls_cert_file',
  'client-tls-key': 'client_tls_key_file',
};

function buildConfig(flags: Record<string, unknown>): { config: ProxyConfig; file: string | undefined } {
  const file = flags['config'] as string | undefined;
  const base: Record<string, unknown> = file
    ? { ...(loadProxyConfig(file) as unknown as Record<string, unknown>) }
    : {};
  for (const [flag, key] of Object.entries(FLAG_TO_KEY)) if (flags[flag] !== undefined) base[key] = flags[flag];
  if (flags['etcd'] !== undefined || flags['scope'] !== undefined) {
    base['etcd'] = {
      hosts: flags['etcd'] ?? [],
      scope: flags['scope'],
      ...(flags['namespace'] ? { namespace: flags['namespace'] } : {}),
    };
  }
  for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k];
  return { config: proxyConfigFromObject(base, file ?? 'command line'), file };
}

export async function runProxyCommand(argv: string[]): Promise<number> {
  let flags: Record<string, unknown>;
  try {
    const parsed = parseArgs(argv, SPEC);
    if (parsed.positional.length) throw new UsageError(`unexpected argument "${parsed.positional[0]}"`);
    flags = parsed.flags;
  } catch (err) {
    process.stderr.write(`pgkeel proxy: ${(err as Error).message}\n`);
    return 2;
  }
  if (flags['help']) {
    process.stdout.write(
      `Usage: pgkeel proxy -c proxy.yml | --listen HOST:PORT (--primary HOST:PORT | --etcd HOST:PORT --scope NAME) [options]\n\n${usage(SPEC)}\n`,
    );
    return 0;
  }
  let config: ProxyConfig;
  let file: string | undefined;
  try {
    ({ config, file } = buildConfig(flags));
  } catch (err) {
    process.stderr.write(`pgkeel proxy: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 2 : 1;
  }
  const format = flags['log-format'] === 'json' ? 'json' : 'text';
  const level = (['debug', 'info', 'warn', 'error'] as const).find((l) => l === flags['log-level']) ?? 'info';
  const log = createLogger({ format, level });
  const proxy = await startProxy(config, { log, workerLog: { format, level }, ...(file ? { configFile: file } : {}) });
  process.stdout.write(
    `pgkeel proxy: read-write ${proxy.rwAddress}${proxy.roAddress ? `, read-only ${proxy.roAddress}` : ''}${proxy.metricsAddress ? `, metrics http://${proxy.metricsAddress}/metrics` : ''}\n`,
  );
  let signals = 0;
  const onStop = (): void => {
    if (++signals === 1) void proxy.shutdown();
    else void proxy.close();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  const onHup = (): void => {
    try {
      proxy.reload();
    } catch (err) {
      log.error('SIGHUP: reload refused, keeping the running configuration', { err: (err as Error).message });
    }
  };
  process.on('SIGHUP', onHup);
  await proxy.done;
  process.off('SIGTERM', onStop);
  process.off('SIGINT', onStop);
  process.off('SIGHUP', onHup);
  return 0;
}
