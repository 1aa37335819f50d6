/** `pgkeel fence -c node.yml`: stop this node's PostgreSQL immediately (src/deploy/fence.ts; the unit's ExecStop). */
import { loadConfig } from '../config/load.js';
import { fencePostgres } from '../deploy/fence.js';
import { createLogger } from '../lib/log.js';
import { PostgresInstance } from '../postgres/instance.js';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', short: 'c', doc: 'node config file (YAML)', placeholder: 'FILE' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

export async function runFence(argv: readonly string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS);
  if (flags['help']) {
    process.stdout.write(`Usage: pgkeel fence -c node.yml\n\n${usage(FLAGS)}\n`);
    return 0;
  }
  const file = flags['config'] as string | undefined;
  if (!file) throw new UsageError('pgkeel fence needs -c node.yml');
  const cfg = loadConfig(file);
  const log = createLogger({ level: cfg.log.level, format: cfg.log.format }, { component: 'fence', node: cfg.name });
  process.stdout.write(`${await fencePostgres(new PostgresInstance(cfg, log), cfg.postgresql.data_dir)}\n`);
  return 0;
}
