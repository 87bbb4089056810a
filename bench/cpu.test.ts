// Unit tests of bench/cpu.ts: the scheduler's exact runtime of a process tree, and when CPU per transaction uses it.
import { expect, test } from "bun:test";
import { cpuPerTransaction, formatCpuUs, sampleCpu, treeRuntime, type CpuSample } from "./cpu.ts";

test("treeRuntime: this process's threads' runtime in ns, which grows with work done in between", () => {
  const a = treeRuntime(process.pid);
  expect(a).not.toBeNull();
  expect(a!.threads).toContain(`${process.pid}/${process.pid}`);
  const until = performance.now() + 30;
  let x = 0;
  while (performance.now() < until) x++;
  expect(x).toBeGreaterThan(0);
  const b = treeRuntime(process.pid)!;
  // 30 ms of busy work (less CPU when other work holds the cores), counted in ns: not rounded to a 4 ms tick
  expect(b.ns - a!.ns).toBeGreaterThan(1e6);
  expect(b.ns - a!.ns).toBeLessThan(1e9);
  expect(b.ns % 1e6).not.toBe(0);
  expect(sampleCpu(process.pid)!.runtime).not.toBeNull();
});

test("cpuPerTransaction: exact from the runtime over the same threads, from ticks when a thread came or went", () => {
  const s = (ticks: number, ns: number, threads: string): CpuSample => ({ ticks, processes: 1, runtime: { ns, threads } });
  const exact = cpuPerTransaction(s(100, 1e9, "1/1 1/2"), s(103, 1.0123e9, "1/1 1/2"), 1000)!;
  expect(exact.exact).toBe(true);
  expect(exact.usPerTxn).toBeCloseTo(12.3, 6);
  expect(formatCpuUs(exact.usPerTxn, exact.resolutionUs)).toBe("12.3");
  const ticks = cpuPerTransaction(s(100, 1e9, "1/1 1/2"), s(103, 1.0123e9, "1/1"), 1000)!;
  expect(ticks.exact).toBeUndefined();
  expect(ticks.usPerTxn).toBeGreaterThan(0); // 3 ticks at CLK_TCK
  expect(cpuPerTransaction({ ticks: 1, processes: 1 }, { ticks: 2, processes: 1 }, 10)!.exact).toBeUndefined();
});
