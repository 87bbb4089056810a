// Reading callgrind dumps (totals, per-thread files) and turning intervals into instructions per transaction.
import { describe, expect, test } from "bun:test";
import { dumpTotal, formatIr, groupDumpFiles, intervalsOf, irPerTransaction } from "./callgrind.ts";

describe("callgrind dumps", () => {
  test("the total is the totals line's (or the older summary line's) first event", () => {
    expect(dumpTotal("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\nfn=(1) main\n5 12\n\ntotals: 6855092\n")).toBe(6855092);
    expect(dumpTotal("events: Ir\nsummary: 96298\n")).toBe(96298);
    expect(dumpTotal("events: Ir\nfn=(1)\n")).toBeNull();
  });

  test("per-thread dump files group by dump number; the final dump at exit (no number) is left out", () => {
    const names = ["callgrind.pgbun", "callgrind.pgbun.1-01", "callgrind.pgbun.1-02", "callgrind.pgbun.2-01", "callgrind.pgbun.10-01", "callgrind.pgbun-minimal.3-01", "callgrind.pgbun.2-03"];
    expect(groupDumpFiles(names, "callgrind.pgbun")).toEqual([
      { n: 1, files: [{ thread: 1, name: "callgrind.pgbun.1-01" }, { thread: 2, name: "callgrind.pgbun.1-02" }] },
      { n: 2, files: [{ thread: 1, name: "callgrind.pgbun.2-01" }, { thread: 3, name: "callgrind.pgbun.2-03" }] },
      { n: 10, files: [{ thread: 1, name: "callgrind.pgbun.10-01" }] },
    ]);
    expect(groupDumpFiles(["callgrind.pgbouncer.1", "callgrind.pgbouncer.2"], "callgrind.pgbouncer").map((g) => g.files[0]!.thread)).toEqual([1, 1]);
  });

  test("a dump splits into the main thread's interval and all threads'", () => {
    const d = { n: 1, threads: new Map([[1, 900], [2, 50], [5, 50]]) };
    expect(intervalsOf(d, 40)).toEqual({ main: { ir: 900, wallMs: 40 }, all: { ir: 1000, wallMs: 40 } });
  });
});

describe("instructions per transaction", () => {
  test("the idle baseline is subtracted pro rata to the run's wall time", () => {
    // 1,000,000 Ir in 2 s of 100 transactions; idle: 10,000 Ir in 1 s, so 20,000 of the run's are the timers'
    expect(irPerTransaction({ ir: 1_000_000, wallMs: 2000 }, { ir: 10_000, wallMs: 1000 }, 100)).toBe(9800);
    expect(irPerTransaction({ ir: 1_000_000, wallMs: 2000 }, null, 100)).toBe(10_000);
    expect(irPerTransaction({ ir: 5, wallMs: 2000 }, { ir: 10_000, wallMs: 1000 }, 100)).toBe(0);
    expect(irPerTransaction({ ir: 1_000_000, wallMs: 2000 }, null, 0)).toBeNull();
  });

  test("formatting", () => {
    expect(formatIr(4812.4)).toBe("4.8k");
    expect(formatIr(150_400)).toBe("150k");
    expect(formatIr(null)).toBe("–");
  });
});
