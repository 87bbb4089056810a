// pgbun at this tree against pgbun at another commit: user and kernel CPU per transaction over alternating long rounds.
// Usage: node_modules/.bin/bun bench/ab.ts --rev REV [--cells extended:50,simple:10,...] [--rounds 6] [--transactions N]
//   (its own PostgreSQL, both pgbuns side by side with the default plugins, pool 20; bench/run.ts's before-after rows
//   run 8 s twice, which CPU steal and load scatter by more than a change of 1 µs: this alternates longer rounds)
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { flagValue } from "./args.ts";
import { clockTicksPerSecond, sampleCpuSplit } from "./cpu.ts";
import { startBenchPostgres } from "./database.ts";
import { cpuTicks, stealShare } from "./machine.ts";
import { startPgbunVariant } from "./pgbun-process.ts";
import { runTransactions, type Protocol } from "./pgbench.ts";
import { cleanupAll, installSignalHandlers } from "./processes.ts";
import { median } from "./summary.ts";
import { prepareBaselineTree } from "./worktree.ts";

export interface AbRun {
  tree: "this" | "rev";
  userUs: number;
  kernelUs: number;
  tps: number;
}

/** One cell's verdict: medians per tree, and in how many round pairs this tree's user time was the lower. */
export function summarize(runs: AbRun[]): { this: { user: number; kernel: number; tps: number }; rev: { user: number; kernel: number; tps: number }; lowerUserPairs: number; pairs: number } {
  const of = (t: AbRun["tree"]) => runs.filter((r) => r.tree === t);
  const a = of("this");
  const b = of("rev");
  const pairs = Math.min(a.length, b.length);
  let lower = 0;
  for (let i = 0; i < pairs; i++) if (a[i]!.userUs < b[i]!.userUs) lower++;
  const med = (xs: number[]) => median(xs) ?? Number.NaN;
  const m = (rs: AbRun[]) => ({ user: med(rs.map((r) => r.userUs)), kernel: med(rs.map((r) => r.kernelUs)), tps: med(rs.map((r) => r.tps)) });
  return { this: m(a), rev: m(b), lowerUserPairs: lower, pairs };
}

async function main(): Promise<void> {
  installSignalHandlers();
  const argv = process.argv.slice(2);
  const arg = (f: string) => flagValue(argv, f);
  const rev = arg("--rev");
  if (!rev) throw new Error("usage: bun bench/ab.ts --rev REV [--cells extended:50,simple:10] [--rounds 6] [--transactions 200000]");
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
  const tree = await prepareBaselineTree(rev);
  const settings = { poolSize: 20, maxClientConn: 1000 };
  const here = await startPgbunVariant("plain", db.pg, settings);
  const there = await startPgbunVariant("plain", db.pg, { ...settings, entry: tree.entry });
  const targets = { this: { pid: here.proc.pid, port: here.port }, rev: { pid: there.proc.pid, port: there.port } } as const;
  const lines = [
    `# pgbun at this tree against ${tree.label}: CPU per transaction, alternating rounds`,
    "",
    `\`bun bench/ab.ts --rev ${rev} --cells ${cells.map((c) => `${c.protocol}:${c.clients}`).join(",")} --rounds ${rounds} --transactions ${transactions}\`, started ${new Date().toISOString()}; pgbench -S, pool 20, default plugins, ${hz} clock ticks a second (one tick is ${(1e6 / hz / transactions).toFixed(2)} µs/txn a round).`,
    "",
    "| -M, clients | this tree user / kernel µs/txn | " + `${tree.label} user / kernel µs/txn | this ÷ rev user | tps this / rev | rounds where this tree's user time was lower |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of cells) {
    for (const t of Object.values(targets)) await runTransactions(db, t.port, c.protocol, c.clients, Math.min(50_000, transactions));
    const runs: AbRun[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate who goes first, so a drift in the machine's speed favours neither
      for (const name of r % 2 === 0 ? (["this", "rev"] as const) : (["rev", "this"] as const)) {
        const t = targets[name];
        const before = sampleCpuSplit(t.pid)!;
        const { tps, transactions: done } = await runTransactions(db, t.port, c.protocol, c.clients, transactions);
        const after = sampleCpuSplit(t.pid)!;
        const us = (ticksDelta: number) => ((ticksDelta / hz) * 1e6) / done;
        const run: AbRun = { tree: name, userUs: us(after.userTicks - before.userTicks), kernelUs: us(after.kernelTicks - before.kernelTicks), tps };
        runs.push(run);
        console.error(`ab: -M ${c.protocol} ${c.clients} clients, round ${r + 1}, ${name}: user ${run.userUs.toFixed(2)} kernel ${run.kernelUs.toFixed(2)} µs/txn, ${Math.round(tps)} tps`);
      }
    }
    const s = summarize(runs);
    lines.push(
      `| ${c.protocol}, ${c.clients} | ${s.this.user.toFixed(2)} / ${s.this.kernel.toFixed(2)} | ${s.rev.user.toFixed(2)} / ${s.rev.kernel.toFixed(2)} | ${(s.this.user / s.rev.user).toFixed(2)}× | ${Math.round(s.this.tps)} / ${Math.round(s.rev.tps)} | ${s.lowerUserPairs} of ${s.pairs} |`,
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
