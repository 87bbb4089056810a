// Where PgBouncer's, the bare pass-through's, the least Bun pooler's and pgbun's CPU per transaction goes, user and kernel (issue 14's "which µs is the runtime's").
// Usage: bun bench/cpu-split.ts [--clients 10,50] [--protocols simple,extended,prepared] [--rounds 3] [--transactions N]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, release, tmpdir } from "node:os";
import { join } from "node:path";
import { clockTicksPerSecond, processTree, readOr, sampleCpuSplit, threadCounters } from "./cpu.ts";
import {
  parseSplitArgs,
  poolerCell,
  POOLERS,
  renderSplit,
  roundOrder,
  skipReason,
  splitOf,
  ticksToUs,
  parseSockopts,
  parseStraceSummary,
  perfProfile,
  type PerfProfile,
  type CellResult,
  type Pooler,
  type RunSample,
  type SplitOptions,
  type SplitReport,
  type StraceProfile,
  type ThreadShare,
} from "./cpu-split-report.ts";
import { BENCH_DATABASE, pgClientEnv, startBenchPostgres, type BenchPostgres } from "./database.ts";
import { postmasterPid, sampleLoad } from "./load.ts";
import { startMinipool, startPassthrough } from "./passthrough-process.ts";
import { runTransactions, type Protocol } from "./pgbench.ts";
import { ensurePgbouncer, pgbouncerVersion, startPgbouncer } from "./pgbouncer.ts";
import { ablatedPlugins, pgbunConfig, startPgbunVariant } from "./pgbun-process.ts";
import { OPTIONAL_BUILTINS } from "./instructions.ts";
import { startPgbun } from "../tests/harness/pgbun.ts";
import { cleanupAll, installSignalHandlers, killProcess, onCleanup, trackProcess } from "./processes.ts";

const POOL_SIZE = 20;

interface Target {
  pooler: Pooler;
  pid: number;
  port: number;
}

async function measure(db: BenchPostgres, t: Target, protocol: Protocol, clients: number, round: number, o: SplitOptions, roots: number[]): Promise<RunSample> {
  const hz = clockTicksPerSecond();
  const load = await sampleLoad(roots);
  const threads0 = threadCounters(t.pid);
  const a = sampleCpuSplit(t.pid);
  const run = await runTransactions(db, t.port, protocol, clients, o.transactions);
  const b = sampleCpuSplit(t.pid);
  const threads1 = threadCounters(t.pid);
  if (!a || !b) throw new Error(`${t.pooler} (pid ${t.pid}) is gone`);
  const n = run.transactions;
  const byName: Record<string, ThreadShare> = {};
  let voluntary = 0;
  let involuntary = 0;
  for (const [key, after] of threads1) {
    const before = threads0.get(key);
    if (!before) continue;
    const v = after.voluntary - before.voluntary;
    const i = after.involuntary - before.involuntary;
    const share = (byName[after.comm] ??= { userUs: 0, kernelUs: 0, switches: 0 });
    share.userUs += ticksToUs(after.user - before.user, hz, n);
    share.kernelUs += ticksToUs(after.kernel - before.kernel, hz, n);
    share.switches += (v + i) / n;
    voluntary += v;
    involuntary += i;
  }
  const userUs = ticksToUs(b.userTicks - a.userTicks, hz, n);
  const kernelUs = ticksToUs(b.kernelTicks - a.kernelTicks, hz, n);
  return {
    pooler: t.pooler,
    clients,
    protocol,
    round,
    transactions: n,
    tps: run.tps,
    userUs,
    kernelUs,
    totalUs: userUs + kernelUs,
    resolutionUs: ticksToUs(Math.max(a.processes, b.processes), hz, n),
    minorFaultsPerTxn: (b.minorFaults - a.minorFaults) / n,
    voluntarySwitchesPerTxn: voluntary / n,
    involuntarySwitchesPerTxn: involuntary / n,
    threads: byName,
    load1: load.load1,
    othersRunnable: load.othersRunnable,
  };
}

/** strace attached to every process of `t`'s tree (-f: all their threads) while `work` runs; its output file's text. */
async function underStrace(t: Target, straceArgs: string[], work: () => Promise<unknown>): Promise<string> {
  const file = join(tmpdir(), `pgbun-cpu-split-strace-${t.pooler}-${process.pid}.txt`);
  rmSync(file, { force: true });
  const pids = processTree(t.pid).flatMap((p) => ["-p", String(p)]);
  const st = trackProcess(Bun.spawn(["strace", "-f", ...straceArgs, "-o", file, ...pids], { stdin: "ignore", stdout: "ignore", stderr: "pipe" }));
  // strace prints "Process N attached" per thread on stderr once it holds them; half a second is plenty on an idle pooler
  await Bun.sleep(700);
  try {
    await work();
  } finally {
    await killProcess(st, "SIGINT", 5_000);
  }
  const text = readOr(file) ?? "";
  rmSync(file, { force: true });
  return text;
}

/** perf record -e cpu-clock -g on `t`'s processes over one pgbench run, read back with perf report --children. */
async function perfRun(db: BenchPostgres, t: Target, protocol: Protocol, o: SplitOptions): Promise<PerfProfile> {
  const file = join(tmpdir(), `pgbun-cpu-split-perf-${t.pooler}-${process.pid}.data`);
  rmSync(file, { force: true });
  const pids = processTree(t.pid).join(",");
  const rec = trackProcess(Bun.spawn(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", file, "-p", pids], { stdin: "ignore", stdout: "ignore", stderr: "pipe" }));
  await Bun.sleep(700);
  let done = 0;
  try {
    done = (await runTransactions(db, t.port, protocol, o.straceClients, o.perfTransactions)).transactions;
  } finally {
    await killProcess(rec, "SIGINT", 10_000);
  }
  const rep = Bun.spawn(["perf", "report", "-i", file, "--stdio", "--children", "--sort", "sym", "-g", "none", "--percent-limit", "0.05"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const text = await new Response(rep.stdout).text();
  await rep.exited;
  rmSync(file, { force: true });
  const profile = perfProfile(t.pooler, protocol, o.straceClients, done, text);
  if (profile.userUs + profile.kernelUs === 0) throw new Error(`perf report gave no samples (${text.slice(0, 300)})`);
  return profile;
}

async function main(): Promise<void> {
  installSignalHandlers();
  const o = parseSplitArgs(process.argv.slice(2));
  const started = new Date();
  const problems: string[] = [];
  const db = await startBenchPostgres({ maxConnections: 200, scale: 1 });
  const pgbouncerBin = await ensurePgbouncer();
  const pgbouncerVer = await pgbouncerVersion(pgbouncerBin);
  const roots = [process.pid, postmasterPid(db.pg.dataDir) ?? process.pid];
  const sockopts: SplitReport["sockopts"] = {};

  const targets = new Map<Pooler, Target>();
  const pb = await startPgbouncer(pgbouncerBin, db.pg, { poolMode: "transaction", poolSize: POOL_SIZE, maxClientConn: 1000 });
  targets.set("pgbouncer", { pooler: "pgbouncer", pid: pb.pid, port: pb.port });
  const pt = await startPassthrough(db.pg);
  targets.set("passthrough", { pooler: "passthrough", pid: pt.proc.pid, port: pt.port });
  const mp = await startMinipool(db.pg, POOL_SIZE);
  targets.set("minipool", { pooler: "minipool", pid: mp.proc.pid, port: mp.port });
  const pg = await startPgbunVariant("plain", db.pg, { poolSize: POOL_SIZE, maxClientConn: 1000 });
  targets.set("pgbun", { pooler: "pgbun", pid: pg.proc.pid, port: pg.port });
  // the optional built-ins stood in for by bench/plugins/stub.ts: what the core costs with the plugins no pool can do without
  const minimalConfig = pgbunConfig("plain", db.pg, { poolSize: POOL_SIZE, maxClientConn: 1000 }) as { pgbun: Record<string, unknown> };
  minimalConfig.pgbun.plugins = ablatedPlugins(OPTIONAL_BUILTINS);
  const minimal = await startPgbun({ config: minimalConfig, pg: db.pg, timeoutMs: 30_000 });
  onCleanup(async () => void (await minimal.stop("SIGQUIT")));
  targets.set("pgbun-minimal", { pooler: "pgbun-minimal", pid: minimal.proc.pid, port: minimal.port });

  // socket options: traced from each pooler's first client on, so its server connections' set-up is seen too
  for (const p of POOLERS) {
    const t = targets.get(p)!;
    const text = await underStrace(t, ["-e", "trace=setsockopt,getsockopt"], () => runTransactions(db, t.port, "simple", o.straceClients, o.straceClients * 20));
    sockopts[p] = parseSockopts(text);
  }

  const runs: RunSample[] = [];
  const cells: CellResult[] = [];
  for (const clients of o.clients) {
    for (const protocol of o.protocols) {
      const active = POOLERS.filter((p) => !skipReason(p, protocol));
      for (const p of active) await runTransactions(db, targets.get(p)!.port, protocol, clients, o.warmupTransactions);
      for (let round = 0; round < o.rounds; round++) {
        for (const p of roundOrder(round, active)) {
          try {
            const r = await measure(db, targets.get(p)!, protocol, clients, round, o, roots);
            runs.push(r);
            console.error(
              `cpu-split: -M ${protocol} ${clients} clients ${p} round ${round + 1}: user ${r.userUs.toFixed(2)} kernel ${r.kernelUs.toFixed(2)} µs/txn, ${Math.round(r.tps)} tps, load ${r.load1}`,
            );
          } catch (err) {
            problems.push(`-M ${protocol}, ${clients} clients, ${p}, round ${round + 1}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
      const poolers: CellResult["poolers"] = {};
      const skipped: CellResult["skipped"] = {};
      for (const p of POOLERS) {
        const why = skipReason(p, protocol);
        if (why) skipped[p] = why;
        else poolers[p] = poolerCell(runs.filter((r) => r.pooler === p && r.clients === clients && r.protocol === protocol));
      }
      cells.push({ clients, protocol, poolers, skipped, split: splitOf(poolers) });
    }
  }

  // system calls per transaction: strace -c over one run per pooler and protocol, after the measured cells
  const strace: StraceProfile[] = [];
  for (const protocol of o.protocols) {
    for (const p of POOLERS) {
      if (skipReason(p, protocol)) continue;
      const t = targets.get(p)!;
      let done = 0;
      try {
        const text = await underStrace(t, ["-c"], async () => (done = (await runTransactions(db, t.port, protocol, o.straceClients, o.straceTransactions)).transactions));
        strace.push({ pooler: p, protocol, clients: o.straceClients, transactions: done, callsPerTxn: parseStraceSummary(text, done) });
      } catch (err) {
        problems.push(`strace ${p} -M ${protocol}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  // where the kernel time goes: perf record with call graphs over one run per pooler and protocol
  const perf: PerfProfile[] = [];
  for (const protocol of o.protocols) {
    for (const p of POOLERS) {
      if (skipReason(p, protocol)) continue;
      try {
        perf.push(await perfRun(db, targets.get(p)!, protocol, o));
      } catch (err) {
        problems.push(`perf ${p} -M ${protocol}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  const report: SplitReport = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    machine: {
      cpuModel: /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown",
      nproc: availableParallelism(),
      kernel: release(),
      bun: Bun.version,
      postgres: db.version,
      pgbouncer: pgbouncerVer,
      pgbench: (await new Response(Bun.spawn([db.pgbench, "--version"], { stdout: "pipe" }).stdout).text()).trim(),
      clockTicks: clockTicksPerSecond(),
    },
    options: { clients: o.clients, protocols: o.protocols, rounds: o.rounds, transactions: o.transactions, warmupTransactions: o.warmupTransactions, straceTransactions: o.straceTransactions, straceClients: o.straceClients, perfTransactions: o.perfTransactions },
    cells,
    strace,
    sockopts,
    perf,
    runs,
    problems,
  };
  mkdirSync(o.outDir, { recursive: true });
  writeFileSync(join(o.outDir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(o.outDir, "latest.md"), renderSplit(report));
  console.log(renderSplit(report));
}

try {
  await main();
} finally {
  await cleanupAll();
}
