// pgbun/testing's hand-written declarations (bin/testing-types.d.ts) stay in step with bin/testing.ts: tsc checks this file.
import { expect, test } from "bun:test";
import { startTestPooler } from "../../bin/testing.ts";
import type { startTestPooler as Declared, TestPoolerOptions } from "../../bin/testing-types.d.ts";

// the implementation must be usable wherever the declaration promises it (tsc --noEmit fails on drift)
const asDeclared: typeof Declared = startTestPooler;
// and every option the implementation takes is declared (a new option forgotten in the .d.ts fails here)
type ImplOptions = Parameters<typeof startTestPooler>[0];
const everyOption: Required<{ [K in keyof ImplOptions]: K extends keyof TestPoolerOptions ? true : never }> = {
  upstream: true,
  settings: true,
  plugins: true,
  databases: true,
  users: true,
  dir: true,
  logLevel: true,
};

test("pgbun/testing's declarations describe its implementation", () => {
  expect(typeof asDeclared).toBe("function");
  expect(Object.keys(everyOption).sort()).toEqual(["databases", "dir", "logLevel", "plugins", "settings", "upstream", "users"]);
});
