/**
 * RFC 7396 JSON merge patch, as PATCH /config applies it to the DCS `config` key and `pgkeel ctl edit-config`
 * previews it: objects merge, `null` deletes, anything else replaces.
 */
import { getOwn, setOwn } from '../lib/own.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * RFC 7396 JSON merge patch; returns a new value, never changes its inputs. Keys are own properties whatever their
 * name, so a `__proto__` or `constructor` in a patch stays a key the validation then refuses.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Json = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else setOwn(out, k, mergePatch(getOwn(out, k), v));
  }
  return out;
}
