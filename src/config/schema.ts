/**
 * A small schema language for pgkeel's YAML config: every setting declared once with its type, default, unit and
 * description. `validate` collects every problem (key path + expected form + what it got), rejects unknown keys
 * with a "did you mean", and fills defaults; `describe` walks the same tree to generate docs/config.md.
 */

export type Schema =
  | { kind: 'string'; doc: string; default?: string; pattern?: RegExp; expected?: string; secret?: boolean; required?: boolean }
  | { kind: 'int'; doc: string; default?: number; min?: number; max?: number; unit?: string; required?: boolean }
  | { kind: 'bool'; doc: string; default?: boolean }
  | { kind: 'enum'; doc: string; values: readonly string[]; default?: string }
  | { kind: 'list'; doc: string; of: Schema; default?: unknown[]; commaString?: boolean }
  | { kind: 'map'; doc: string; default?: Record<string, unknown>; values: 'scalar' | 'string' }
  | { kind: 'object'; doc: string; fields: Record<string, Schema>; optional?: boolean };

export interface Problem {
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly problems: readonly Problem[],
    readonly source: string,
  ) {
    super(`${source}: ${problems.length} problem(s) in the configuration:\n` + problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

export function didYouMean(word: string, choices: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of choices) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Validates `value` against `schema`, returning the value with defaults filled in (or undefined) and all problems. */
export function validate(schema: Schema, value: unknown, path = ''): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const out = check(schema, value, path, problems);
  return { value: out, problems };
}

function expectedOf(s: Schema): string {
  switch (s.kind) {
    case 'string':
      return s.expected ?? 'a string';
    case 'int':
      return `an integer${s.unit ? ` (${s.unit})` : ''}${s.min !== undefined ? ` >= ${s.min}` : ''}${s.max !== undefined ? ` <= ${s.max}` : ''}`;
    case 'bool':
      return 'true or false';
    case 'enum':
      return `one of ${s.values.join(', ')}`;
    case 'list':
      return `a list of ${expectedOf(s.of)}`;
    case 'map':
      return 'a mapping of names to values';
    case 'object':
      return `a mapping with keys ${Object.keys(s.fields).join(', ')}`;
  }
}

function check(s: Schema, v: unknown, path: string, problems: Problem[]): unknown {
  if (v === undefined || v === null) {
    if (s.kind === 'object') return s.optional ? undefined : check(s, {}, path, problems);
    if ('required' in s && s.required) {
      problems.push({ path, message: `is required: expected ${expectedOf(s)}` });
      return undefined;
    }
    if ('default' in s && s.default !== undefined) return structuredClone(s.default);
    if (s.kind === 'list') return [];
    if (s.kind === 'map') return {};
    return undefined;
  }
  const bad = () => {
    problems.push({ path, message: `expected ${expectedOf(s)}, got ${show(v)}` });
    return undefined;
  };
  switch (s.kind) {
    case 'string': {
      const str = typeof v === 'number' ? String(v) : v;
      if (typeof str !== 'string') return bad();
      if (s.pattern && !s.pattern.test(str)) return bad();
      return str;
    }
    case 'int': {
      const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) return bad();
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) return bad();
      return n;
    }
    case 'bool': {
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'on' || v === 'yes') return true;
      if (v === 'false' || v === 'off' || v === 'no') return false;
      return bad();
    }
    case 'enum': {
      const str = typeof v === 'boolean' ? String(v) : v;
      if (typeof str !== 'string' || !s.values.includes(str)) {
        const hint = typeof str === 'string' ? didYouMean(str, s.values) : undefined;
        problems.push({ path, message: `expected ${expectedOf(s)}, got ${show(v)}${hint ? ` (did you mean "${hint}"?)` : ''}` });
        return undefined;
      }
      return str;
    }
    case 'list': {
      let arr: unknown = v;
      if (s.commaString && typeof v === 'string') arr = v.split(',').map((x) => x.trim()).filter(Boolean);
      if (!Array.isArray(arr)) return bad();
      return arr.map((item, i) => check(s.of, item, `${path}[${i}]`, problems));
    }
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v)) return bad();
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        const ok = s.values === 'string' ? typeof item === 'string' : ['string', 'number', 'boolean'].includes(typeof item);
        if (!ok) problems.push({ path: join(path, k), message: `expected ${s.values === 'string' ? 'a string' : 'a string, number or boolean'}, got ${show(item)}` });
        else out[k] = item;
      }
      return out;
    }
    case 'object': {
      if (typeof v !== 'object' || Array.isArray(v)) return bad();
      const obj = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      const known = Object.keys(s.fields);
      for (const k of Object.keys(obj)) {
        if (!(k in s.fields)) {
          const hint = didYouMean(k, known);
          problems.push({ path: join(path, k), message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; allowed here: ${known.join(', ')}` });
        }
      }
      for (const [k, fs] of Object.entries(s.fields)) {
        const r = check(fs, obj[k], join(path, k), problems);
        if (r !== undefined) out[k] = r;
      }
      return out;
    }
  }
}

export interface SettingDoc {
  readonly path: string;
  readonly type: string;
  readonly default: string;
  readonly doc: string;
  readonly secret: boolean;
}

/** Flattens the schema into one row per setting (for docs/config.md and env variable names). */
export function describe(s: Schema, path = ''): SettingDoc[] {
  if (s.kind === 'object') return Object.entries(s.fields).flatMap(([k, f]) => describe(f, join(path, k)));
  const def = 'default' in s && s.default !== undefined ? JSON.stringify(s.default) : '';
  return [{ path, type: expectedOf(s), default: def, doc: s.doc, secret: s.kind === 'string' && !!s.secret }];
}

/** Finds the schema node at a dotted path (for env overrides). */
export function schemaAt(s: Schema, path: readonly string[]): Schema | undefined {
  let cur: Schema | undefined = s;
  for (const p of path) {
    if (!cur || cur.kind !== 'object') return undefined;
    cur = cur.fields[p];
  }
  return cur;
}
