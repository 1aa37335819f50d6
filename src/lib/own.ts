/**
 * Own-property access for objects keyed by untrusted names (JSON bodies, YAML files, `--set` keys): a plain
 * `o[k] = v` with k = "__proto__" replaces o's prototype instead of adding a key, and `o[k]` with k = "constructor"
 * reads Object.prototype. These never do either.
 */

/** `o[k]` if `o` has it as its own property, else undefined. */
export function getOwn(o: Readonly<Record<string, unknown>>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

/** Sets `o[k] = v` as an own, enumerable data property, whatever `k` is. */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
