// A bounded table of shared string copies: thousands of clients repeat the same names and texts.

/**
 * Returns a function giving the shared copy of a string, keeping it when there is room: at most `maxEntries`
 * strings of at most `maxLength` characters, `maxChars` in all. Bounded, so clients sending ever new values
 * cannot grow it: once full, new strings are simply not shared.
 */
export function internTable(maxEntries: number, maxLength = Number.POSITIVE_INFINITY, maxChars = Number.POSITIVE_INFINITY): (s: string) => string {
  const table = new Map<string, string>();
  let chars = 0;
  return (s: string): string => {
    if (s.length > maxLength) return s;
    const hit = table.get(s);
    if (hit !== undefined) return hit;
    if (table.size < maxEntries && chars + s.length <= maxChars) {
      table.set(s, s);
      chars += s.length;
    }
    return s;
  };
}
