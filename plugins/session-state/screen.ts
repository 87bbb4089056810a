// Byte-level first screening of statement text: finds none of the words session-changing SQL needs, without decoding.

/** Lower-cased ASCII words, one of which every statement the session-state regular expressions match contains. */
const WORDS = ["set", "listen", "prepare", "discard", "deallocate", "declare", "load", "temp", "advisory"];

/**
 * The pair tables, as bits: a pair of bytes (a, b) is bit (b & 31) of word (a & 31) of a table. Folding a byte to
 * its five low bits maps both letter cases of a letter together (and other bytes onto letters too: a superset, as
 * wordAt compares the bytes themselves), so the three tables are 384 bytes, six cache lines, where a table by both
 * whole bytes (64 KiB) had the scan touch a line of its own for nearly every pair of a text: cold after each
 * context switch, those misses cost more than the scan. ANY: the pair is some word's first two letters or its second and
 * third; STARTS: its first two (a word may start at the pair); SECOND: its second and third (one may start a
 * byte before it). Every word has at least three letters, so an occurrence starting at `s` covers the pair at
 * `s` and the one at `s + 1`: one of them lies on the even offsets the scan looks at.
 */
const PAIRS = new Uint32Array(96);
const ANY = 0;
const STARTS = 32;
const SECOND = 64;
function mark(table: number, a: string, b: string): void {
  const slot = a.charCodeAt(0) & 31;
  const bit = 1 << (b.charCodeAt(0) & 31);
  PAIRS[table + slot]! |= bit;
  PAIRS[ANY + slot]! |= bit;
}
for (const w of WORDS) {
  mark(STARTS, w[0]!, w[1]!);
  mark(SECOND, w[1]!, w[2]!);
}

/** Whether table `t` has the pair (a, b). */
function has(t: number, a: number, b: number): boolean {
  return ((PAIRS[t + (a & 31)]! >>> (b & 31)) & 1) !== 0;
}

/**
 * The words sorted, each followed by 0, in one array; FIRST[letter & 31] is one past the offset of the first word
 * beginning with that letter (0: none). A few cache lines, read only when a pair matched.
 */
const SORTED = [...WORDS].sort();
const FLAT = new Uint8Array(SORTED.reduce((n, w) => n + w.length + 1, 1));
const FIRST = new Uint8Array(32);
{
  let o = 0;
  for (const w of SORTED) {
    const slot = w.charCodeAt(0) & 31;
    if (FIRST[slot] === 0) FIRST[slot] = o + 1;
    for (let k = 0; k < w.length; k++) FLAT[o++] = w.charCodeAt(k);
    FLAT[o++] = 0;
  }
}

/** A word (any letter case) starts at `s` and ends by `end`. */
function wordAt(buf: Uint8Array, s: number, end: number): boolean {
  // | 0x20 folds an ASCII capital onto its letter; no other byte folds onto a lower-case ASCII letter
  const first = buf[s]! | 0x20;
  if (first < 0x61 || first > 0x7a) return false;
  let o = FIRST[first & 31]!;
  if (o === 0) return false;
  o--;
  while (FLAT[o] === first) {
    let k = 1;
    while (FLAT[o + k] !== 0 && s + k < end && (buf[s + k]! | 0x20) === FLAT[o + k]) k++;
    if (FLAT[o + k] === 0) return true;
    while (FLAT[o + k] !== 0) k++;
    o += k + 1;
  }
  return false;
}

/** A word starts at the pair at `i` (i + 1 < end), or one byte before it (not before `from`). */
function wordNear(buf: Uint8Array, i: number, from: number, end: number): boolean {
  const a = buf[i]!;
  const b = buf[i + 1]!;
  return (has(STARTS, a, b) && wordAt(buf, i, end)) || (has(SECOND, a, b) && i > from && wordAt(buf, i - 1, end));
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
    while (i < last4 && !has(ANY, buf[i]!, buf[i + 1]!) && !has(ANY, buf[i + 2]!, buf[i + 3]!)) i += 4;
    if (i >= last4) break;
    if (wordNear(buf, i, from, end) || wordNear(buf, i + 2, from, end)) return true;
    i += 4;
  }
  // at most three bytes are left: one more pair
  return i + 1 < end && wordNear(buf, i, from, end);
}
