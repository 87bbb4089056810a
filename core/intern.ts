// One shared copy of the short strings every client repeats (user, database, startup parameters, address).

const MAX_ENTRIES = 4096;
const MAX_LENGTH = 64;
const table = new Map<string, string>();

/**
 * Returns the shared copy of `s`, keeping it when there is room. Ten thousand clients of one application send
 * the same user, database and parameters; sharing them saves ~150 bytes per idle client. Bounded, so hostile
 * clients cannot grow it: once full, new strings are simply not shared.
 */
export function intern(s: string): string {
  if (s.length > MAX_LENGTH) return s;
  const hit = table.get(s);
  if (hit !== undefined) return hit;
  if (table.size < MAX_ENTRIES) table.set(s, s);
  return s;
}
