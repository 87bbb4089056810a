// pgbun at this tree against another commit or other plugins: user and kernel CPU per transaction over alternating rounds.
// Usage: node_modules/.bin/bun bench/ab.ts (--rev REV | --without B,... | --minimal | --plus FILE,... | --env K=V,...) [--base minimal]
//        [--cells extended:50,simple:10,...] [--rounds 6] [--transactions N]; or --variant V: this tree against itself as
//        bench/pgbun-process.ts's variant V (session: no hand-over per transaction, what a hand-over costs natively)
//   (its own PostgreSQL, both pgbuns side by side, pool 20; bench/run.ts's before-after rows run 8 s twice, which CPU
//   steal and load scatter by more than a change of 1 µs: this alternates longer rounds). --without: the other side is
//   this tree with those optional built-ins stood in for by bench/plugins/stub.ts (what each costs, natively);
//   --minimal: all of them (auth, pool and transaction-detection only); --plus FILE,...: the other side has those plugins
//   too; --base minimal: both sides minimal (--plus bench/plugins/deliver.ts: what delivering a message to a tap costs)
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { flagValue } from "./args.ts";
import { clockTicksPerSecond, sampleCpuSplit, threadCounters } from "./cpu.ts";
import { startBenchPostgres } from "./database.ts";
import { cpuTicks, stealShare } from "./machine.ts";
import { startPgbun } from "../tests/harness/pgbun.ts";
import { OPTIONAL_BUILTINS } from "./instructions.ts";
import { ablatedPlugins, pgbunConfig, startPgbunVariant, type PgbunVariant } from "./pgbun-process.ts";
import { runTransactions, type Protocol } from "./pgbench.ts";
import { cleanupAll, installSignalHandlers, onCleanup } from "./processes.ts";
import { median } from "./summary.ts";
import { prepareBaselineTree } from "./worktree.ts";

export interface AbRun {
  tree: "this" | "rev";
  userUs: number;
  kernelUs: number;
  tps: number;
  /** The pooler's main thread's voluntary context switches (it slept: epoll) per transaction; 0 when not read. */
  switches?: number;
  /** Minor page faults of the pooler's process tree per transaction (exact: the allocator giving pages back and taking them again). */
  faults?: number;
}

interface Medians {
  user: number;
  kernel: number;
  tps: number;
  total: number;
  switches: number;
  faults: number;
}

/**
 * One cell's verdict: medians per tree, and in how many round pairs this tree's user time, and its user + kernel
 * time, was the lower. The sum is the scheduler's exact runtime to a 10 ms tick (the kernel scales the sampled
 * utime and stime to it); the split between them is sampled, a tick charged to wherever it found the process. The
 * sum also moves with each round's throughput (a faster round sleeps and wakes less per transaction: bench/results/
 * issue-14-twelfth), by ±0.5 µs at 10 clients on a 2-core host, so a difference below that needs many rounds.
 */
export function summarize(runs: AbRun[]): { this: Medians; rev: Medians; lowerUserPairs: number; lowerTotalPairs: number; pairs: number } {
  const of = (t: AbRun["tree"]) => runs.filter((r) => r.tree === t);
  const a = of("this");
  const b = of("rev");
  const pairs = Math.min(a.length, b.length);
  let lower = 0;
  let lowerTotal = 0;
  for (let i = 0; i < pairs; i++) {
    if (a[i]!.userUs < b[i]!.userUs) lower++;
    if (a[i]!.userUs + a[i]!.kernelUs < b[i]!.userUs + b[i]!.kernelUs) lowerTotal++;
  }
  const med = (xs: number[]) => median(xs) ?? Number.NaN;
  const m = (rs: AbRun[]): Medians => ({
    user: med(rs.map((r) => r.userUs)),
    kernel: med(rs.map((r) => r.kernelUs)),
    tps: med(rs.map((r) => r.tps)),
    total: med(rs.map((r) => r.userUs + r.kernelUs)),
    switches: med(rs.map((r) => r.switches ?? 0)),
    faults: med(rs.map((r) => r.faults ?? 0)),
  });
  return { this: m(a), rev: m(b), lowerUserPairs: lower, lowerTotalPairs: lowerTotal, pairs };
}

/** Voluntary context switches of the process's main thread (the event loop's: it sleeps in epoll). */
function mainThreadSwitches(pid: number): number {
  for (const [key, t] of threadCounters(pid)) if (key === `${pid}/${pid}`) return t.voluntary;
  return 0;
}

type Pg = Parameters<typeof startPgbunVariant>[1];
type Settings = Parameters<typeof startPgbunVariant>[2];

/** The other side: pgbun started from a git worktree of REV. */
async function startRev(rev: string, pg: Pg, settings: Settings): Promise<{ label: string; there: { proc: { pid: number }; port: number } }> {
  const tree = await prepareBaselineTree(rev);
  return { label: tree.label, there: await startPgbunVariant("plain", pg, { ...settings, entry: tree.entry }) };
}

/** This tree with the optional built-ins `without` stood in for by bench/plugins/stub.ts and the plugins `plus` added. */
async function startThisTree(pg: Pg, settings: Settings, without: string[], plus: string[], env?: Record<string, string>): Promise<{ proc: { pid: number }; port: number }> {
  const config = pgbunConfig("plain", pg, settings) as { pgbun: Record<string, unknown> };
  const plugins = ablatedPlugins(without, plus);
  if (plugins) config.pgbun.plugins = plugins;
  const pb = await startPgbun({ config, pg, timeoutMs: 30_000, env });
  onCleanup(async () => void (await pb.stop("SIGQUIT")));
  return pb;
}

async function main(): Promise<void> {
  installSignalHandlers();
  const argv = process.argv.slice(2);
  const arg = (f: string) => flagValue(argv, f);
  const rev = arg("--rev");
  const list = (f: string) => arg(f)?.split(",").filter((b) => b !== "") ?? [];
  const baseMinimal = arg("--base") === "minimal";
  if (arg("--base") !== undefined && !baseMinimal) throw new Error("--base: only minimal (both sides without the optional built-ins)");
  const without = argv.includes("--minimal") ? [...OPTIONAL_BUILTINS] : list("--without");
  const plus = list("--plus");
  const variant = arg("--variant") as PgbunVariant | undefined;
  // --env K=V,...: the other side is this tree run with those environment variables (the runtime's own knobs)
  const envPairs = list("--env").map((kv) => {
    const at = kv.indexOf("=");
    if (at <= 0) throw new Error(`--env: ${kv} is not NAME=VALUE`);
    return [kv.slice(0, at), kv.slice(at + 1)] as const;
  });
  const env = envPairs.length > 0 ? Object.fromEntries(envPairs) : undefined;
  // the variants that need nothing but the settings (no login files, no example plugin): the others would start as plain
  const VARIANTS: readonly PgbunVariant[] = ["session", "statement", "verify", "noop10", "workers2", "check0"];
  if (variant !== undefined && !VARIANTS.includes(variant)) throw new Error(`--variant: one of ${VARIANTS.join(", ")}`);
  if (!rev && without.length === 0 && plus.length === 0 && variant === undefined && env === undefined) {
    throw new Error("usage: bun bench/ab.ts (--rev REV | --without B,... | --minimal | --plus FILE,... | --variant V) [--base minimal] [--cells extended:50,simple:10] [--rounds 6] [--transactions 200000]");
  }
  if (rev && (baseMinimal || without.length > 0 || plus.length > 0)) throw new Error("--rev compares both trees with the default plugins: not with --base, --without, --minimal or --plus");
  if (env !== undefined && (rev || variant !== undefined)) throw new Error("--env runs this tree against itself with the variables set: not with --rev or --variant");
  if (variant !== undefined && (rev || baseMinimal || without.length > 0 || plus.length > 0)) throw new Error("--variant compares this tree with itself as bench/pgbun-process.ts's variant V (e.g. session): nothing else");
  const unknown = without.filter((b) => !(OPTIONAL_BUILTINS as readonly string[]).includes(b));
  if (unknown.length > 0) throw new Error(`--without: not an optional built-in: ${unknown.join(", ")} (one of ${OPTIONAL_BUILTINS.join(", ")})`);
  const cells = (arg("--cells") ?? "extended:50").split(",").map((c) => {
    const [protocol, clients] = c.split(":");
    return { protocol: protocol as Protocol, clients: Number(clients) };
  });
  const rounds = Number(arg("--rounds") ?? 6);
  const transactions = Number(arg("--transactions") ?? 200_000);
  const out = resolve(arg("--out") ?? join(import.meta.dir, "results", "ab"));
  const hz = clockTicksPerSecond();
  const ticks0 = cpuTicks();
  const db = await startBenchPostgres({ maxConnections: 250, scale: 1 });
  const settings = { poolSize: 20, maxClientConn: 1000 };
  const base = baseMinimal ? [...OPTIONAL_BUILTINS] : [];
  const here = baseMinimal ? await startThisTree(db.pg, settings, base, []) : await startPgbunVariant("plain", db.pg, settings);
  const otherLabel = [
    argv.includes("--minimal") ? "minimal (auth + pool + transaction-detection)" : without.length > 0 ? `without ${without.join(", ")}` : "",
    plus.length > 0 ? `with ${plus.join(", ")}` : "",
    env !== undefined ? `with ${envPairs.map(([k, v]) => `${k}=${v}`).join(" ")}` : "",
  ].filter((x) => x !== "");
  const { label, there } = rev
    ? await startRev(rev, db.pg, settings)
    : variant !== undefined
      ? { label: `this tree as variant ${variant}`, there: await startPgbunVariant(variant, db.pg, settings) }
    : { label: `this tree ${otherLabel.join(" ")}`, there: await startThisTree(db.pg, settings, [...new Set([...base, ...without])], plus, env) };
  const tree = { label: baseMinimal ? `${label} (both sides minimal)` : label };
  const targets = { this: { pid: here.proc.pid, port: here.port }, rev: { pid: there.proc.pid, port: there.port } } as const;
  const lines = [
    `# pgbun at this tree against ${tree.label}: CPU per transaction, alternating rounds`,
    "",
    `\`bun bench/ab.ts ${argv.join(" ")}\` (${cells.map((c) => `${c.protocol}:${c.clients}`).join(",")}, ${rounds} rounds of ${transactions}), started ${new Date().toISOString()}; pgbench -S, pool 20, ${baseMinimal ? "both sides minimal" : "default plugins"}, ${hz} clock ticks a second (one tick is ${(1e6 / hz / transactions).toFixed(2)} µs/txn a round).`,
    "",
    "| -M, clients | this tree user / kernel / total µs/txn | " +
      `${tree.label} user / kernel / total µs/txn | this ÷ rev user, total | tps this / rev | main-thread sleeps/txn this / rev | minor faults/txn this / rev | rounds where this tree's user, total was lower |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of cells) {
    for (const t of Object.values(targets)) await runTransactions(db, t.port, c.protocol, c.clients, Math.min(50_000, transactions));
    const runs: AbRun[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate who goes first, so a drift in the machine's speed favours neither
      for (const name of r % 2 === 0 ? (["this", "rev"] as const) : (["rev", "this"] as const)) {
        const t = targets[name];
        const before = sampleCpuSplit(t.pid)!;
        const sleeps0 = mainThreadSwitches(t.pid);
        const { tps, transactions: done } = await runTransactions(db, t.port, c.protocol, c.clients, transactions);
        const after = sampleCpuSplit(t.pid)!;
        const switches = (mainThreadSwitches(t.pid) - sleeps0) / done;
        const us = (ticksDelta: number) => ((ticksDelta / hz) * 1e6) / done;
        const faults = (after.minorFaults - before.minorFaults) / done;
        const run: AbRun = { tree: name, userUs: us(after.userTicks - before.userTicks), kernelUs: us(after.kernelTicks - before.kernelTicks), tps, switches, faults };
        runs.push(run);
        console.error(
          `ab: -M ${c.protocol} ${c.clients} clients, round ${r + 1}, ${name}: user ${run.userUs.toFixed(2)} kernel ${run.kernelUs.toFixed(2)} µs/txn, ${Math.round(tps)} tps, ${switches.toFixed(2)} sleeps/txn, ${faults.toFixed(3)} minor faults/txn`,
        );
      }
    }
    const s = summarize(runs);
    const f = (m: Medians) => `${m.user.toFixed(2)} / ${m.kernel.toFixed(2)} / ${m.total.toFixed(2)}`;
    lines.push(
      `| ${c.protocol}, ${c.clients} | ${f(s.this)} | ${f(s.rev)} | ${(s.this.user / s.rev.user).toFixed(2)}×, ${(s.this.total / s.rev.total).toFixed(2)}× | ` +
        `${Math.round(s.this.tps)} / ${Math.round(s.rev.tps)} | ${s.this.switches.toFixed(2)} / ${s.rev.switches.toFixed(2)} | ${s.this.faults.toFixed(3)} / ${s.rev.faults.toFixed(3)} | ${s.lowerUserPairs}, ${s.lowerTotalPairs} of ${s.pairs} |`,
    );
  }
  const steal = stealShare(ticks0, cpuTicks());
  lines.push("", `Medians of ${rounds} rounds of ${transactions} transactions each. CPU steal during the run: ${steal === null ? "not counted" : `${(steal * 100).toFixed(1)} %`}; 1-minute load at the end: ${(await Bun.file("/proc/loadavg").text()).split(" ")[0]}.`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "latest.md"), `${lines.join("\n")}\n`);
  console.log(lines.join("\n"));
}

if (import.meta.main) {
  try {
    await main();
  } finally {
    await cleanupAll();
  }
}
