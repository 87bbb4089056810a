// JIT churn of a running pgbun per round of pgbench: JSC's OSR exits and optimising compiles, and CPU per thread.
// Usage: node_modules/.bin/bun bench/jit-exits.ts [--protocol simple|extended|prepared] [--clients N (10)]
//        [--transactions N a round (200000)] [--rounds N (3)] [--top N (12)]
//   pgbun runs with BUN_JSC_verboseOSR=1; each round connects new clients (pgbench does), as production does. A round
//   that still compiles OSR exits or re-optimises functions after the warm-up means code that meets shapes or types it
//   was not compiled for (bench/results/issue-14-ninth: `client.data[name]` before core/plugin/data-record.ts), and
//   the JITWorker thread's CPU per transaction says what that costs. Needs its own PostgreSQL (bench/database.ts).
import { startPgbun } from "../tests/harness/pgbun.ts";
import { flagValue } from "./args.ts";
import { clockTicksPerSecond, threadCounters } from "./cpu.ts";
import { ticksToUs } from "./cpu-split-report.ts";
import { startBenchPostgres } from "./database.ts";
import { pgbunConfig } from "./pgbun-process.ts";
import { cleanupAll, installSignalHandlers, onCleanup } from "./processes.ts";
import { runTransactions, type Protocol } from "./pgbench.ts";

/** One OSR exit JSC compiled: "Generated JIT code for FTL OSR exit #2 (D@32, bc#0, BadCache) from f#DnNAoQ:[...". */
const EXIT = /Generated JIT code for (DFG|FTL) OSR exit #\d+ \([^,]*, bc#\d+, (\w+)\) from ([^:\s]+):/;
/** One optimising compile finished: "Optimizing compilation of f#DnNAoQ:[..., DFGFunctionCall, ...] result: ...". */
const COMPILE = /Optimizing compilation of ([^:\s]+):\[[^\]]*\] result: (\w+)/;

export interface Churn {
  exits: Map<string, number>;
  compiles: Map<string, number>;
}

/** Counts exits (by reason and function) and optimising compiles (by function) in a stretch of verboseOSR output. */
export function churnOf(log: string): Churn {
  const exits = new Map<string, number>();
  const compiles = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const line of log.split("\n")) {
    const e = EXIT.exec(line);
    if (e) bump(exits, `${e[2]} in ${e[3]} (${e[1]})`);
    const c = COMPILE.exec(line);
    if (c) bump(compiles, c[1]!);
  }
  return { exits, compiles };
}

/** utime + stime ticks of each thread of pgbun's process tree, by thread name (its own main thread as "main"). */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const [key, t] of threadCounters(pid)) {
    const name = key === `${pid}/${pid}` ? "main" : t.comm;
    ticks.set(name, (ticks.get(name) ?? 0) + t.user + t.kernel);
  }
  return ticks;
}

const top = (m: Map<string, number>, n: number): string =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${v}× ${k}`).join("; ") || "none";
const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

if (import.meta.main) {
  const argv = process.argv;
  const protocol = (flagValue(argv, "--protocol") ?? "extended") as Protocol;
  const clients = Number(flagValue(argv, "--clients") ?? 10);
  const transactions = Number(flagValue(argv, "--transactions") ?? 200_000);
  const rounds = Number(flagValue(argv, "--rounds") ?? 3);
  const n = Number(flagValue(argv, "--top") ?? 12);
  const hz = clockTicksPerSecond();
  installSignalHandlers();
  try {
    const db = await startBenchPostgres({ maxConnections: 250, scale: 1 });
    const config = pgbunConfig("plain", db.pg, { poolSize: 20, maxClientConn: 1000 });
    const pb = await startPgbun({ config, pg: db.pg, timeoutMs: 30_000, env: { BUN_JSC_verboseOSR: "1" } });
    onCleanup(async () => void (await pb.stop("SIGQUIT")));
    console.log(`pgbun -M ${protocol}, ${clients} clients, ${transactions} transactions a round; round 0 is the warm-up`);
    for (let r = 0; r <= rounds; r++) {
      const mark = pb.logs().length;
      const before = threadTicks(pb.proc.pid);
      const run = await runTransactions(db, pb.port, protocol, clients, transactions);
      const after = threadTicks(pb.proc.pid);
      const churn = churnOf(pb.logs().slice(mark));
      const cpu = [...after]
        .map(([k, v]) => [k, ticksToUs(v - (before.get(k) ?? 0), hz, run.transactions)] as const)
        .filter(([, us]) => us >= 0.05)
        .map(([k, us]) => `${k} ${us.toFixed(2)}`)
        .join(", ");
      console.log(`round ${r}: ${Math.round(run.tps)} tps; CPU µs/txn by thread: ${cpu}`);
      console.log(`  OSR exits compiled: ${total(churn.exits)} (${top(churn.exits, n)})`);
      console.log(`  optimising compiles: ${total(churn.compiles)} (${top(churn.compiles, n)})`);
    }
  } finally {
    await cleanupAll();
  }
}
