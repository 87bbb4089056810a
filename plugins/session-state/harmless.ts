// The verify mode's proof that a statement text runs no code that could change session state (a short allow-list).

/**
 * Statements that read or write no table and call no function, so neither user code (functions, triggers, views,
 * rules, policies, defaults, domain checks, user-defined operators and casts) nor a volatile builtin (set_config,
 * pg_advisory_lock, dblink_connect, ...) can run:
 *   - transaction control: BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK [TO [SAVEPOINT]], ABORT, SAVEPOINT,
 *     RELEASE [SAVEPOINT], followed only by words, commas and "quoted" names (isolation level, AND CHAIN, ...);
 *   - SHOW followed only by words, dots and "quoted" names;
 *   - SELECT of constants only: numbers, 'strings' without backslashes, NULL, TRUE, FALSE, each optionally
 *     `AS name`, separated by commas (the drivers' and health checks' `SELECT 1`);
 *   - the empty statement.
 * Any other byte (a parenthesis, an operator, `::`, `$`, a word where none is allowed, an unterminated string or
 * comment) makes the text unproven. Why so little: a table access can fire a trigger, a view can call a function,
 * even `1 + 1` resolves `+` through search_path. COMMIT can run deferred triggers, but only ones queued by an
 * earlier statement of the same transaction, which is not proven harmless itself, so that transaction is checked.
 */
export function provenHarmless(buf: Uint8Array, from: number, end: number): boolean {
  let i = from;
  for (;;) {
    i = statement(buf, i, end);
    if (i < 0) return false;
    if (i >= end) return true;
    i++; // the ';' between statements
  }
}

const BEGIN = word("begin");
const START = word("start");
const COMMIT = word("commit");
const END = word("end");
const ROLLBACK = word("rollback");
const ABORT = word("abort");
const SAVEPOINT = word("savepoint");
const RELEASE = word("release");
const SHOW = word("show");
const SELECT = word("select");
const AS = word("as");
const NULL = word("null");
const TRUE = word("true");
const FALSE = word("false");
const TRANSACTION_CONTROL = [BEGIN, START, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE];
const CONSTANT_WORDS = [NULL, TRUE, FALSE];

const SEMICOLON = 0x3b;
const COMMA = 0x2c;
const DOT = 0x2e;
const QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const BACKSLASH = 0x5c;

function word(w: string): Uint8Array {
  return Uint8Array.from(w, (ch) => ch.charCodeAt(0));
}

/** One statement from `i`: the index of the ';' or end that ends it, or -1 when it is not proven harmless. */
function statement(buf: Uint8Array, i: number, end: number): number {
  i = space(buf, i, end);
  if (i < 0 || i >= end || buf[i] === SEMICOLON) return i;
  const w = wordEnd(buf, i, end);
  if (w === i) return -1;
  if (isAny(buf, i, w, TRANSACTION_CONTROL)) return names(buf, w, end, COMMA);
  if (is(buf, i, w, SHOW)) return names(buf, w, end, DOT);
  if (is(buf, i, w, SELECT)) return constants(buf, w, end);
  return -1;
}

/** Words, "quoted" names and `separator`s up to the statement's end (transaction modes, a setting's name). */
function names(buf: Uint8Array, i: number, end: number, separator: number): number {
  for (;;) {
    i = space(buf, i, end);
    if (i < 0 || i >= end || buf[i] === SEMICOLON) return i;
    const c = buf[i]!;
    if (c === separator) i++;
    else if (c === DOUBLE_QUOTE) i = quoted(buf, i, end, DOUBLE_QUOTE);
    else {
      const w = wordEnd(buf, i, end);
      if (w === i) return -1;
      i = w;
    }
    if (i < 0) return -1;
  }
}

/** `constant [AS name] {, constant [AS name]}` (or nothing) up to the statement's end. */
function constants(buf: Uint8Array, i: number, end: number): number {
  i = space(buf, i, end);
  if (i < 0 || i >= end || buf[i] === SEMICOLON) return i;
  for (;;) {
    i = constant(buf, i, end);
    if (i < 0) return -1;
    i = space(buf, i, end);
    if (i < 0) return -1;
    const w = wordEnd(buf, i, end);
    if (w > i) {
      if (!is(buf, i, w, AS)) return -1;
      i = space(buf, w, end);
      if (i < 0 || i >= end) return -1;
      if (buf[i] === DOUBLE_QUOTE) i = quoted(buf, i, end, DOUBLE_QUOTE);
      else {
        const name = wordEnd(buf, i, end);
        if (name === i) return -1;
        i = name;
      }
      if (i < 0) return -1;
      i = space(buf, i, end);
      if (i < 0) return -1;
    }
    if (i >= end || buf[i] === SEMICOLON) return i;
    if (buf[i] !== COMMA) return -1;
    i = space(buf, i + 1, end);
    if (i < 0 || i >= end) return -1;
  }
}

/** A number, a 'string' without backslashes, NULL, TRUE or FALSE at `i`: the index after it, or -1. */
function constant(buf: Uint8Array, i: number, end: number): number {
  const c = buf[i]!;
  if (c === QUOTE) {
    const after = quoted(buf, i, end, QUOTE);
    // a backslash means different strings with standard_conforming_strings on and off: not worth telling apart
    for (let k = i; k < after; k++) if (buf[k] === BACKSLASH) return -1;
    return after;
  }
  if (isDigit(c) || (c === DOT && i + 1 < end && isDigit(buf[i + 1]!))) return number(buf, i, end);
  const w = wordEnd(buf, i, end);
  return w > i && isAny(buf, i, w, CONSTANT_WORDS) ? w : -1;
}

/** digits [. digits] [e [+-] digits], not followed by a letter (`1from t` lexes as `1 from t` before PostgreSQL 15). */
function number(buf: Uint8Array, i: number, end: number): number {
  while (i < end && isDigit(buf[i]!)) i++;
  if (i < end && buf[i] === DOT) {
    i++;
    while (i < end && isDigit(buf[i]!)) i++;
  }
  if (i < end && (buf[i]! | 0x20) === 0x65 /* e */) {
    let k = i + 1;
    if (k < end && (buf[k] === 0x2b || buf[k] === 0x2d)) k++;
    if (k >= end || !isDigit(buf[k]!)) return -1;
    while (k < end && isDigit(buf[k]!)) k++;
    i = k;
  }
  return i < end && isWordByte(buf[i]!) ? -1 : i;
}

/** A '...' or "..." (the quote doubled inside): the index after its closing quote, or -1 when unterminated. */
function quoted(buf: Uint8Array, i: number, end: number, q: number): number {
  for (let k = i + 1; k < end; k++) {
    if (buf[k] !== q) continue;
    if (k + 1 < end && buf[k + 1] === q) k++;
    else return k + 1;
  }
  return -1;
}

/** Skips whitespace, -- and (nested) /* comments: the index after them, or -1 for an unterminated comment. */
function space(buf: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c) i++;
    else if (c === 0x2d && buf[i + 1] === 0x2d && i + 1 < end) {
      while (i < end && buf[i] !== 0x0a && buf[i] !== 0x0d) i++;
    } else if (c === 0x2f && buf[i + 1] === 0x2a && i + 1 < end) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i + 1 >= end) return -1;
        if (buf[i] === 0x2a && buf[i + 1] === 0x2f) {
          depth--;
          i += 2;
        } else if (buf[i] === 0x2f && buf[i + 1] === 0x2a) {
          depth++;
          i += 2;
        } else i++;
      }
    } else return i;
  }
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isLetter(c: number): boolean {
  const l = c | 0x20;
  return (l >= 0x61 && l <= 0x7a) || c === 0x5f;
}

/** ASCII letters, digits, `_` and `$` (bytes above ASCII are not words here: the text is then not proven). */
function isWordByte(c: number): boolean {
  return isLetter(c) || isDigit(c) || c === 0x24;
}

/** The end of the word starting at `i` (`i` itself when none starts there). */
function wordEnd(buf: Uint8Array, i: number, end: number): number {
  if (i >= end || !isLetter(buf[i]!)) return i;
  let k = i + 1;
  while (k < end && isWordByte(buf[k]!)) k++;
  return k;
}

/** The word buf[from, to) is `w` (lower case), in any letter case. */
function is(buf: Uint8Array, from: number, to: number, w: Uint8Array): boolean {
  if (to - from !== w.length) return false;
  for (let k = 0; k < w.length; k++) if ((buf[from + k]! | 0x20) !== w[k]) return false;
  return true;
}

function isAny(buf: Uint8Array, from: number, to: number, words: Uint8Array[]): boolean {
  for (const w of words) if (is(buf, from, to, w)) return true;
  return false;
}
