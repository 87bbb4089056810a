// Unit tests of the benchmark's steal-time reading (bench/machine.ts) and its words in the report header.
import { describe, expect, test } from "bun:test";
import { cpuTicks, stealShare } from "./machine.ts";
import { STEAL_WARNING, stealNote } from "./report.ts";

describe("steal time", () => {
  test("this machine's /proc/stat gives steal and a total that only grow", async () => {
    const a = cpuTicks();
    expect(a).not.toBeNull();
    await Bun.sleep(50);
    const b = cpuTicks()!;
    expect(b.total).toBeGreaterThanOrEqual(a!.total);
    expect(b.steal).toBeGreaterThanOrEqual(a!.steal);
    expect(a!.steal).toBeLessThanOrEqual(a!.total);
  });

  test("the share is steal's growth over the total's; none without two readings that moved", () => {
    expect(stealShare({ steal: 10, total: 1000 }, { steal: 30, total: 2000 })).toBeCloseTo(0.02);
    expect(stealShare(null, { steal: 1, total: 2 })).toBeNull();
    expect(stealShare({ steal: 1, total: 2 }, { steal: 1, total: 2 })).toBeNull();
  });

  test("the header says the share, and warns loudly above STEAL_WARNING", () => {
    expect(stealNote(null)).toBe("");
    expect(stealNote(0.004)).toContain("0.4 %");
    expect(stealNote(0.004)).not.toContain("⚠");
    expect(stealNote(STEAL_WARNING + 0.01)).toContain("⚠ CPU steal 3.0 %");
  });
});
