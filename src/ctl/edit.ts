/**
 * `pgkeel ctl edit-config --set key=value`: builds a JSON merge patch from dotted keys and YAML scalars
 * (`postgresql.parameters.work_mem=8MB`, `ttl=30`, `pause=null` deletes), and shows what it changes.
 */
import { parse } from 'yaml';
import { getOwn, setOwn } from '../lib/own.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The merge patch for the `--set` items, or the first malformed item. */
export function patchFromSets(sets: readonly string[]): { patch: Json } | { error: string } {
  const patch: Json = {};
  for (const item of sets) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    const path = key.split('.');
    if (!key || path.some((p) => p === ''))
      return {
        error: `--set expects key=value with a dotted key (e.g. postgresql.parameters.work_mem=8MB), got "${item}"`,
      };
    let value: unknown;
    try {
      value = parse(item.slice(eq + 1));
    } catch (err) {
      return { error: `--set ${key}: the value is not a YAML scalar: ${(err as Error).message.split('\n')[0]}` };
    }
    if (value !== null && typeof value === 'object')
      return {
        error: `--set ${key}: expected a scalar value (string, number, true/false, null), got a YAML ${Array.isArray(value) ? 'list' : 'mapping'}`,
      };
    // Own properties only: `--set __proto__.x=1` must become a key the server refuses, not change Object.prototype.
    let cur = patch;
    for (const p of path.slice(0, -1)) {
      if (!isObject(getOwn(cur, p))) setOwn(cur, p, {});
      cur = getOwn(cur, p) as Json;
    }
    setOwn(cur, path[path.length - 1] as string, value === undefined ? null : value);
  }
  return { patch };
}

function flatten(v: unknown, prefix: string, out: Map<string, string>): void {
  if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(v).length === 0 && prefix) out.set(prefix, '{}');
  } else out.set(prefix, JSON.stringify(v));
}

/** "- key: old" / "+ key: new" lines for every leaf that differs, sorted by key. */
export function configDiff(before: unknown, after: unknown): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(before, '', a);
  flatten(after, '', b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const lines: string[] = [];
  for (const k of keys) {
    if (a.get(k) === b.get(k)) continue;
    if (a.has(k)) lines.push(`- ${k}: ${a.get(k)}`);
    if (b.has(k)) lines.push(`+ ${k}: ${b.get(k)}`);
  }
  return lines;
}
