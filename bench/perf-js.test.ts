// Unit tests of bench/perf-js.ts: JSC's jitdump read into code ranges, perf samples attributed to functions and objects.
import { describe, expect, test } from "bun:test";
import { attributeSamples, labelled, parseCompiledSources, parseJitDump, samplesByThread } from "./perf-js.ts";

/** A jitdump as JSC writes one: a 40-byte header, then JIT_CODE_LOAD records (and one record of another kind). */
function jitdump(loads: Array<{ addr: number; size: number; name: string }>, cutLast = false): Uint8Array {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(40);
  header.writeUInt32LE(0x4a695444, 0);
  header.writeUInt32LE(1, 4);
  header.writeUInt32LE(40, 8);
  parts.push(header);
  const other = Buffer.alloc(24);
  other.writeUInt32LE(3, 0); // JIT_CODE_DEBUG_INFO-like: skipped
  other.writeUInt32LE(24, 4);
  parts.push(other);
  for (const l of loads) {
    const name = Buffer.from(`${l.name}\0`);
    const code = Buffer.alloc(l.size, 0x90);
    const rec = Buffer.alloc(56 + name.length + code.length);
    rec.writeUInt32LE(0, 0);
    rec.writeUInt32LE(rec.length, 4);
    rec.writeBigUInt64LE(123n, 8);
    rec.writeUInt32LE(7, 16);
    rec.writeUInt32LE(7, 20);
    rec.writeBigUInt64LE(BigInt(l.addr), 24);
    rec.writeBigUInt64LE(BigInt(l.addr), 32);
    rec.writeBigUInt64LE(BigInt(l.size), 40);
    rec.writeBigUInt64LE(1n, 48);
    name.copy(rec, 56);
    code.copy(rec, 56 + name.length);
    parts.push(rec);
  }
  const all = Buffer.concat(parts);
  return cutLast ? all.subarray(0, all.length - 3) : all;
}

describe("parseJitDump", () => {
  test("each code load becomes a range named as JSC names it, sorted by address; other records are skipped", () => {
    const ranges = parseJitDump(jitdump([{ addr: 0x7000, size: 64, name: "JSC-FTL: relay#DekIXu" }, { addr: 0x5000, size: 16, name: "JSC-Baseline: tick#AB" }]));
    expect(ranges).toEqual([
      { start: 0x5000, end: 0x5010, label: "JSC-Baseline: tick#AB" },
      { start: 0x7000, end: 0x7040, label: "JSC-FTL: relay#DekIXu" },
    ]);
  });

  test("a record cut short (the process still writing) ends the file; no magic is an error", () => {
    expect(parseJitDump(jitdump([{ addr: 0x1000, size: 8, name: "a" }, { addr: 0x2000, size: 8, name: "b" }], true)).map((r) => r.label)).toEqual(["a"]);
    expect(() => parseJitDump(new Uint8Array(64))).toThrow(/jitdump/);
  });
});

describe("attributeSamples", () => {
  const ranges = parseJitDump(
    jitdump([
      { addr: 0x1000, size: 0x100, name: "JSC-FTL: process#A" },
      { addr: 0x2000, size: 0x100, name: "JSC-FTL: old#B" },
      { addr: 0x2000, size: 0x80, name: "JSC-DFG: reused#C" },
    ]),
  );
  test("JIT samples by function, the latest load of a reused address winning; others by object; unnamed JIT code apart", () => {
    const script = [
      "          1010 (/tmp/perf-42.map)",
      "          10ff (/tmp/perf-42.map)",
      "          2040 ([JIT] tid 42)",
      "          2090 (/tmp/perf-42.map)",
      "          9999 (/tmp/perf-42.map)",
      "  ffffffff8100 ([kernel.kallsyms])",
      "        1a40d30 (/work/main/node_modules/bun/bin/bun.exe)",
      "",
      "not a sample line",
    ].join("\n");
    const { total, rows } = attributeSamples(script, ranges);
    expect(total).toBe(7);
    expect(Object.fromEntries(rows)).toEqual({
      "JSC-FTL: process#A": 2,
      "JSC-DFG: reused#C": 1,
      "JSC-FTL: old#B": 1,
      "[JIT code the dump does not name]": 1,
      "[kernel.kallsyms]": 1,
      "[bun.exe]": 1,
    });
  });
});

describe("parseCompiledSources and labelled", () => {
  // as Bun 1.4.5 prints them with BUN_JSC_dumpSourceAtDFGTime=1 (interleaved with pgbun's own log lines)
  const log = [
    "[1] Compiled #EX3gkM:[0x5de8bff82c0->0x5de8bfc5e00, BaselineFunctionCall, 9 (StrictMode)]",
    "'''function (x) => x + 1'''",
    "",
    '{"level":30,"msg":"listening"}',
    "[1] Compiled relay#DekIXu:[0x1->0x2, DFGFunctionCall, 40 (StrictMode)]",
    "'''function relay(client, type,",
    "    buf) { return 1; }'''",
    "[2] Compiled #EX3gkM:[0x5de8bff82c0->0x5de8bfc5e00, DFGFunctionCall, 9 (StrictMode) (HadFTLReplacement)]",
    "'''function (x) => x + 2'''",
  ].join("\n");

  test("each hash's first source, on one line; an anonymous row gets its source, a named one stays as it is", () => {
    const sources = parseCompiledSources(log);
    expect(sources.get("EX3gkM")).toBe("function (x) => x + 1");
    expect(sources.get("DekIXu")).toBe("function relay(client, type, buf) { return 1; }");
    expect(labelled("JSC-FTL: #EX3gkM", sources)).toBe("JSC-FTL: #EX3gkM (function (x) => x + 1)");
    expect(labelled("JSC-FTL: relay#DekIXu", sources)).toBe("JSC-FTL: relay#DekIXu");
    expect(labelled("JSC-DFG: #AAAAAA", sources)).toBe("JSC-DFG: #AAAAAA");
    expect(labelled("[bun.exe]", sources)).toBe("[bun.exe]");
  });
});

describe("samplesByThread", () => {
  test("reads perf report's columns, names with one space included, JIT code of every tid as one object, most first", () => {
    const report = [
      "            50  bun          [JIT] tid 3922   ",
      "             7  bun          [JIT] tid 4000",
      "             5  bun          [kernel.kallsyms]",
      "            60  JSC PerfLog  [kernel.kallsyms]",
      "             3  JITWorker    bun.exe          ",
      "",
      "# a comment line",
    ].join("\n");
    expect(samplesByThread(report)).toEqual([
      { samples: 60, thread: "JSC PerfLog", object: "[kernel.kallsyms]" },
      { samples: 57, thread: "bun", object: "JIT code" },
      { samples: 5, thread: "bun", object: "[kernel.kallsyms]" },
      { samples: 3, thread: "JITWorker", object: "bun.exe" },
    ]);
  });
});
