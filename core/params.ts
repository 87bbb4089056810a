// A small name → value list for per-client parameters: a flat array, a few dozen bytes where a Map costs ~400.

/** Lists shared by content (see share()): bounded, so unique lists from hostile clients cannot grow it. */
const SHARED_MAX_ENTRIES = 1024;
const SHARED_MAX_KEY = 512;
const sharedLists = new Map<string, ReadOnlyParamList>();

/** The key of a list's content in sharedLists, or null when too long to share. */
function contentKey(kv: readonly string[]): string | null {
  let key = "";
  for (let i = 0; i < kv.length; i++) key += kv[i] + "\0"; // names and values are C strings: no NUL inside
  return key.length > SHARED_MAX_KEY ? null : key;
}

/** The shared read-only list of this content (made on first request), or null when the table is full. */
function sharedList(kv: string[]): ReadOnlyParamList | null {
  const key = contentKey(kv);
  if (key === null) return null;
  const hit = sharedLists.get(key);
  if (hit !== undefined || sharedLists.size >= SHARED_MAX_ENTRIES) return hit ?? null;
  const list = new ReadOnlyParamList(Object.freeze(kv.slice()) as string[]);
  sharedLists.set(key, list);
  return list;
}

/**
 * Per-client parameter sets (startup parameters, reported values, settings) hold a handful of entries each, and
 * every idle client keeps several of them: a JSC Map allocates a ~400-byte table on its first entry, this a
 * flat [name, value, ...] array made on first set. Lookups are linear, which for under ~20 entries is as fast.
 * Names are compared exactly; callers normalize case where PostgreSQL does.
 */
export class ParamList implements Iterable<[string, string]> {
  /** Never changed in place (see own()); frozen while shared (see share()). No flag field: it would make every list 16 bytes larger. */
  protected kv: string[] | null = null;

  /**
   * Makes this list use one copy shared with every list of the same content: ten thousand clients of one
   * application send the same startup parameters. Called once a client's login is complete; later changes copy.
   */
  share(): void {
    const kv = this.kv;
    if (kv === null || Object.isFrozen(kv)) return;
    const shared = sharedList(kv);
    if (shared !== null) this.kv = shared.kv;
  }

  /**
   * For a list that never changes again (a client's startup parameters once it is logged in): the one shared
   * read-only list of the same content, so ten thousand such clients hold one list object, not one each. Returns
   * this list itself when it is empty or cannot be shared.
   */
  readOnly(): ParamList {
    return this.kv === null ? this : (sharedList(this.kv) ?? this);
  }

  /**
   * A fresh copy of the list's array, about to be changed: an array is never changed once made, so it is the
   * identity of the content (see identity()). A change is rare (a startup parameter, a SET); a link that compares is not.
   */
  private own(): string[] {
    const kv = this.kv;
    return (this.kv = kv === null ? [] : kv.slice());
  }

  /**
   * Same object, same content: the array is replaced on every change, and lists sharing one content share it
   * (share()). null for a list never set. Lets a plugin remember what it compared (parameter-tracking).
   * A method, not a getter: JSC sizes every instance of a class by its prototype's non-function properties
   * (accessors included), and a getter here made each ParamList a 48-byte cell instead of 32 (64 B per client).
   */
  identity(): object | null {
    return this.kv;
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

/** A shared list of startup parameters: several clients hold it, so it cannot be changed. */
class ReadOnlyParamList extends ParamList {
  constructor(kv: string[]) {
    super();
    this.kv = kv;
  }

  override set(name: string): this {
    throw new TypeError(`cannot set ${name}: the startup parameters of a logged-in client are read-only`);
  }

  override delete(name: string): boolean {
    throw new TypeError(`cannot delete ${name}: the startup parameters of a logged-in client are read-only`);
  }
}

/**
 * A Map that counts its changes (a server's reported parameters and applied settings): a plugin that compared
 * them can tell they are the same since. Changes are rare (ParameterStatus, a SET); reads are the plain Map's.
 * One per server, never per client.
 */
export class VersionedMap extends Map<string, string> {
  version = 0;

  override set(name: string, value: string): this {
    if (super.get(name) !== value) this.version++;
    return super.set(name, value);
  }

  override delete(name: string): boolean {
    if (!super.delete(name)) return false;
    this.version++;
    return true;
  }

  override clear(): void {
    if (this.size > 0) this.version++;
    super.clear();
  }
}
