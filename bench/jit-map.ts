// Names the JIT code in a callgrind dump of pgbun: instructions per transaction per JS function, from JSC's code log.
// Usage: node_modules/.bin/bun bench/jit-map.ts JIT_LOG CALLGRIND_DUMP TRANSACTIONS [ROWS]
//   (JIT_LOG and the dumps from `bun bench/instructions.ts --jit-log FILE --annotate DIR`; a dump is DIR/callgrind.<id>.<n>-01)
import { readFileSync } from "node:fs";

/** A range of JIT code and what it is: "<tier> <name>#<hash>" and the start of its source where the log gives it. */
export interface CodeRange {
  start: number;
  end: number;
  label: string;
}

/**
 * Reads the code log JSC writes with BUN_JSC_dumpDisassembly, dumpDFGDisassembly and dumpFTLDisassembly: each
 * "Generated <tier> code for <name>…" is followed by the addresses of its code ("Code at [a, b)" for baseline and
 * DFG, "range a...b" pieces for FTL); thunks give their range on the same line.
 */
export function parseJitLog(text: string): CodeRange[] {
  const ranges: CodeRange[] = [];
  const sources = new Map<string, string>();
  let cur: { tier: string; name: string } | null = null;
  let lo = -1;
  let hi = -1;
  const close = () => {
    if (cur !== null && lo >= 0) ranges.push({ start: lo, end: hi, label: `${cur.tier} ${cur.name}` });
    cur = null;
    lo = hi = -1;
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("Generated ")) {
      close();
      const thunk = /^Generated (.*?) code for (.*?): ?\[(0x[0-9a-f]+), (0x[0-9a-f]+)\)/.exec(line);
      if (thunk) {
        ranges.push({ start: parseInt(thunk[3]!, 16), end: parseInt(thunk[4]!, 16), label: `${thunk[1]} ${thunk[2]}`.slice(0, 80) });
        continue;
      }
      const m = /^Generated (.*?) code for ([^:[]*)/.exec(line);
      if (m) cur = { tier: m[1]!.replace(" JIT", ""), name: m[2] || "?" };
      continue;
    }
    if (cur === null) continue;
    const t = line.trim();
    if (t.startsWith("Source:")) {
      sources.set(cur.name, t.slice(7).trim().slice(0, 60));
      continue;
    }
    const code = /Code at \[(0x[0-9a-f]+), (0x[0-9a-f]+)\)/.exec(line);
    if (code) {
      lo = parseInt(code[1]!, 16);
      hi = parseInt(code[2]!, 16);
      close();
      continue;
    }
    const piece = /range (0x[0-9a-f]+)\.\.\.(0x[0-9a-f]+)/.exec(line);
    if (piece) {
      const a = parseInt(piece[1]!, 16);
      const b = parseInt(piece[2]!, 16);
      lo = lo < 0 ? a : Math.min(lo, a);
      hi = hi < 0 ? b : Math.max(hi, b);
    }
  }
  close();
  for (const r of ranges) {
    const name = r.label.slice(r.label.indexOf(" ") + 1);
    const src = sources.get(name);
    if (src !== undefined) r.label += `  | ${src}`;
  }
  return ranges.sort((a, b) => a.start - b.start);
}

/** Self cost (Ir) per (object, function) of a callgrind dump (name compression resolved; call lines' inclusive costs skipped). */
export function selfCosts(text: string): Map<string, { object: string; fn: string; ir: number }> {
  const names = new Map<string, string>();
  const out = new Map<string, { object: string; fn: string; ir: number }>();
  let object = "";
  let fn = "";
  let callCost = false;
  for (const line of text.split("\n")) {
    const m = /^(ob|fn|cob|cfn|fl|fi|fe|cfi|cfl)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (m) {
      const kind = m[1]!;
      const key = (kind === "ob" || kind === "cob" ? "ob" : kind === "fn" || kind === "cfn" ? "fn" : "fl") + m[2];
      if (m[3] !== undefined) names.set(key, m[3]);
      if (kind === "ob") object = names.get(key) ?? key;
      else if (kind === "fn") fn = names.get(key) ?? key;
      continue;
    }
    if (line.startsWith("calls=")) {
      callCost = true;
      continue;
    }
    const c = line.charCodeAt(0);
    if ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2a) {
      if (callCost) {
        callCost = false; // the inclusive cost of the call above: the callee's, counted there
        continue;
      }
      const ir = Number(line.split(" ")[1]);
      if (!Number.isFinite(ir)) continue;
      const k = `${object}\u0000${fn}`;
      const e = out.get(k);
      if (e) e.ir += ir;
      else out.set(k, { object, fn, ir });
    }
  }
  return out;
}

/** Ir per transaction per JS function (JIT code named by the log), per native object, and what no range covers. */
export function attribute(ranges: CodeRange[], costs: Iterable<{ object: string; fn: string; ir: number }>, transactions: number): Array<[string, number]> {
  const starts = ranges.map((r) => r.start);
  const by = new Map<string, number>();
  const add = (k: string, v: number) => by.set(k, (by.get(k) ?? 0) + v);
  for (const { object, fn, ir } of costs) {
    if (object !== "???") {
      add(`[native] ${object.split("/").pop()}`, ir);
      continue;
    }
    const a = parseInt(fn.split("'")[0]!, 16);
    let lo = 0;
    let hi = starts.length - 1;
    let i = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= a) {
        i = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    add(i >= 0 && a < ranges[i]!.end ? ranges[i]!.label : "[JIT code the log does not name]", ir);
  }
  return [...by.entries()].map(([k, v]) => [k, v / transactions] as [string, number]).sort((a, b) => b[1] - a[1]);
}

if (import.meta.main) {
  const [log, dump, txns, rows] = process.argv.slice(2);
  if (!log || !dump || !txns) {
    console.error("usage: bun bench/jit-map.ts JIT_LOG CALLGRIND_DUMP TRANSACTIONS [ROWS]");
    process.exit(2);
  }
  const table = attribute(parseJitLog(readFileSync(log, "utf8")), selfCosts(readFileSync(dump, "utf8")).values(), Number(txns));
  const total = table.reduce((s, [, v]) => s + v, 0);
  console.log(`| Ir/txn | code (of ${Math.round(total)} Ir/txn in this dump, idle time not subtracted) |\n| ---: | --- |`);
  for (const [k, v] of table.slice(0, Number(rows ?? 40))) console.log(`| ${Math.round(v)} | ${k.replace(/\|/g, "\\|")} |`);
}
