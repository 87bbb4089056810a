// Unit tests of text-bytes.ts: any bytes decode to a string that encodes back to exactly those bytes.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { decodeBytes, encodeText, hasEscapedBytes, replaceEscapedBytes } from "../../plugin-sdk/protocol/text-bytes.ts";

const RUNS = Number(process.env.PGBUN_FUZZ_RUNS) || 2_000;

test("any bytes: decodeBytes then encodeText gives the same bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      expect(Buffer.from(encodeText(decodeBytes(b)))).toEqual(Buffer.from(b));
    }),
    { numRuns: RUNS },
  );
});

test("valid UTF-8 decodes as TextDecoder decodes it, with nothing escaped, and encodes as TextEncoder does", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 20 }), (s) => {
      const b = new TextEncoder().encode(s);
      const d = decodeBytes(b);
      expect(d).toBe(s);
      expect(hasEscapedBytes(d)).toBe(false);
      expect(Buffer.from(encodeText(s))).toEqual(Buffer.from(b));
    }),
    { numRuns: RUNS },
  );
});

test("each byte of an invalid sequence is one escape; the valid text around it is kept", () => {
  const b = Buffer.from([0x61, 0xff, 0x62, 0xc3, 0xa9, 0xe9, 0x63, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80]);
  const d = decodeBytes(b);
  // a, 0xff, b, é, 0xe9, c, an encoded surrogate (3 bytes, invalid in UTF-8), an emoji
  expect(d).toBe("a\udcffbé\udce9c\udced\udca0\udc80😀");
  expect(hasEscapedBytes(d)).toBe(true);
  expect(Buffer.from(encodeText(d))).toEqual(b);
  expect(replaceEscapedBytes(d)).toBe("a?bé?c???😀");
  // the second half of a real surrogate pair is no escape
  expect(hasEscapedBytes("\ud800\udc80")).toBe(false);
});
