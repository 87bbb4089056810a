// A small name → value list for per-client parameters: a flat array, a few dozen bytes where a Map costs ~400.

/**
 * Per-client parameter sets (startup parameters, reported values, settings) hold a handful of entries each, and
 * every idle client keeps several of them: a JSC Map allocates a ~400-byte table on its first entry, this a
 * flat [name, value, ...] array made on first set. Lookups are linear, which for under ~20 entries is as fast.
 * Names are compared exactly; callers normalize case where PostgreSQL does.
 */
export class ParamList implements Iterable<[string, string]> {
  private kv: string[] | null = null;

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
    if (i >= 0) this.kv![i + 1] = value;
    else (this.kv ??= []).push(name, value);
    return this;
  }

  delete(name: string): boolean {
    const i = this.indexOf(name);
    if (i < 0) return false;
    this.kv!.splice(i, 2);
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
