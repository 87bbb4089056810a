// Unit tests of bench/jit-map.ts: JSC's code log read into ranges, callgrind self costs, attribution per function.
import { describe, expect, test } from "bun:test";
import { attribute, parseJitLog, selfCosts } from "./jit-map.ts";

const LOG = `Generated JIT code for thunk: Polymorphic normal thunk: [0x1000, 0x1100) 256 bytes:
    disassembly not available for range 0x1000...0x1100
Generated Baseline JIT code for relay#AAAAAA:[0x1->0x2, BaselineFunctionCall, 40 (StrictMode)], instructions size = 40
   Source: relay(client, type) { const hook = this.core.serverHooks[type];
   Code at [0x2000, 0x2400):
Generated FTL code for relay#AAAAAA:[0x1->0x2->0x3, FTLFunctionCall, 40 (StrictMode)], instructions size = 40:
asm                 disassembly not available for range 0x3000...0x3040
Air               Move 48(%rbp), %rdx
asm                 disassembly not available for range 0x3040...0x3100
`;

const DUMP = `version: 1
positions: line
events: Ir
ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fn=(1) memcpy
0 500
ob=(2) ???
fn=(2) 0x0000000000001010
0 300
fn=(3) 0x0000000000003050
0 1000
cfn=(2)
calls=1 0
0 300
fn=(4) 0x0000000000009000
0 200
`;

describe("jit-map", () => {
  test("thunks, baseline and FTL code get their ranges and labels, sources from the baseline entry", () => {
    const r = parseJitLog(LOG);
    expect(r.map((x) => [x.start, x.end])).toEqual([
      [0x1000, 0x1100],
      [0x2000, 0x2400],
      [0x3000, 0x3100],
    ]);
    expect(r[0]!.label).toBe("JIT thunk: Polymorphic normal thunk");
    expect(r[2]!.label).toStartWith("FTL relay#AAAAAA  | relay(client, type)");
  });

  test("self costs skip the inclusive cost of calls; JIT addresses land in their function, the rest is named as unknown", () => {
    const costs = [...selfCosts(DUMP).values()];
    expect(costs.reduce((s, c) => s + c.ir, 0)).toBe(2000);
    const rows = new Map(attribute(parseJitLog(LOG), costs, 10));
    expect(rows.get("[native] libc.so.6")).toBe(50);
    expect(rows.get("JIT thunk: Polymorphic normal thunk")).toBe(30);
    expect([...rows.entries()].find(([k]) => k.startsWith("FTL relay"))?.[1]).toBe(100);
    expect(rows.get("[JIT code the log does not name]")).toBe(20);
  });
});
