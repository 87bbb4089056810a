// pgbun:prepared-statements shares what clients repeat (type lists, texts) through bounded tables.
import { expect, test } from "bun:test";
import { shared, sharedTypes } from "../../plugins/prepared-statements/shared.ts";

test("equal type lists are one frozen list; an empty list is one shared empty list", () => {
  const a = sharedTypes([23, 25]);
  const b = sharedTypes([23, 25]);
  expect(a).toBe(b);
  expect(Object.isFrozen(a)).toBe(true);
  expect(() => (a as number[]).push(1)).toThrow();
  expect(sharedTypes([])).toBe(sharedTypes([]));
  expect(sharedTypes([23])).not.toBe(a);
  // the caller's own array is not the shared one (it may reuse it)
  const mine = [20];
  expect(sharedTypes(mine)).not.toBe(mine);
});

test("shared strings keep their value, and the table stays bounded whatever clients send", () => {
  expect(shared("SELECT 1")).toBe("SELECT 1");
  // far more distinct texts than the table holds: every call still returns its own value
  for (let i = 0; i < 20_000; i++) expect(shared(`SELECT ${i}`)).toBe(`SELECT ${i}`);
  const big = "x".repeat(9 * 1024 * 1024);
  expect(shared(big)).toBe(big);
});
