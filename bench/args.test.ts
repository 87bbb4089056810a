// bench/run.ts options of the quiet-machine method: --wait-quiet S and --instructions.
import { describe, expect, test } from "bun:test";
import { flagValue, parseArgs } from "./args.ts";

describe("bench options", () => {
  test("--wait-quiet takes seconds and --instructions is a switch; both off by default", () => {
    expect(parseArgs([])).toMatchObject({ waitQuietS: 0, instructions: false });
    expect(parseArgs(["--quick", "--wait-quiet", "90", "--instructions"])).toMatchObject({ mode: "quick", waitQuietS: 90, instructions: true });
    expect(() => parseArgs(["--wait-quiet"])).toThrow(/--wait-quiet needs a value/);
    expect(() => parseArgs(["--wait-quiet", "-3"])).toThrow(/expected a positive number/);
  });
});

test("flagValue: the word after the flag, undefined when the flag is absent or last", () => {
  expect(flagValue(["--rev", "abc", "--rounds", "4"], "--rounds")).toBe("4");
  expect(flagValue(["--rev"], "--rev")).toBeUndefined();
  expect(flagValue([], "--rev")).toBeUndefined();
});
