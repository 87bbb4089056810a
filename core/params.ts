// A small name → value list for per-client parameters: a flat array, a few dozen bytes where a Map costs ~400.

/** Lists shared by content (see share()): bounded, so unique lists from hostile clients cannot grow it. */
const SHARED_MAX_ENTRIES = 1024;
const SHARED_MAX_KEY = 512;
const sharedLists = new Map<string, string[]>();

/**
 * Per-client parameter sets (startup parameters, reported values, settings) hold a handful of entries each, and
 * every idle client keeps several of them: a JSC Map allocates a ~400-byte table on its first entry, this a
 * flat [name, value, ...] array made on first set. Lookups are linear, which for under ~20 entries is as fast.
 * Names are compared exactly; callers normalize case where PostgreSQL does.
 */
export class ParamList implements Iterable<[string, string]> {
  /** Frozen while shared (see share()): copied before any change. No flag field: it would make every list 16 bytes larger. */
  private kv: string[] | null = null;

  /**
   * Makes this list use one copy shared with every list of the same content: ten thousand clients of one
   * application send the same startup parameters. Called once a client's login is complete; later changes copy.
   */
  share(): void {
    const kv = this.kv;
    if (kv === null || Object.isFrozen(kv)) return;
    let key = "";
    for (let i = 0; i < kv.length; i++) key += kv[i] + "\0"; // names and values are C strings: no NUL inside
    if (key.length > SHARED_MAX_KEY) return;
    const hit = sharedLists.get(key);
    if (hit !== undefined) this.kv = hit;
    else if (sharedLists.size < SHARED_MAX_ENTRIES) sharedLists.set(key, Object.freeze(kv) as string[]);
  }

  /** The list's own array, copied first when shared. */
  private own(): string[] {
    const kv = this.kv;
    if (kv === null) return (this.kv = []);
    return Object.isFrozen(kv) ? (this.kv = kv.slice()) : kv;
  }

  private indexOf(name: string): number {
    const kv = this.kv;
    if (kv === null) return -1;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) return i;
    return -1;
  }

  get size(): number {
    return this.kv === null ? 0 : this.kv.length >> 1;
  }

  get(name: string): string | undefined {
    const i = this.indexOf(name);
    return i < 0 ? undefined : this.kv![i + 1];
  }

  has(name: string): boolean {
    return this.indexOf(name) >= 0;
  }

  set(name: string, value: string): this {
    const i = this.indexOf(name);
    if (i >= 0) {
      if (this.kv![i + 1] !== value) this.own()[i + 1] = value;
    } else this.own().push(name, value);
    return this;
  }

  delete(name: string): boolean {
    const i = this.indexOf(name);
    if (i < 0) return false;
    this.own().splice(i, 2);
    return true;
  }

  *keys(): IterableIterator<string> {
    const kv = this.kv;
    if (kv !== null) for (let i = 0; i < kv.length; i += 2) yield kv[i]!;
  }

  /** Entries in insertion order; a snapshot, so the list may be changed while iterating. */
  *entries(): IterableIterator<[string, string]> {
    const kv = this.kv === null ? [] : this.kv.slice();
    for (let i = 0; i < kv.length; i += 2) yield [kv[i]!, kv[i + 1]!];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}
