/**
 * The prepared statements one server connection holds (proxy-global names, prepared.ts), in least-recently-used
 * order, bounded by max_prepared_statements as pgBouncer 1.21+ does (src/prepare.c register_prepared_statement).
 *
 * Invariants: `lru` holds what the server has or will have once the messages already sent are processed; a name
 * leaves it when its Close (eviction) is sent, and `closing` counts those Closes until the server answers them.
 * A statement used in the current sync segment (the request being written) is never a victim: the limit may be
 * exceeded until a later request prepares something else.
 */

/** pgBouncer 1.24's default for max_prepared_statements. */
export const DEFAULT_MAX_PREPARED = 200;

export class ServerStatements {
  /** Name → sync segment of its last use. A Map iterates in insertion order: first = least recently used. */
  private readonly lru = new Map<string, number>();
  /** The most recently used name: re-using it (the common case) needs no reordering. */
  private newest: string | null = null;
  /** Names whose eviction Close is unanswered, with how many such Closes are in flight. */
  private closing: Map<string, number> | null = null;
  /** max_prepared_statements; 0: named statements are not tracked (prepared.ts passes them through). */
  limit = DEFAULT_MAX_PREPARED;

  get size(): number {
    return this.lru.size;
  }

  has(name: string): boolean {
    return this.lru.has(name);
  }

  /** `name` is (or is being) prepared and used by a message of segment `seg`: it becomes the most recent. */
  use(name: string, seg: number): void {
    if (this.newest !== name) {
      this.lru.delete(name);
      this.newest = name;
    }
    this.lru.set(name, seg);
  }

  /** The server does not have `name` (its Parse failed). */
  delete(name: string): void {
    this.lru.delete(name);
    if (this.newest === name) this.newest = null;
  }

  /** DISCARD ALL / DEALLOCATE ALL: the server has none. Closes in flight no longer matter either. */
  clear(): void {
    this.lru.clear();
    this.newest = null;
    this.closing = null;
  }

  /**
   * The least recently used statement while there are more than `limit`, unless it was used in segment `seg`
   * (then so was every newer one): removed and counted as closing. The caller sends its Close.
   */
  takeVictim(seg: number): string | null {
    if (this.limit <= 0 || this.lru.size <= this.limit) return null;
    const name = this.lru.keys().next().value as string;
    if ((this.lru.get(name) as number) >= seg) return null;
    this.delete(name);
    this.closing ??= new Map();
    this.closing.set(name, (this.closing.get(name) ?? 0) + 1);
    return name;
  }

  /** An eviction Close of `name` is still unanswered: the server may yet keep it (see closeSkipped). */
  isClosing(name: string): boolean {
    return this.closing !== null && this.closing.has(name);
  }

  /** The server answered an eviction Close of `name` (CloseComplete): it no longer has it. */
  closed(name: string): void {
    this.uncount(name);
  }

  /**
   * An error made the server skip an eviction Close of `name` (the rest of that segment is skipped): it still has
   * the statement. Put back as the least recently used, unless it was prepared again meanwhile — that Parse is
   * preceded by its own Close (prepared.ts), so the name then stays as it is.
   */
  closeSkipped(name: string): void {
    if (!this.uncount(name) || this.lru.has(name)) return;
    const rest = [...this.lru];
    this.lru.clear();
    this.lru.set(name, -1);
    for (const [k, v] of rest) this.lru.set(k, v);
    if (rest.length === 0) this.newest = name;
  }

  /** Names in LRU order (tests, diagnostics). */
  names(): string[] {
    return [...this.lru.keys()];
  }

  private uncount(name: string): boolean {
    const n = this.closing?.get(name);
    if (n === undefined) return false;
    if (n > 1) (this.closing as Map<string, number>).set(name, n - 1);
    else (this.closing as Map<string, number>).delete(name);
    return true;
  }
}
