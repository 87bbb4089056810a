// Byte-level first screening of statement text: finds none of the words session-changing SQL needs, without decoding.

/** Lower-cased ASCII words, one of which every statement the session-state regular expressions match contains. */
const WORDS = ["set", "listen", "prepare", "discard", "deallocate", "declare", "load", "temp", "advisory"].map((w) =>
  Uint8Array.from(w, (ch) => ch.charCodeAt(0)),
);
/** The words by first letter (a..z). */
const BY_FIRST: Array<Uint8Array[] | undefined> = [];
for (const w of WORDS) (BY_FIRST[w[0]! - 0x61] ??= []).push(w);
/**
 * By byte as it is (both letter cases), the second letters (bit n: 'a' + n) of the words it may start; 0 for a byte
 * that starts none: almost every byte of a query costs one typed-array load, and a candidate one more byte's test.
 */
const SECOND = new Uint32Array(256);
for (const w of WORDS) {
  const bit = 1 << (w[1]! - 0x61);
  SECOND[w[0]!] |= bit;
  SECOND[w[0]! & ~0x20] |= bit;
}

/**
 * False when the text cannot change session state: it contains none of the words the statements and functions
 * that do need (SET/RESET/set_config, LISTEN, PREPARE, DISCARD, DEALLOCATE, DECLARE, LOAD, TEMP, advisory locks),
 * in any letter case. A superset check: true only means the regular expressions must look. Most queries are
 * answered here without decoding the text into a string.
 */
export function mayChangeSessionState(buf: Uint8Array, from: number, end: number): boolean {
  for (let i = from; i < end; i++) {
    const seconds = SECOND[buf[i]!]!;
    if (seconds === 0) continue;
    // past the buffer's end the byte reads as undefined, | 0x20 as 0x20: no letter
    const second = (buf[i + 1]! | 0x20) - 0x61;
    if (second < 0 || second > 25 || ((seconds >>> second) & 1) === 0) continue;
    for (const w of BY_FIRST[(buf[i]! | 0x20) - 0x61]!) {
      if (i + w.length > end) continue;
      let k = 1;
      while (k < w.length && (buf[i + k]! | 0x20) === w[k]) k++;
      if (k === w.length) return true;
    }
  }
  return false;
}
