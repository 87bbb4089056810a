// One shared copy of what thousands of clients of one application repeat: statement names, query texts, shapes, type lists.
import { internTable } from "../../plugin-sdk/index.ts";

/** Bounded, so clients sending ever new texts cannot grow the tables: once full, new values are simply not shared. */
const MAX_ENTRIES = 8192;
const typeLists = new Map<string, readonly number[]>();
const NO_TYPES: readonly number[] = Object.freeze([]);

/**
 * The shared copy of `s`, kept when there is room. A statement's query text, key and shape are the same for every
 * client that prepares it; one copy each instead of one per client and statement (and a concatenated string is
 * flattened once, not kept as a rope of its pieces) is most of what an idle client's statements cost.
 */
export const shared: (s: string) => string = internTable(MAX_ENTRIES, Number.POSITIVE_INFINITY, 8 * 1024 * 1024);

/** The shared, frozen copy of a list of type OIDs (most are empty or one of a few lists). */
export function sharedTypes(oids: number[]): readonly number[] {
  if (oids.length === 0) return NO_TYPES;
  const key = oids.join(",");
  const hit = typeLists.get(key);
  if (hit !== undefined) return hit;
  const list = Object.freeze(oids.slice());
  if (typeLists.size < MAX_ENTRIES) typeLists.set(key, list);
  return list;
}
