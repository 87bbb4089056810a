// Text that must keep its bytes: invalid UTF-8 decoded to lone surrogates (U+DC80-U+DCFF) and encoded back unchanged.

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
/** A low surrogate standing alone (not the second half of a pair) in the range an escaped byte uses. */
const ESCAPED = /(?<![\ud800-\udbff])[\udc80-\udcff]/;
/** The cheap first test (a lookbehind costs several times a plain scan): nearly every string has no such unit. */
const MAYBE_ESCAPED = /[\udc80-\udcff]/;
/**
 * No string was decoded with escapes yet: until one is, no string can hold one, and encodeText() costs what
 * TextEncoder does (a scan costs about three times an encode of a short string).
 */
let noneEscaped = true;

/**
 * The text of buf[start, end) as UTF-8, each byte of an invalid sequence kept as the lone surrogate U+DC00 + byte
 * (Python's "surrogateescape"): a StartupMessage's values are bytes PostgreSQL takes as they are, before any
 * encoding is agreed, and a TextDecoder would turn them into U+FFFD, a different value. Valid UTF-8 never decodes
 * to a lone surrogate, so encodeText() gives back exactly these bytes.
 */
export function decodeBytes(buf: Uint8Array, start = 0, end = buf.length): string {
  const bytes = buf.subarray(start, end);
  try {
    return strict.decode(bytes);
  } catch {
    return decodeEscaping(bytes);
  }
}

/** The length of the valid UTF-8 sequence at b[i], or 0 (RFC 3629: no overlong forms, surrogates or > U+10FFFF). */
function sequenceAt(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const ok = c === 0xe0 ? cont(1, 0xa0) : c === 0xed ? cont(1, 0x80, 0x9f) : cont(1);
    return ok && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const ok = c === 0xf0 ? cont(1, 0x90) : c === 0xf4 ? cont(1, 0x80, 0x8f) : cont(1);
    return ok && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

function decodeEscaping(b: Uint8Array): string {
  noneEscaped = false;
  let out = "";
  let run = 0; // start of the current run of valid sequences
  let i = 0;
  while (i < b.length) {
    const n = sequenceAt(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > run) out += strict.decode(b.subarray(run, i));
    out += String.fromCharCode(0xdc00 + b[i]!);
    i++;
    run = i;
  }
  if (i > run) out += strict.decode(b.subarray(run, i));
  return out;
}

/** True when `s` holds bytes decodeBytes() escaped. */
export function hasEscapedBytes(s: string): boolean {
  return !noneEscaped && MAYBE_ESCAPED.test(s) && ESCAPED.test(s);
}

/** UTF-8 of `s`, with each byte decodeBytes() escaped written back as that byte. */
export function encodeText(s: string): Uint8Array {
  if (!hasEscapedBytes(s)) return encoder.encode(s);
  const parts: number[] = [];
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u < 0xdc80 || u > 0xdcff || (i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff)) continue;
    if (i > run) for (const x of encoder.encode(s.slice(run, i))) parts.push(x);
    parts.push(u - 0xdc00);
    run = i + 1;
  }
  if (run < s.length) for (const x of encoder.encode(s.slice(run))) parts.push(x);
  return Uint8Array.from(parts);
}

/** `s` with each escaped byte as "?" (what PostgreSQL makes of a non-ASCII byte in application_name). */
export function replaceEscapedBytes(s: string): string {
  return hasEscapedBytes(s) ? s.replace(/(?<![\ud800-\udbff])[\udc80-\udcff]/g, "?") : s;
}
