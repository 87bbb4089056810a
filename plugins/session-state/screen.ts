// Byte-level first screening of statement text: finds none of the words session-changing SQL needs, without decoding.

/** Lower-cased ASCII words, one of which every statement the session-state regular expressions match contains. */
const WORDS = ["set", "listen", "prepare", "discard", "deallocate", "declare", "load", "temp", "advisory"].map((w) =>
  Uint8Array.from(w, (ch) => ch.charCodeAt(0)),
);
/** The words by first letter (a..z), so each byte costs one table lookup. */
const BY_FIRST: Array<Uint8Array[] | undefined> = [];
for (const w of WORDS) (BY_FIRST[w[0]! - 0x61] ??= []).push(w);

/**
 * False when the text cannot change session state: it contains none of the words the statements and functions
 * that do need (SET/RESET/set_config, LISTEN, PREPARE, DISCARD, DEALLOCATE, DECLARE, LOAD, TEMP, advisory locks),
 * in any letter case. A superset check: true only means the regular expressions must look. Most queries are
 * answered here without decoding the text into a string.
 */
export function mayChangeSessionState(buf: Uint8Array, from: number, end: number): boolean {
  for (let i = from; i < end; i++) {
    const first = (buf[i]! | 0x20) - 0x61;
    if (first < 0 || first > 25) continue;
    const candidates = BY_FIRST[first];
    if (candidates === undefined) continue;
    for (const w of candidates) {
      if (i + w.length > end) continue;
      let k = 1;
      while (k < w.length && (buf[i + k]! | 0x20) === w[k]) k++;
      if (k === w.length) return true;
    }
  }
  return false;
}
