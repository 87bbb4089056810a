// Native CPU profile of pgbun per JS function: perf samples of the running pooler named by JSC's jitdump (settled JIT).
// Usage: node_modules/.bin/bun bench/perf-js.ts [--protocol simple|extended|prepared] [--clients N] [--transactions N]
//        [--pooler pgbun|passthrough] [--frequency HZ] [--rows N] [--names] [--pool-size N (20)] [--callers]
//        [--without B,... | --minimal] [--threads]
//   --without: pgbun with those optional built-ins stood in for by bench/plugins/stub.ts; --minimal: all of them (only
//   auth, pool and transaction-detection), as bench/instructions.ts's pgbun-minimal
//   --callers: call chains (frame pointers) too; a second table credits each native sample (bun.exe, libc) to the
//   nearest JS function up its chain: which JS calls what the runtime's native code then does
//   --threads: a table of samples by thread (main, JITWorker, HeapHelper, mi-scavenger) and object as well
//   (its own PostgreSQL; needs perf; pgbun runs with BUN_JSC_useJITDump, the pass-through without: its JIT is one row)
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPgbun } from "../tests/harness/pgbun.ts";
import { flagValue } from "./args.ts";
import type { CodeRange } from "./jit-map.ts";
import { startBenchPostgres } from "./database.ts";
import { startPassthrough } from "./passthrough-process.ts";
import { ablatedPlugins, pgbunConfig } from "./pgbun-process.ts";
import { OPTIONAL_BUILTINS } from "./instructions.ts";
import { cleanupAll, installSignalHandlers, onCleanup, trackProcess } from "./processes.ts";
import { runTransactions, type Protocol } from "./pgbench.ts";

/** jitdump's magic ("JiTD", read little-endian) and its JIT_CODE_LOAD record id (Linux tools/perf/util/jitdump.h). */
const JITDUMP_MAGIC = 0x4a695444;
const JIT_CODE_LOAD = 0;

/**
 * The code ranges of a jitdump file as JSC writes it with BUN_JSC_useJITDump: a header (magic, version, header size,
 * ...), then records of (id, total size, timestamp); a JIT_CODE_LOAD record carries pid, tid, vma, code address,
 * code size, code index and the NUL-terminated name ("JSC-FTL: relay#DekIXu"), then the code.
 */
export function parseJitDump(b: Uint8Array): CodeRange[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.byteLength < 12 || v.getUint32(0, true) !== JITDUMP_MAGIC) throw new Error("not a jitdump file (magic JiTD)");
  const ranges: CodeRange[] = [];
  let off = v.getUint32(8, true);
  while (off + 16 <= b.byteLength) {
    const id = v.getUint32(off, true);
    const size = v.getUint32(off + 4, true);
    if (size < 16 || off + size > b.byteLength) break; // a record cut short: the process was still writing
    if (id === JIT_CODE_LOAD) {
      const addr = Number(v.getBigUint64(off + 32, true));
      const codeSize = Number(v.getBigUint64(off + 40, true));
      const nameAt = off + 56;
      let nameEnd = nameAt;
      while (nameEnd < off + size && b[nameEnd] !== 0) nameEnd++;
      ranges.push({ start: addr, end: addr + codeSize, label: new TextDecoder().decode(b.subarray(nameAt, nameEnd)) });
    }
    off += size;
  }
  // code freed and its address reused: the later load sorts after the earlier one (a stable sort), and lookup takes it
  return ranges.sort((a, b) => a.start - b.start);
}

/** The range holding `ip`, by binary search over ranges sorted by start; the latest of overlapping ones. */
function lookup(ranges: CodeRange[], ip: number): CodeRange | undefined {
  let lo = 0;
  let hi = ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]!.start <= ip) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  for (let i = found; i >= 0 && i > found - 8; i--) if (ip < ranges[i]!.end && ip >= ranges[i]!.start) return ranges[i];
  return undefined;
}

/**
 * Where each function's code came from, by its hash: JSC prints, with BUN_JSC_dumpSourceAtDFGTime, each
 * compiled code block as "[n] Compiled NAME#HASH:[...]" and then its source between triple quotes. Only the
 * source's start is kept, on one line: enough to find an anonymous function (a tap's arrow) in the tree.
 */
export function parseCompiledSources(text: string, width = 70): Map<string, string> {
  const out = new Map<string, string>();
  const re = /Compiled [^\n#]*#([A-Za-z0-9]{6}):\[[^\n]*\n'''([\s\S]*?)'''/g;
  for (const m of text.matchAll(re)) {
    if (!out.has(m[1]!)) out.set(m[1]!, m[2]!.replace(/\s+/g, " ").trim().slice(0, width));
  }
  return out;
}

/** A row's label with the source start of a function JSC names by its hash alone ("JSC-FTL: #B4Nncm"). */
export function labelled(label: string, sources: Map<string, string>): string {
  const m = /^JSC-[A-Za-z]+: #([A-Za-z0-9]{6})$/.exec(label);
  const src = m ? sources.get(m[1]!) : undefined;
  return src === undefined ? label : `${label} (${src})`;
}

/**
 * Samples per row from `perf script -F ip,dso` output without call chains (one "ip (dso)" line per sample): JIT
 * addresses (perf names their object perf-PID.map, [JIT] or [unknown]) by the jitdump's ranges, everything else by
 * its object ([bun.exe], [kernel.kallsyms], [libc.so.6]).
 */
export function attributeSamples(script: string, ranges: CodeRange[]): { total: number; rows: Map<string, number> } {
  const rows = new Map<string, number>();
  let total = 0;
  for (const line of script.split("\n")) {
    const m = /^\s*([0-9a-f]+)\s+\((.*)\)\s*$/.exec(line);
    if (!m) continue;
    total++;
    const dso = m[2]!.split("/").pop()!;
    let key: string;
    if (dso.startsWith("perf-") || dso.startsWith("[JIT]") || dso === "[unknown]") key = lookup(ranges, parseInt(m[1]!, 16))?.label ?? "[JIT code the dump does not name]";
    else key = `[${dso.replace(/^\[|\]$/g, "")}]`;
    rows.set(key, (rows.get(key) ?? 0) + 1);
  }
  return { total, rows };
}

/**
 * From `perf script -F ip,dso` output with call chains (a block of "ip (dso)" lines per sample, the sampled one
 * first, blank lines between): each sample in native code (not JIT, not the kernel) credited to the first JIT
 * frame up its chain, "[no JS caller]" when none is found.
 */
export function nativeByCaller(script: string, ranges: CodeRange[]): Map<string, number> {
  const rows = new Map<string, number>();
  const isJit = (dso: string) => dso.startsWith("perf-") || dso.startsWith("[JIT]") || dso === "[unknown]";
  for (const block of script.split(/\n\s*\n/)) {
    const frames: Array<[number, string]> = [];
    for (const line of block.split("\n")) {
      const m = /^\s*([0-9a-f]+)\s+\((.*)\)\s*$/.exec(line);
      if (m) frames.push([parseInt(m[1]!, 16), m[2]!.split("/").pop()!]);
    }
    if (frames.length === 0) continue;
    const own = frames[0]![1];
    if (isJit(own) || own.includes("kernel")) continue;
    let key = "[no JS caller]";
    for (let i = 1; i < frames.length; i++) {
      const [ip, dso] = frames[i]!;
      if (!isJit(dso)) continue;
      key = lookup(ranges, ip)?.label ?? "[JIT code the dump does not name]";
      break;
    }
    key = `${own.replace(/^\[|\]$/g, "")} under ${key}`;
    rows.set(key, (rows.get(key) ?? 0) + 1);
  }
  return rows;
}


async function main(): Promise<void> {
  installSignalHandlers();
  const argv = process.argv.slice(2);
  const arg = (f: string) => flagValue(argv, f);
  const protocol = (arg("--protocol") ?? "extended") as Protocol;
  const clients = Number(arg("--clients") ?? 10);
  const transactions = Number(arg("--transactions") ?? 200_000);
  const pooler = arg("--pooler") ?? "pgbun";
  const frequency = Number(arg("--frequency") ?? 999);
  const rowsShown = Number(arg("--rows") ?? 40);
  // --pool-size at the client count: no client ever waits for a server (what the waiting path costs, by difference)
  const poolSize = Number(arg("--pool-size") ?? 20);
  const dir = join(tmpdir(), `pgbun-perf-js-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  const db = await startBenchPostgres({ maxConnections: 250, scale: 1 });
  const env: Record<string, string> = { BUN_JSC_useJITDump: "1", BUN_JSC_jitDumpDirectory: dir };
  // --names: each function's source as it is optimised names the anonymous ones (taps are arrows) in the rows.
  // Opt-in: Bun 1.4.5 with this option now and then dies of SIGSEGV (2 of some 10 runs here), at start-up or mid-run
  if (argv.includes("--names")) env.BUN_JSC_dumpSourceAtDFGTime = "1";
  let logs = (): string => "";
  let pid: number;
  let port: number;
  if (pooler === "passthrough") {
    const pt = await startPassthrough(db.pg);
    pid = pt.proc.pid;
    port = pt.port;
  } else {
    const config = pgbunConfig("plain", db.pg, { poolSize, maxClientConn: 1000 }) as { pgbun: Record<string, unknown> };
    const without = argv.includes("--minimal") ? [...OPTIONAL_BUILTINS] : (arg("--without")?.split(",") ?? []);
    const plugins = ablatedPlugins(without);
    if (plugins) config.pgbun.plugins = plugins;
    const pb = await startPgbun({ config, pg: db.pg, timeoutMs: 30_000, env });
    onCleanup(async () => void (await pb.stop("SIGQUIT")));
    pid = pb.proc.pid;
    port = pb.port;
    logs = pb.logs;
  }
  await runTransactions(db, port, protocol, clients, Math.min(50_000, transactions)); // warm: the JIT's tiers settle (profile.md: natively they do)
  const data = join(dir, "perf.data");
  const callers = argv.includes("--callers");
  const perf = trackProcess(Bun.spawn(["perf", "record", "-q", ...(callers ? ["--call-graph", "fp"] : []), "-F", String(frequency), "-o", data, "-p", String(pid)], { stdout: "ignore", stderr: "pipe" }));
  await Bun.sleep(300);
  const run = await runTransactions(db, port, protocol, clients, transactions);
  perf.kill("SIGINT");
  await perf.exited;
  const done = run.transactions;
  const dumps = readdirSync(dir).filter((f) => f.startsWith("jit-") && f.endsWith(".dump"));
  const ranges = dumps.flatMap((f) => parseJitDump(readFileSync(join(dir, f))));
  // with call chains each sample is a block whose first line is the sampled address: the flat rows read those
  const perfScript = Bun.spawnSync(["perf", "script", "-i", data, "-F", "ip,dso"], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  const script = callers ? perfScript.split(/\n\s*\n/).map((b) => b.trimStart().split("\n")[0]!).join("\n") : perfScript;
  const { total, rows } = attributeSamples(script, ranges);
  const sources = parseCompiledSources(logs());
  // each sample stands for 1/frequency s of one thread's CPU: µs per transaction = samples ÷ frequency ÷ transactions
  const usPerTxn = (n: number) => ((n / frequency) * 1e6) / done;
  console.log(`perf-js: ${pooler}${pooler === "pgbun" ? ` (pool size ${poolSize})` : ""}, pgbench -S -M ${protocol} -c ${clients}, ${done} transactions (${Math.round(run.tps)} tps under perf), ${total} samples at ${frequency} Hz`);
  console.log(`total ${usPerTxn(total).toFixed(2)} µs/txn of CPU (perf's own cost included: compare rows within one run)\n`);
  console.log("| share | µs/txn | code |\n| ---: | ---: | --- |");
  for (const [k, n] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, rowsShown)) console.log(`| ${((n / total) * 100).toFixed(1)}% | ${usPerTxn(n).toFixed(3)} | ${labelled(k, sources).replace(/\|/g, "\\|").slice(0, 120)} |`);
  if (argv.includes("--threads")) printThreads(data, usPerTxn);
  if (!callers) return;
  console.log("\nNative samples by the nearest JS function up the chain (frame pointers: a chain the runtime's code breaks ends in \"no JS caller\")\n");
  console.log("| µs/txn | native code under |\n| ---: | --- |");
  for (const [k, n] of [...nativeByCaller(perfScript, ranges)].sort((a, b) => b[1] - a[1]).slice(0, rowsShown)) console.log(`| ${usPerTxn(n).toFixed(3)} | ${labelled(k, sources).replace(/\|/g, "\\|").slice(0, 140)} |`);
}

/**
 * `perf report --sort comm,dso -F sample,comm,dso` read into (samples, thread, object) rows, most samples first; its
 * columns are two or more spaces apart (a thread or object name may hold one: "JSC PerfLog", "[JIT] tid 42"), and
 * JIT code, named per thread by perf, is one object.
 */
export function samplesByThread(report: string): Array<{ samples: number; thread: string; object: string }> {
  const rows: Array<{ samples: number; thread: string; object: string }> = [];
  for (const line of report.split("\n")) {
    const cols = line.trim().split(/\s{2,}/);
    if (cols.length !== 3 || !/^\d+$/.test(cols[0]!)) continue;
    const object = cols[2]!.startsWith("[JIT]") ? "JIT code" : cols[2]!;
    const same = rows.find((r) => r.thread === cols[1] && r.object === object);
    if (same) same.samples += Number(cols[0]);
    else rows.push({ samples: Number(cols[0]), thread: cols[1]!, object });
  }
  return rows.sort((x, y) => y.samples - x.samples);
}

/**
 * --threads: samples by thread and object: how much of [bun.exe], libc and the kernel is the main thread's and how
 * much the runtime's helper threads' (the JIT's, the GC's). bun.exe carries no function symbols, so no finer.
 */
function printThreads(data: string, usPerTxn: (samples: number) => number): void {
  const report = Bun.spawnSync(["perf", "report", "-i", data, "--no-children", "--sort", "comm,dso", "--stdio", "-q", "-F", "sample,comm,dso"], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  console.log("\nSamples by thread and object\n");
  console.log("| µs/txn | thread | object |\n| ---: | --- | --- |");
  for (const r of samplesByThread(report)) {
    const us = usPerTxn(r.samples);
    if (us >= 0.005) console.log(`| ${us.toFixed(3)} | ${r.thread} | ${r.object} |`);
  }
}

if (import.meta.main) {
  try {
    await main();
  } finally {
    await cleanupAll();
  }
}
