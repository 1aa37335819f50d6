/**
 * A small schema language for pgkeel's YAML config: every setting declared once with its type, default, unit and
 * description. `validate` collects every problem (key path + expected form + what it got), rejects unknown keys
 * with a "did you mean", and fills defaults; `describe` walks the same tree to generate docs/config.md.
 *
 * Input is untrusted (a file, an environment, a REST body): keys are looked up as own properties only, so
 * `constructor`, `toString` or `__proto__` are unknown keys like any other; map keys that name Object.prototype
 * members are refused; strings carry no control characters (a newline would add lines to a rendered file) unless
 * a setting is declared `multiline`. Every `secret: true` string setting `k` also accepts `k_file` (a file holding
 * the secret, read at load when the caller passes `secretFiles`), so a secret added later gets it for free.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export type Schema =
  | {
      kind: 'string';
      doc: string;
      default?: string;
      pattern?: RegExp;
      expected?: string;
      secret?: boolean;
      required?: boolean;
      /** Newlines and tabs allowed (e.g. an SQL query); other control characters are still refused. */
      multiline?: boolean;
      /** A further rule on a well-formed value: returns the problem ("expected ..., got ...") or undefined. */
      check?: (v: string) => string | undefined;
    }
  | { kind: 'int'; doc: string; default?: number; min?: number; max?: number; unit?: string; required?: boolean }
  | { kind: 'bool'; doc: string; default?: boolean }
  | { kind: 'enum'; doc: string; values: readonly string[]; default?: string }
  | { kind: 'list'; doc: string; of: Schema; default?: unknown[]; commaString?: boolean }
  | {
      kind: 'map';
      doc: string;
      default?: Record<string, unknown>;
      values: 'scalar' | 'string';
      keys?: { pattern: RegExp; expected: string };
      // --- permanent slots (issue 14): a map whose values are checked by a schema of their own (`slots`). ---
      entry?: Schema;
    }
  | {
      kind: 'object';
      doc: string;
      fields: Record<string, Schema>;
      optional?: boolean;
      // --- permanent slots (issue 14): a rule across the fields of one well-formed value. ---
      rule?: (v: Record<string, unknown>) => { readonly key: string; readonly message: string } | undefined;
    };

export interface Problem {
  readonly path: string;
  readonly message: string;
  /** A stable code when the problem has its own entry in docs/errors.md (otherwise it is a CONFIG_INVALID). */
  readonly code?: string;
}

export interface ValidateOptions {
  /** Enables `<key>_file` for secrets: relative file names are taken from baseDir. Absent: `_file` keys are refused. */
  readonly secretFiles?: { readonly baseDir: string; readonly read?: (file: string) => string };
}

/** C0 control characters and DEL, except tab; `multiline` settings may also hold newlines. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const CONTROL_NOT_NEWLINE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** Whether a string holds a control character (other than tab) that could end a line in a rendered file. */
export function hasControlChar(v: string): boolean {
  return CONTROL.test(v);
}

/** The problem with the port of a well-formed "host:port", or undefined: ports are 1-65535 (0 only when allowed). */
export function portProblem(hostPort: string, allowZero = false): string | undefined {
  const port = Number(/:(\d+)$/.exec(hostPort)?.[1]);
  const min = allowZero ? 0 : 1;
  return Number.isInteger(port) && port >= min && port <= 65535
    ? undefined
    : `expected a port from ${min} to 65535${allowZero ? ' (0: any free port)' : ''}, got ${JSON.stringify(hostPort)}`;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly problems: readonly Problem[],
    readonly source: string,
  ) {
    super(
      `${source}: ${problems.length} problem(s) in the configuration:\n` +
        problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n'),
    );
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

/** A key path segment; a key that is not a plain name is shown quoted, so a newline in it cannot break the output. */
export const join = (path: string, key: string) =>
  /^[A-Za-z0-9_.$-]+$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;

/** Names inherited from Object.prototype: refused as map keys, so no lookup can ever mistake them for data. */
export const isReservedKey = (k: string): boolean => Object.hasOwn(Object.prototype, k) || k === '__proto__';

/** Validates `value` against `schema`, returning the value with defaults filled in (or undefined) and all problems. */
export function validate(
  schema: Schema,
  value: unknown,
  path = '',
  opts: ValidateOptions = {},
): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const out = check(schema, value, path, problems, opts);
  return { value: out, problems };
}

const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
const isSecret = (s: Schema | undefined): boolean => s?.kind === 'string' && s.secret === true;

/** Every key an object accepts: its fields, and `<field>_file` for each secret field. */
function allowedKeys(fields: Record<string, Schema>): string[] {
  return [...new Set(Object.entries(fields).flatMap(([k, f]) => (isSecret(f) ? [k, `${k}_file`] : [k])))];
}

/**
 * The value of secret `k` read from `k_file` (which is set), or undefined after recording the problem. The file is relative to the
 * config file; one trailing newline is removed (as `echo pw > file` writes it); an empty file is refused.
 */
function secretFromFile(
  obj: Record<string, unknown>,
  k: string,
  path: string,
  problems: Problem[],
  opts: ValidateOptions,
): string | undefined {
  const fk = `${k}_file`;
  const file = own(obj, fk);
  const at = join(path, fk);
  if (!opts.secretFiles) {
    problems.push({ path: at, message: `is not supported here; give ${k} itself` });
    return undefined;
  }
  if (own(obj, k) !== undefined && own(obj, k) !== null) {
    problems.push({ path: at, message: `give either ${k} or ${fk}, not both` });
    return undefined;
  }
  if (typeof file !== 'string' || file === '') {
    problems.push({ path: at, message: `expected a path to a file holding the secret, got ${show(file)}` });
    return undefined;
  }
  const full = resolve(opts.secretFiles.baseDir, file);
  try {
    const text = (opts.secretFiles.read ?? ((f: string) => readFileSync(f, 'utf8')))(full).replace(/\r?\n$/, '');
    if (text === '') problems.push({ path: at, message: `the file ${full} is empty` });
    return text === '' ? undefined : text;
  } catch (err) {
    problems.push({
      path: at,
      message: `cannot read the secret file ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    });
    return undefined;
  }
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
      return s.entry ? `a mapping of names to ${expectedOf(s.entry)}` : 'a mapping of names to values';
    case 'object':
      return `a mapping with keys ${Object.keys(s.fields).join(', ')}`;
  }
}

function check(s: Schema, v: unknown, path: string, problems: Problem[], opts: ValidateOptions): unknown {
  if (v === undefined || v === null) {
    if (s.kind === 'object') return s.optional ? undefined : check(s, {}, path, problems, opts);
    if ('required' in s && s.required) {
      problems.push({ path, message: `is required: expected ${expectedOf(s)}` });
      return undefined;
    }
    if ('default' in s && s.default !== undefined) return structuredClone(s.default);
    if (s.kind === 'list') return [];
    if (s.kind === 'map') return {};
    return undefined;
  }
  const got = isSecret(s) ? 'a value that is not shown (secret)' : show(v);
  const bad = () => {
    problems.push({ path, message: `expected ${expectedOf(s)}, got ${got}` });
    return undefined;
  };
  switch (s.kind) {
    case 'string': {
      const str = typeof v === 'number' ? String(v) : v;
      if (typeof str !== 'string') return bad();
      if ((s.multiline ? CONTROL_NOT_NEWLINE : CONTROL).test(str)) {
        problems.push({
          path,
          message: `must not contain control characters (newline, carriage return, NUL, ...), got ${got}`,
        });
        return undefined;
      }
      if (s.pattern && !s.pattern.test(str)) return bad();
      const more = s.check?.(str);
      if (more !== undefined) {
        problems.push({ path, message: more });
        return undefined;
      }
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
        problems.push({
          path,
          message: `expected ${expectedOf(s)}, got ${show(v)}${hint ? ` (did you mean "${hint}"?)` : ''}`,
        });
        return undefined;
      }
      return str;
    }
    case 'list': {
      let arr: unknown = v;
      if (s.commaString && typeof v === 'string')
        arr = v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
      if (!Array.isArray(arr)) return bad();
      return arr.map((item, i) => check(s.of, item, `${path}[${i}]`, problems, opts));
    }
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v)) return bad();
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        const at = join(path, k);
        if (isReservedKey(k))
          problems.push({
            path: at,
            message: `is a reserved name and cannot be used here${s.keys ? `; expected ${s.keys.expected}` : ''}`,
          });
        else if (s.keys && !s.keys.pattern.test(k))
          problems.push({ path: at, message: `expected the name to be ${s.keys.expected}, got ${show(k)}` });
        else if (s.entry) {
          const r = check(s.entry, item, at, problems, opts);
          if (r !== undefined) out[k] = r;
        } else if (
          !(s.values === 'string' ? typeof item === 'string' : ['string', 'number', 'boolean'].includes(typeof item))
        ) {
          problems.push({
            path: at,
            message: `expected ${s.values === 'string' ? 'a string' : 'a string, number or boolean'}, got ${show(item)}`,
          });
        } else if (typeof item === 'number' && !Number.isFinite(item)) {
          problems.push({ path: at, message: `expected a finite number, got ${show(item)}` });
        } else if (typeof item === 'string' && CONTROL.test(item)) {
          problems.push({
            path: at,
            message: `must not contain control characters (newline, carriage return, NUL, ...), got ${show(item)}`,
          });
        } else out[k] = item;
      }
      return out;
    }
    case 'object': {
      if (typeof v !== 'object' || Array.isArray(v)) return bad();
      const obj = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      const before = problems.length;
      const known = allowedKeys(s.fields);
      for (const k of Object.keys(obj)) {
        if (!known.includes(k)) {
          const hint = didYouMean(k, known);
          problems.push({
            path: join(path, k),
            message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; allowed here: ${known.join(', ')}`,
          });
        }
      }
      for (const [k, fs] of Object.entries(s.fields)) {
        const fileKey = `${k}_file`;
        // A section that declares its own `<k>_file` (etcd3.password_file: read later, mode checked) keeps it.
        if (
          isSecret(fs) &&
          !Object.hasOwn(s.fields, fileKey) &&
          own(obj, fileKey) !== undefined &&
          own(obj, fileKey) !== null
        ) {
          // A problem with the file is reported once, at the _file key (not again as "k is required").
          const fromFile = secretFromFile(obj, k, path, problems, opts);
          const r = fromFile === undefined ? undefined : check(fs, fromFile, join(path, fileKey), problems, opts);
          if (r !== undefined) out[k] = r;
          continue;
        }
        const r = check(fs, own(obj, k), join(path, k), problems, opts);
        if (r !== undefined) out[k] = r;
      }
      const broken = s.rule && problems.length === before ? s.rule(out) : undefined;
      if (broken) problems.push({ path: join(path, broken.key), message: broken.message });
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
  if (s.kind === 'object') {
    const rows = Object.entries(s.fields).flatMap(([k, f]) => describe(f, join(path, k)));
    // A declared `<k>_file` field replaces the generic row for it.
    const last = new Map(rows.map((r) => [r.path, r]));
    return rows.filter((r, i) => rows.findIndex((o) => o.path === r.path) === i).map((r) => last.get(r.path) ?? r);
  }
  const def = 'default' in s && s.default !== undefined ? JSON.stringify(s.default) : '';
  const row = { path, type: expectedOf(s), default: def, doc: s.doc, secret: isSecret(s) };
  if (!isSecret(s)) return [row];
  const key = path.slice(path.lastIndexOf('.') + 1);
  const fileDoc = `File holding ${key} (relative to the config file; one trailing newline removed); instead of ${key}, not with it.`;
  return [row, { path: `${path}_file`, type: 'a path', default: '', doc: fileDoc, secret: false }];
}

/** Finds the schema node at a dotted path (for env overrides). */
export function schemaAt(s: Schema, path: readonly string[]): Schema | undefined {
  let cur: Schema | undefined = s;
  for (const p of path) {
    if (!cur || cur.kind !== 'object' || !Object.hasOwn(cur.fields, p)) return undefined;
    cur = cur.fields[p];
  }
  return cur;
}
