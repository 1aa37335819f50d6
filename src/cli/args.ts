/**
 * A small argv parser: `--flag value`, `--flag=value`, boolean `--flag`, short aliases, repeated flags.
 * Unknown flags are refused with a "did you mean" so a typo never silently changes what a command does.
 */
import { didYouMean } from '../config/schema.js';

export interface FlagSpec {
  readonly type: 'string' | 'boolean' | 'number' | 'list';
  readonly short?: string;
  readonly doc: string;
  readonly placeholder?: string;
}

export type Parsed = { flags: Record<string, string | boolean | number | string[] | undefined>; positional: string[] };

export class UsageError extends Error {
  readonly code = 'CLI_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, FlagSpec>>): Parsed {
  const flags: Parsed['flags'] = {};
  const positional: string[] = [];
  const byShort = new Map(
    Object.entries(spec)
      .filter(([, s]) => s.short)
      .map(([k, s]) => [s.short as string, k]),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (!name) throw new UsageError(`unknown option ${arg}`);
    } else {
      positional.push(arg);
      continue;
    }
    const s = Object.hasOwn(spec, name) ? spec[name] : undefined; // `--constructor` is unknown, not Object
    if (!s) {
      const hint = didYouMean(name, Object.keys(spec));
      throw new UsageError(`unknown option --${name}${hint ? ` (did you mean --${hint}?)` : ''}`);
    }
    if (s.type === 'boolean') {
      flags[name] = inline === undefined ? true : !['false', '0', 'no'].includes(inline);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value (${s.placeholder ?? s.type})`);
    if (s.type === 'number') {
      const n = Number(value);
      if (!Number.isInteger(n)) throw new UsageError(`option --${name} expects an integer, got "${value}"`);
      flags[name] = n;
    } else if (s.type === 'list') {
      const cur = flags[name];
      flags[name] = [...(Array.isArray(cur) ? cur : []), value];
    } else flags[name] = value;
  }
  return { flags, positional };
}

export function usage(spec: Readonly<Record<string, FlagSpec>>): string {
  return Object.entries(spec)
    .map(([k, s]) => {
      const left = `${s.short ? `-${s.short}, ` : '    '}--${k}${s.type === 'boolean' ? '' : ` ${s.placeholder ?? s.type.toUpperCase()}`}`;
      return `  ${left.padEnd(30)} ${s.doc}`;
    })
    .join('\n');
}
