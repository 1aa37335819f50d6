/**
 * `pgkeel ready -c node.yml [--timeout S]`: exits 0 once this node's agent answers /liveness (src/deploy/ready.ts),
 * 1 when it does not within S seconds (default 90). The systemd unit's ExecStartPost.
 */
import { loadConfig } from '../config/load.js';
import { livenessUrl, restGetter, waitLive } from '../deploy/ready.js';
import { sleep } from '../lib/proc.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', short: 'c', doc: 'node config file (YAML)', placeholder: 'FILE' },
  timeout: { type: 'number', doc: 'seconds to wait (default 90)', placeholder: 'S' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

export async function runReady(argv: readonly string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS);
  if (flags['help']) {
    process.stdout.write(`Usage: pgkeel ready -c node.yml [--timeout S]\n\n${usage(FLAGS)}\n`);
    return 0;
  }
  const file = flags['config'] as string | undefined;
  if (!file) throw new UsageError('pgkeel ready needs -c node.yml');
  const cfg = loadConfig(file);
  const url = livenessUrl(cfg);
  const timeout = ((flags['timeout'] as number | undefined) ?? 90) * 1000;
  const res = await waitLive(url, timeout, { now: Date.now, sleep, get: restGetter(cfg) });
  if (res.ok) process.stdout.write(`${url.href}: 200, the agent is running\n`);
  else
    process.stderr.write(
      `pgkeel ready: ${url.href} did not answer 200 within ${timeout / 1000} s (last: ${res.last})\n`,
    );
  return res.ok ? 0 : 1;
}
