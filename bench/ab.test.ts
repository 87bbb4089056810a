// Unit tests of bench/ab.ts's verdict: medians per tree (summary.ts's median) and the count of round pairs this tree won.
import { expect, test } from "bun:test";
import { summarize, type AbRun } from "./ab.ts";

test("summarize: medians per tree; pairs are rounds in order, and only pairs this tree's user time was lower in count", () => {
  const run = (tree: AbRun["tree"], userUs: number, tps = 100): AbRun => ({ tree, userUs, kernelUs: userUs * 3, tps });
  const s = summarize([run("this", 5), run("rev", 6), run("rev", 7), run("this", 8), run("this", 4, 300), run("rev", 4, 200)]);
  expect(s.this).toEqual({ user: 5, kernel: 15, tps: 100, total: 20, switches: 0, faults: 0 });
  expect(s.rev).toEqual({ user: 6, kernel: 18, tps: 100, total: 24, switches: 0, faults: 0 });
  expect(s.pairs).toBe(3);
  expect(s.lowerUserPairs).toBe(1); // 5 < 6; 8 > 7; 4 = 4 is not lower
  expect(s.lowerTotalPairs).toBe(1);
});

test("summarize: the sum decides apart from the split (a tick charged to kernel instead of user), switches and faults as medians", () => {
  const run = (tree: AbRun["tree"], userUs: number, kernelUs: number, switches: number, faults = 0): AbRun => ({ tree, userUs, kernelUs, tps: 1, switches, faults });
  const s = summarize([run("this", 3.5, 9.5, 0.6, 0.02), run("rev", 3.0, 10.5, 0.9, 0.1), run("rev", 2.9, 10.4, 0.8, 0.2), run("this", 3.4, 9.6, 0.7, 0.04)]);
  expect(s.this.faults).toBeCloseTo(0.03, 9);
  expect(s.rev.faults).toBeCloseTo(0.15, 9);
  expect(s.lowerUserPairs).toBe(0);
  expect(s.lowerTotalPairs).toBe(2);
  expect(s.this.total).toBeCloseTo(13, 9);
  expect(s.rev.switches).toBeCloseTo(0.85, 9);
});
