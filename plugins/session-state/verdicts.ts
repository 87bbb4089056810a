// Long statement texts already found unable to change session state, kept per process so a repeat is one comparison.

/**
 * Shorter texts are screened faster than they are compared: the comparison's fixed cost (a view and a native call,
 * about 600 instructions) is what the screen spends on some 80-100 bytes.
 */
export const MIN_REMEMBERED = 128;
/** Longer texts are screened every time (a copy of each would cost more memory than it saves time). */
export const MAX_REMEMBERED = 4096;
/** Slots by text length: a few different texts of an application's usual queries each keep theirs. */
const SLOTS = 16;

/**
 * Copies of texts for which the session-state screen and its regular expressions found nothing, one per slot
 * (by length). Per process, not per client (an idle client holds nothing); a verdict is a property of the bytes
 * alone, so any client may reuse any other's. Exact: a hit compares every byte, never a hash.
 */
const clean: Array<Buffer | null> = new Array<Buffer | null>(SLOTS).fill(null);

/** buf[from, end) is byte for byte a text remembered as unable to change session state. */
export function knownClean(buf: Uint8Array, from: number, end: number): boolean {
  const n = end - from;
  if (n < MIN_REMEMBERED || n > MAX_REMEMBERED) return false;
  const c = clean[n & (SLOTS - 1)]!;
  return c !== null && c.length === n && c.equals(buf.subarray(from, end));
}

/** Remembers buf[from, end) (a copy) as unable to change session state, in place of its slot's text. */
export function rememberClean(buf: Uint8Array, from: number, end: number): void {
  const n = end - from;
  if (n < MIN_REMEMBERED || n > MAX_REMEMBERED) return;
  clean[n & (SLOTS - 1)] = Buffer.from(buf.subarray(from, end));
}

/** Forgets every remembered text (tests). */
export function forgetClean(): void {
  clean.fill(null);
}
