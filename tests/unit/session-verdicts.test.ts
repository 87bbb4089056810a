// The session-state plugin's per-process memory of long texts found unable to change session state: a hit needs
// every byte equal; the same length with other bytes, a changed text after a hit, and short or huge texts miss.
import { beforeEach, expect, test } from "bun:test";
import { forgetClean, knownClean, MAX_REMEMBERED, MIN_REMEMBERED, rememberClean } from "../../plugins/session-state/verdicts.ts";

/** `sql` padded with a comment to exactly `n` bytes, inside a buffer with other bytes around it. */
function framed(sql: string, n: number, lead = "P\u0000\u0000\u0000\u0000\u0000"): { b: Buffer; from: number; end: number } {
  const text = (sql + " /*" + "x".repeat(n)).slice(0, n - 2) + "*/";
  expect(text.length).toBe(n);
  const b = Buffer.from(lead + text + "\u0000\u0000\u0000S\u0000\u0000\u0000\u0004", "latin1");
  return { b, from: lead.length, end: lead.length + n };
}
const hit = (t: { b: Buffer; from: number; end: number }) => knownClean(t.b, t.from, t.end);
const keep = (t: { b: Buffer; from: number; end: number }) => rememberClean(t.b, t.from, t.end);

beforeEach(() => forgetClean());

test("a remembered long text is known clean wherever its bytes sit; nothing is known before", () => {
  const a = framed("SELECT * FROM orders WHERE id = $1", 200);
  expect(hit(a)).toBe(false);
  keep(a);
  expect(hit(a)).toBe(true);
  // the same bytes at another offset of another buffer (a later read)
  expect(hit(framed("SELECT * FROM orders WHERE id = $1", 200, "xxP\u0000\u0000\u0000\u0000"))).toBe(true);
});

test("the same length with other bytes misses: one byte changed at the start, the middle or the end, or a letter's case", () => {
  const sql = "SELECT * FROM orders WHERE id = $1";
  const a = framed(sql, 300);
  keep(a);
  for (const at of [0, 1, 150, 298, 299]) {
    const b = Buffer.from(a.b);
    b[a.from + at] ^= 0x01;
    expect({ at, hit: knownClean(b, a.from, a.end) }).toEqual({ at, hit: false });
  }
  expect(hit(framed(sql.toLowerCase(), 300))).toBe(false);
  // a text that sets something, of exactly the remembered one's length
  expect(hit(framed("SET search_path = app", 300))).toBe(false);
  // a range one byte shorter or longer over the same buffer
  expect(knownClean(a.b, a.from, a.end - 1)).toBe(false);
  expect(knownClean(a.b, a.from, a.end + 1)).toBe(false);
  expect(knownClean(a.b, a.from + 1, a.end)).toBe(false);
});

test("after a hit, a changed text misses, and the remembered copy is not the caller's buffer (a later read may reuse it)", () => {
  const a = framed("SELECT 1", 256);
  keep(a);
  expect(hit(a)).toBe(true);
  // the caller's buffer is overwritten in place with a setting text of the same length
  const changed = framed("SELECT set_config('app.user', '7', false)", 256);
  changed.b.copy(a.b, 0, 0, changed.b.length);
  expect(hit(a)).toBe(false);
  expect(hit(framed("SELECT 1", 256))).toBe(true);
});

test("texts of the same slot replace each other; only lengths from MIN_REMEMBERED to MAX_REMEMBERED are kept", () => {
  const a = framed("SELECT a FROM t", 200);
  const b = framed("SELECT b FROM t", 200);
  keep(a);
  keep(b);
  expect(hit(a)).toBe(false);
  expect(hit(b)).toBe(true);
  // another length, another slot: both kept
  const c = framed("SELECT c FROM t", 201);
  keep(c);
  expect(hit(b)).toBe(true);
  expect(hit(c)).toBe(true);
  for (const n of [MIN_REMEMBERED - 1, MAX_REMEMBERED + 1]) {
    const t = framed("SELECT 1", n);
    keep(t);
    expect({ n, hit: hit(t) }).toEqual({ n, hit: false });
  }
  for (const n of [MIN_REMEMBERED, MAX_REMEMBERED]) {
    const t = framed("SELECT 1", n);
    keep(t);
    expect({ n, hit: hit(t) }).toEqual({ n, hit: true });
  }
});
