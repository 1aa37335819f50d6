/**
 * Session parameters a client relies on in transaction pooling: kept per client (from its StartupMessage and the
 * ParameterStatus messages its own SETs cause) and per server connection, and re-applied on whichever server
 * connection serves the client when they differ (pgBouncer's varcache, src/varcache.c).
 *
 * search_path is not GUC_REPORT before PostgreSQL 18, so a server's value is only known when the proxy set it.
 */

/** Canonical names, as ParameterStatus spells them. */
export const TRACKED_PARAMS = [
  'application_name',
  'client_encoding',
  'DateStyle',
  'TimeZone',
  'IntervalStyle',
  'standard_conforming_strings',
  'search_path',
] as const;

const CANONICAL: ReadonlyMap<string, string> = new Map(TRACKED_PARAMS.map((p) => [p.toLowerCase(), p]));

/** The tracked name for a start-up/ParameterStatus key (GUC names are case-insensitive), or undefined. */
export function trackedName(name: string): string | undefined {
  return CANONICAL.get(name.toLowerCase());
}

/**
 * A small ordered map of tracked values with a cached comparison key, so the per-transaction check
 * "does this server need SETs for this client?" is one string comparison in the common case.
 */
export class ParamSet {
  private values: Map<string, string>;
  /** `values` is shared with other sets (copy on write): thousands of idle clients hold one map, not one each. */
  private shared = false;
  private keyCache: string | null = '';

  /** With `from`: an equal set sharing its storage until either side changes. */
  constructor(from?: ParamSet) {
    if (from === undefined) {
      this.values = new Map();
      return;
    }
    this.keyCache = from.key;
    this.values = from.values;
    this.shared = from.shared = true;
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  set(name: string, value: string): void {
    if (this.values.get(name) === value) return;
    this.own().set(name, value);
    this.keyCache = null;
  }

  delete(name: string): void {
    if (!this.values.has(name)) return;
    this.own().delete(name);
    this.keyCache = null;
  }

  private own(): Map<string, string> {
    if (this.shared) {
      this.values = new Map(this.values);
      this.shared = false;
    }
    return this.values;
  }

  entries(): IterableIterator<[string, string]> {
    return this.values.entries();
  }

  /** Values of every tracked parameter in a fixed order; equal keys mean nothing to SET. */
  get key(): string {
    if (this.keyCache === null) {
      let k = '';
      for (const p of TRACKED_PARAMS) k += (this.values.get(p) ?? '\u0001') + '\u0000';
      this.keyCache = k;
    }
    return this.keyCache;
  }
}

/** Shared ParamSets by key (see `shareParams`); bounded so clients with unique values cannot grow it. */
const SHARED_PARAMS = new Map<string, ParamSet>();
const SHARED_PARAMS_MAX = 1024;

/**
 * A set equal to `p` that shares storage with every other client whose parameters are the same (the key fixes
 * every tracked value). Saves a map per idle client; a later SET copies (ParamSet is copy-on-write).
 */
export function shareParams(p: ParamSet): ParamSet {
  const key = p.key;
  let base = SHARED_PARAMS.get(key);
  if (base === undefined) {
    if (SHARED_PARAMS.size >= SHARED_PARAMS_MAX) SHARED_PARAMS.clear();
    base = new ParamSet(p);
    SHARED_PARAMS.set(key, base);
  }
  return new ParamSet(base);
}

import { ProxyError, ProxyErrorCode } from '../errors.js';
/**
 * The `options` start-up parameter (PGOPTIONS): `-c name=value` / `--name=value` pairs separated by spaces
 * (backslash escapes a space). Only tracked parameters can be kept per client; anything else is refused.
 */
export function parseOptions(value: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  let any = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (ch === '\\' && i + 1 < value.length) {
      cur += value[++i];
      any = true;
    } else if (ch === ' ' || ch === '\t') {
      if (any) words.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i] as string;
    if (w === '-c') w = `--${words[++i] ?? ''}`;
    else if (w.startsWith('-c')) w = `--${w.slice(2)}`;
    const m = /^--([^=]+)=(.*)$/s.exec(w);
    const name = m ? trackedName((m[1] as string).replace(/-/g, '_')) : undefined;
    if (!m || !name)
      throw new ProxyError(ProxyErrorCode.StartupParameter, `unsupported startup parameter in options: ${words[i]}`, {
        parameter: 'options',
      });
    out.push([name, m[2] as string]);
  }
  return out;
}

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * The SQL that makes `server` match `client`, or null when they already match. set_config takes the raw string, so
 * list values (search_path) need no identifier quoting. A parameter the server has a value for and the client has
 * none (search_path: another client set it here, this one never did or RESET it) goes back to the server's
 * default — what RESET would give, read from pg_settings.reset_val, since set_config cannot reset.
 */
export function syncSql(client: ParamSet, server: ParamSet): string | null {
  if (client.key === server.key) return null;
  const calls: string[] = [];
  for (const [name, value] of client.entries()) {
    if (server.get(name) !== value) calls.push(`pg_catalog.set_config(${literal(name)}, ${literal(value)}, false)`);
  }
  for (const [name] of server.entries()) {
    if (client.get(name) === undefined) {
      calls.push(
        `pg_catalog.set_config(${literal(name)}, (SELECT reset_val FROM pg_catalog.pg_settings WHERE name = ${literal(name)}), false)`,
      );
    }
  }
  return calls.length ? `SELECT ${calls.join(', ')}` : null;
}

/** Applies what syncSql asked for to the server's record (the server reports only some of them back). */
export function applySync(client: ParamSet, server: ParamSet): void {
  for (const [name, value] of client.entries()) server.set(name, value);
  for (const [name] of [...server.entries()]) if (client.get(name) === undefined) server.delete(name);
}
