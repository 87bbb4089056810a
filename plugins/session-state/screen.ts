// Byte-level first screening of statement text: finds none of the words session-changing SQL needs, without decoding.

/** Lower-cased ASCII words, one of which every statement the session-state regular expressions match contains. */
const WORDS = ["set", "listen", "prepare", "discard", "deallocate", "declare", "load", "temp", "advisory"].map((w) =>
  Uint8Array.from(w, (ch) => ch.charCodeAt(0)),
);
/** The words by first letter (a..z). */
const BY_FIRST: Array<Uint8Array[] | undefined> = [];
for (const w of WORDS) (BY_FIRST[w[0]! - 0x61] ??= []).push(w);

/** PAIRS bit: the pair is some word's first two letters (a word may start at the pair). */
const STARTS = 1;
/** PAIRS bit: the pair is some word's second and third letters (a word may start one byte before it). */
const SECOND = 2;
/**
 * By byte pair (first byte | second << 8, both letter cases), whether it is the start of a word or its second and
 * third letters. Every word has at least three letters, so an occurrence starting at `s` covers the pair at `s`
 * and the one at `s + 1`: one of them lies on the even offsets the scan looks at, and the scan reads one table
 * entry per two bytes. 64 KiB per process; only the few hundred pairs SQL text is made of are ever touched.
 */
const PAIRS = new Uint8Array(65536);
function mark(a: number, b: number, bit: number): void {
  for (const x of [a, a & ~0x20]) for (const y of [b, b & ~0x20]) PAIRS[x | (y << 8)]! |= bit;
}
for (const w of WORDS) {
  mark(w[0]!, w[1]!, STARTS);
  mark(w[1]!, w[2]!, SECOND);
}

/** A word (any letter case) starts at `s` and ends by `end`. */
function wordAt(buf: Uint8Array, s: number, end: number): boolean {
  const words = BY_FIRST[(buf[s]! | 0x20) - 0x61];
  if (words === undefined) return false;
  for (const w of words) {
    if (s + w.length > end) continue;
    // | 0x20 folds an ASCII capital onto its letter; no other byte folds onto a lower-case ASCII letter
    let k = 1;
    while (k < w.length && (buf[s + k]! | 0x20) === w[k]) k++;
    if (k === w.length) return true;
  }
  return false;
}

/** A word starts at the pair at `i` (i + 1 < end), or one byte before it (not before `from`). */
function wordNear(buf: Uint8Array, i: number, from: number, end: number): boolean {
  const bits = PAIRS[buf[i]! | (buf[i + 1]! << 8)]!;
  return ((bits & STARTS) !== 0 && wordAt(buf, i, end)) || ((bits & SECOND) !== 0 && i > from && wordAt(buf, i - 1, end));
}

/**
 * False when the text cannot change session state: it contains none of the words the statements and functions
 * that do need (SET/RESET/set_config, LISTEN, PREPARE, DISCARD, DEALLOCATE, DECLARE, LOAD, TEMP, advisory locks),
 * in any letter case. A superset check: true only means the regular expressions must look. Most queries are
 * answered here without decoding the text into a string.
 */
export function mayChangeSessionState(buf: Uint8Array, from: number, end: number): boolean {
  if (end > buf.length) end = buf.length;
  // the pairs at from, from + 2, ...: four bytes a turn, and nothing but loads in the loop (hits are rare)
  const last4 = end - 3;
  let i = from;
  for (;;) {
    while (i < last4 && (PAIRS[buf[i]! | (buf[i + 1]! << 8)]! | PAIRS[buf[i + 2]! | (buf[i + 3]! << 8)]!) === 0) i += 4;
    if (i >= last4) break;
    if (wordNear(buf, i, from, end) || wordNear(buf, i + 2, from, end)) return true;
    i += 4;
  }
  // at most three bytes are left: one more pair
  return i + 1 < end && wordNear(buf, i, from, end);
}
