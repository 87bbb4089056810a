// Shares of pgbun's CPU-profile samples per plugin and per core file (Bun --cpu-prof): ratios, which load skews little.
// Usage: node_modules/.bin/bun bench/cpu-shares.ts [--rev REV] [--transactions N] [--clients N] [--protocol P]
//        [--interval US]   (starts its own PostgreSQL and one pgbun with default plugins under --cpu-prof)
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { waitForPort } from "../tests/harness/pgbun.ts";
import { freePort, harnessTempDir } from "../tests/harness/postgres.ts";
import { pgClientEnv, startBenchPostgres, BENCH_DATABASE } from "./database.ts";
import { pgbunConfig } from "./pgbun-process.ts";
import { cleanupAll, installSignalHandlers, killProcess, trackProcess } from "./processes.ts";
import { prepareBaselineTree } from "./worktree.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

/**
 * Where a frame's code lives: "plugins/<name>", "core/<file>", "plugin-sdk/<file>", "(runtime)" for Bun's own
 * functions (no URL: socket.write, the event loop's native callbacks), "(idle)", "(gc)", or "other".
 */
export function categoryOf(url: string, functionName: string): string {
  if (functionName === "(idle)" || functionName === "(program)") return "(idle)";
  if (functionName === "(garbage collector)") return "(gc)";
  const m = /\/(plugins\/[^/]+\/.+|core\/.+|plugin-sdk\/.+|bin\/.+)$/.exec(url);
  if (m) return m[1]!.startsWith("plugins/") ? m[1]!.split("/").slice(0, 2).join("/") : m[1]!.replace(/\.ts$/, "");
  return url === "" ? "(runtime)" : "other";
}

/** Self samples per category, and per plugin the samples with one of its frames anywhere on the stack. */
export function shares(p: CpuProfile): { total: number; self: Map<string, number>; onStack: Map<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const onStack = new Map<string, number>();
  let total = 0;
  for (const id of p.samples) {
    const node = byId.get(id);
    if (!node) continue;
    const cat = categoryOf(node.callFrame.url, node.callFrame.functionName);
    if (cat === "(idle)") continue;
    total++;
    self.set(cat, (self.get(cat) ?? 0) + 1);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      const c = categoryOf(f.url, f.functionName);
      if (c.startsWith("plugins/") || c.startsWith("core/")) seen.add(c);
    }
    for (const c of seen) onStack.set(c, (onStack.get(c) ?? 0) + 1);
  }
  return { total, self, onStack };
}

/** The functions with the most self samples (name and file), idle left out. */
export function topFunctions(p: CpuProfile, n: number): Array<[string, number]> {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const count = new Map<string, number>();
  for (const id of p.samples) {
    const f = byId.get(id)?.callFrame;
    if (!f || categoryOf(f.url, f.functionName) === "(idle)") continue;
    const key = `${f.functionName || "(anonymous)"}${f.url ? ` (${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1})` : ""}`;
    count.set(key, (count.get(key) ?? 0) + 1);
  }
  return [...count.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

/** A markdown table of the larger shares (≥ 0.5 %), self and on the stack, highest self first. */
export function sharesTable(s: ReturnType<typeof shares>): string[] {
  const pct = (n: number | undefined) => `${(((n ?? 0) * 100) / Math.max(1, s.total)).toFixed(1)} %`;
  const cats = new Set([...s.self.keys(), ...s.onStack.keys()]);
  const rows = [...cats].sort((a, b) => (s.self.get(b) ?? 0) - (s.self.get(a) ?? 0) || (s.onStack.get(b) ?? 0) - (s.onStack.get(a) ?? 0));
  const lines = [`| code | self | on the stack | (of ${s.total} busy samples) |`, "| --- | --- | --- | --- |"];
  for (const c of rows) if ((s.self.get(c) ?? 0) * 200 >= s.total || (s.onStack.get(c) ?? 0) * 200 >= s.total) lines.push(`| ${c} | ${pct(s.self.get(c))} | ${s.onStack.has(c) ? pct(s.onStack.get(c)) : ""} | |`);
  return lines;
}

if (import.meta.main) {
  installSignalHandlers();
  const argv = process.argv.slice(2);
  const arg = (f: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
  const transactions = Number(arg("--transactions") ?? 30000);
  const clients = Number(arg("--clients") ?? 10);
  const protocol = arg("--protocol") ?? "simple";
  const interval = arg("--interval") ?? "100";
  try {
    let entry = resolve(import.meta.dir, "..", "bin", "pgbun.ts");
    if (arg("--rev")) entry = (await prepareBaselineTree(arg("--rev")!)).entry;
    const db = await startBenchPostgres({ maxConnections: 200, scale: 1 });
    const dir = await harnessTempDir("cpu-prof");
    const port = await freePort();
    const config = pgbunConfig("plain", db.pg, { poolSize: 20, maxClientConn: 1000 }) as { pgbun: Record<string, unknown> };
    config.pgbun.listen_port = port;
    writeFileSync(join(dir, "pgbun.json"), JSON.stringify(config));
    const bun = resolve(import.meta.dir, "..", "node_modules", ".bin", "bun");
    const proc = trackProcess(
      Bun.spawn([bun, "--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${interval}`, entry, "start", "--config", join(dir, "pgbun.json")], {
        cwd: resolve(entry, "..", ".."),
        stdin: "ignore",
        stdout: "ignore",
        stderr: "inherit",
      }),
    );
    await waitForPort("127.0.0.1", port, 30_000);
    const pgbench = async (t: number) => {
      const args = ["-n", "-S", "-M", protocol, "-c", String(clients), "-j", "1", "-t", String(Math.round(t / clients)), "-h", "127.0.0.1", "-p", String(port), "-U", db.pg.superuser, BENCH_DATABASE];
      const p = Bun.spawn([db.pgbench, ...args], { env: pgClientEnv(), stdout: "ignore", stderr: "inherit" });
      if ((await p.exited) !== 0) throw new Error(`pgbench ${args.join(" ")} failed`);
    };
    await pgbench(transactions);
    await killProcess(proc, "SIGINT", 20_000);
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no .cpuprofile in ${dir}`);
    const s = shares(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile);
    console.log(`pgbun (default plugins) under pgbench -S -M ${protocol} -c ${clients}, ${transactions} transactions, sampled every ${interval} µs (the warm-up included)\n`);
    console.log(sharesTable(s).join("\n"));
    const prof = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
    console.log(`\nfunctions with the most self samples: ${topFunctions(prof, 12).map(([f, n]) => `${f} ${((n * 100) / s.total).toFixed(1)} %`).join(", ")}`);
  } finally {
    await cleanupAll();
  }
}
