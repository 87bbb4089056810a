// Unit tests of bench/ab.ts's verdict: medians per tree (summary.ts's median) and the count of round pairs this tree won.
import { expect, test } from "bun:test";
import { summarize, type AbRun } from "./ab.ts";

test("summarize: medians per tree; pairs are rounds in order, and only pairs this tree's user time was lower in count", () => {
  const run = (tree: AbRun["tree"], userUs: number, tps = 100): AbRun => ({ tree, userUs, kernelUs: userUs * 3, tps });
  const s = summarize([run("this", 5), run("rev", 6), run("rev", 7), run("this", 8), run("this", 4, 300), run("rev", 4, 200)]);
  expect(s.this).toEqual({ user: 5, kernel: 15, tps: 100 });
  expect(s.rev).toEqual({ user: 6, kernel: 18, tps: 100 });
  expect(s.pairs).toBe(3);
  expect(s.lowerUserPairs).toBe(1); // 5 < 6; 8 > 7; 4 = 4 is not lower
});
