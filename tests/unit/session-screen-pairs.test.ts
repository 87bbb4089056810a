// The session-state screen's pair scan (two bytes per table load, four a turn) says "may change" exactly when a
// case-blind search of its words does: at every alignment of the word to the scan, at the range's start and end,
// at the buffer's end, inside identifiers and string literals, and never for a word split by another byte.
import { expect, test } from "bun:test";
import { mayChangeSessionState } from "../../plugins/session-state/screen.ts";

const WORDS = ["set", "listen", "prepare", "discard", "deallocate", "declare", "load", "temp", "advisory"];
const SEARCH = new RegExp(WORDS.join("|"), "i");

/** Every letter-case mix of a word: all lower, all upper, capitalised, and alternating both ways. */
function cases(w: string): string[] {
  const alt = (odd: boolean) => [...w].map((ch, k) => ((k % 2 === 1) === odd ? ch.toUpperCase() : ch)).join("");
  return [w, w.toUpperCase(), w[0]!.toUpperCase() + w.slice(1), alt(true), alt(false)];
}

/** The screen of `text` placed at `pad` bytes into a buffer with `tail` bytes after the range. */
function screenAt(text: string, pad: number, tail = ""): boolean {
  const b = Buffer.from("\u0000".repeat(pad) + text + tail, "latin1");
  return mayChangeSessionState(b, pad, pad + text.length);
}

test("each word in each letter case is found at every offset from the range's start (each alignment of the scan), inside identifiers and strings", () => {
  for (const word of WORDS)
    for (const w of cases(word))
      for (let lead = 0; lead < 9; lead++)
        for (const pad of [0, 1, 2, 3]) {
          const filler = "xyz_0 ".repeat(3).slice(0, lead);
          for (const text of [filler + w, filler + w + " FROM t", `${filler}"my_${w}_col"`, `${filler}'a${w}b' AS x`]) {
            expect({ text, pad, found: screenAt(text, pad) }).toEqual({ text, pad, found: true });
          }
        }
});

test("a word that ends at the range's last byte is found; one cut by the range's end (bytes after it in the buffer) is not", () => {
  for (const word of WORDS)
    for (let lead = 0; lead < 7; lead++)
      for (const pad of [0, 1, 2, 3]) {
        const text = "x = 1; ".slice(0, lead) + word;
        expect({ text, pad, whole: screenAt(text, pad) }).toEqual({ text, pad, whole: true });
        // the range ends one byte short of the word's end; the buffer still holds its last letter
        const cut = text.slice(0, -1);
        expect({ cut, pad, found: screenAt(cut, pad, word.slice(-1) + " more") }).toEqual({ cut, pad, found: false });
        // a word right before the range's start (its last byte outside) is not the range's
        const b = Buffer.from(word + "x = 1", "latin1");
        expect(mayChangeSessionState(b, 1, b.length)).toBe(SEARCH.test(word.slice(1) + "x = 1"));
      }
});

test("the range's end past the buffer's end reads only the buffer", () => {
  for (const word of WORDS) {
    const b = Buffer.from("  " + word, "latin1");
    expect(mayChangeSessionState(b, 0, b.length + 5)).toBe(true);
    const c = Buffer.from("  " + word.slice(0, -1), "latin1");
    expect(mayChangeSessionState(c, 0, c.length + 5)).toBe(false);
  }
});

test("a word split by another byte is no word; pgbench's and longer ORM texts without a word screen clean", () => {
  for (const word of WORDS)
    for (let k = 1; k < word.length; k++)
      for (const sep of [" ", "_", "\u0000", "\u00e9", "1"]) {
        const text = `SELECT ${word.slice(0, k)}${sep}${word.slice(k)} FROM t`;
        expect({ text, found: screenAt(text, k % 4) }).toEqual({ text, found: SEARCH.test(text) });
      }
  const clean = [
    "SELECT abalance FROM pgbench_accounts WHERE aid = 54321;",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
    'SELECT "orders"."id", "orders"."customer_id", "orders"."status", "orders"."total_cents" FROM "orders" INNER JOIN "customers" ON "customers"."id" = "orders"."customer_id" WHERE "customers"."email" = $1 ORDER BY "orders"."created_at" DESC LIMIT $4',
  ];
  for (const text of clean) for (const pad of [0, 1, 2, 3]) expect({ text, pad, found: screenAt(text, pad) }).toEqual({ text, pad, found: false });
});

test("random long texts of word pieces: the screen agrees with the case-blind search at every offset and length", () => {
  const pieces = ["s", "S", "e", "E", "t", "T", "se", "Se", "et", "eT", "li", "is", "st", "te", "en", "pr", "re", "ep", "di", "de", "De", "ea", "ec", "lo", "oa", "ad", "dv", "em", "mp", "al", "ll", "oc", "ca", "at", "cl", "ar", "rd", "vi", "so", "or", "ry", "x", " ", ";", "_", "\u00d3", "\u00c5", "\u00e5", "\u0000", "selec", "abalance", "pgbench_accounts"];
  let seed = 33;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let found = 0;
  let checked = 0;
  for (let n = 0; n < 5_000; n++) {
    let text = "";
    for (let k = 2 + Math.floor(next() * 30); k > 0; k--) text += pieces[Math.floor(next() * pieces.length)]!;
    const pad = Math.floor(next() * 4);
    const b = Buffer.from("\u0000".repeat(pad) + text + "set", "latin1");
    // every end from the range's start to its whole length (the tail "set" is outside every range)
    for (let end = pad; end <= pad + text.length; end++) {
      const expected = SEARCH.test(text.slice(0, end - pad));
      if (expected) found++;
      checked++;
      if (mayChangeSessionState(b, pad, end) !== expected) expect({ text, pad, end, screened: !expected }).toEqual({ text, pad, end, screened: expected });
    }
  }
  // both outcomes many times
  expect(found).toBeGreaterThan(5_000);
  expect(found).toBeLessThan(checked - 5_000);
});
