/**
 * PATCH and PUT /config: the DCS `config` key (Patroni's dynamic configuration) changed over REST.
 * PATCH is a JSON merge patch (RFC 7396: objects merge, `null` deletes) written with compare-and-swap on the
 * key's modRevision; PUT replaces the whole value. Either result is validated with the same schema the agents
 * read it with (`dynamicFields`), so a typo is refused here instead of being ignored by every agent.
 */
import { encodeJson } from '../dcs/layout.js';
import { dynamicFields } from '../config/node.js';
import { LOCAL_ONLY_CODE, localOnlyProblems } from '../config/pg-params.js';
import { didYouMean, validate, type Problem, type Schema } from '../config/schema.js';
import { mergePatch } from '../cluster/merge-patch.js';
import type { ApiDeps } from './ports.js';
import type { ActionResult } from './actions-common.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

const DYNAMIC: Schema = { kind: 'object', doc: 'the DCS config key', fields: dynamicFields };

/**
 * Every problem of a dynamic config value, each with its key path: the `dynamicFields` schema (unknown keys with
 * a "did you mean", parameter names and values), `pause` (true/false or absent), local-only parameters
 * (archive_command, ...) unless `allowed` (the node's postgresql.allow_dynamic_parameters) lists them, and the HA
 * safety rule `loop_wait + 2*retry_timeout <= ttl` on the effective values (defaults filled in).
 */
export function configProblems(value: Json, allowed: readonly string[] = []): Problem[] {
  const { pause, ...rest } = value;
  const problems: Problem[] = [];
  if (pause !== undefined && typeof pause !== 'boolean')
    problems.push({ path: 'pause', message: `expected true or false, got ${JSON.stringify(pause)}` });
  const res = validate(DYNAMIC, rest);
  for (const p of res.problems) {
    if (p.path.includes('.') || !p.message.startsWith('unknown key')) {
      problems.push(p);
      continue;
    }
    // `pause` is allowed beside the schema's fields, so the top-level hint and list must know it too.
    const hint = p.message.includes('did you mean') || !didYouMean(p.path, ['pause']) ? '' : ' (did you mean "pause"?)';
    problems.push({ path: p.path, message: `${p.message.replace('unknown key', `unknown key${hint}`)}, pause` });
  }
  // The well-formed parameters (validate keeps those) are checked even when something else is wrong.
  const valid = res.value as
    | { ttl: number; loop_wait: number; retry_timeout: number; postgresql?: { parameters?: Json } }
    | undefined;
  problems.push(...localOnlyProblems(valid?.postgresql?.parameters ?? {}, 'postgresql.parameters', allowed));
  const eff = valid;
  if (res.problems.length === 0 && eff) {
    if (eff.loop_wait + 2 * eff.retry_timeout > eff.ttl) {
      problems.push({
        path: 'ttl',
        message: `must be at least loop_wait + 2*retry_timeout (${eff.loop_wait} + 2*${eff.retry_timeout} = ${eff.loop_wait + 2 * eff.retry_timeout}), got ${eff.ttl}`,
      });
    }
  }
  return problems;
}

function invalid(problems: Problem[]): ActionResult {
  const code = problems.every((p) => p.code === LOCAL_ONLY_CODE) ? LOCAL_ONLY_CODE : 'CONFIG_INVALID';
  return { code: 400, body: { code, error: `${problems.length} problem(s) in the configuration`, problems } };
}

/** Stable JSON text (sorted keys) to tell whether a patch changed anything. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

async function readConfig({ store, keys }: ApiDeps): Promise<{ value: Json; modRevision: number } | undefined> {
  const kv = await store.get(keys.config);
  if (!kv || kv.value === '') return undefined;
  try {
    const v: unknown = JSON.parse(kv.value);
    return isObject(v) ? { value: v, modRevision: kv.modRevision } : undefined;
  } catch {
    return undefined;
  }
}

/** PATCH /config: 200 new config / 400 invalid / 409 changed concurrently / 503 no config in the DCS. */
export async function patchConfig(body: Json, deps: ApiDeps): Promise<ActionResult> {
  if (Object.keys(body).length === 0) return { code: 400, body: 'expected a JSON object with the keys to change' };
  let cur: Awaited<ReturnType<typeof readConfig>>;
  try {
    cur = await readConfig(deps);
  } catch (err) {
    return { code: 503, body: `cannot read the config key from the DCS: ${(err as Error).message}` };
  }
  if (!cur) return { code: 503, body: 'no configuration in the DCS (the config key is missing or unreadable)' };
  const next = mergePatch(cur.value, body) as Json;
  const problems = configProblems(next, deps.cfg.postgresql.allow_dynamic_parameters);
  if (problems.length) return invalid(problems);
  if (canonical(next) === canonical(cur.value)) return { code: 200, body: next };
  const { store, keys } = deps;
  let ok: boolean;
  try {
    ok = await store.compareAndPut(keys.config, encodeJson(next), { modRevision: cur.modRevision });
  } catch (err) {
    return { code: 503, body: `cannot write the config key to the DCS: ${(err as Error).message}` };
  }
  if (!ok)
    return { code: 409, body: `the config key changed since it was read (modRevision ${cur.modRevision}); retry` };
  deps.agent.poke();
  return { code: 200, body: next };
}

/** PUT /config: 200 the new config / 400 invalid / 502 the DCS write failed. */
export async function putConfig(body: Json, deps: ApiDeps): Promise<ActionResult> {
  if (Object.keys(body).length === 0) return { code: 400, body: 'expected the whole configuration as a JSON object' };
  const problems = configProblems(body, deps.cfg.postgresql.allow_dynamic_parameters);
  if (problems.length) return invalid(problems);
  const { store, keys } = deps;
  try {
    await store.put(keys.config, encodeJson(body));
  } catch (err) {
    return { code: 502, body: `cannot write the config key to the DCS: ${(err as Error).message}` };
  }
  deps.agent.poke();
  return { code: 200, body };
}
