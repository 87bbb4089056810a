// Command-line options of bench/run.ts.
import { resolve } from "node:path";
import { CASE_GROUPS, type CaseGroup } from "./cases.ts";

export interface BenchOptions {
  mode: "full" | "quick" | "smoke";
  durationS: number;
  rounds: number;
  scale: number;
  /** Client counts of the select-only matrix. */
  clients: number[];
  efficiencyClients: number;
  idleClients: number;
  outDir: string;
  /** Seconds of unrecorded load on each instance before round 1 (JIT, caches). */
  warmupS: number;
  /** --only: the case groups to run (with the cases their summary rows need); every group when undefined. */
  only?: CaseGroup[];
  /** --baseline-rev: the git revision the before/after rows compare this tree's pgbun with. */
  baselineRev?: string;
  /** --wait-quiet: seconds to wait before each cell for a quiet machine (bench/load.ts isQuiet); 0: no wait. */
  waitQuietS: number;
  /** --instructions: the callgrind phase (bench/instructions.ts): Ir per transaction beside CPU per transaction. */
  instructions: boolean;
}

export const USAGE = `usage: bun bench/run.ts [--quick] [--smoke] [--duration S] [--rounds N] [--idle N] [--clients N,N]
                        [--only GROUP,...] [--baseline-rev REV] [--wait-quiet S] [--instructions] [--out DIR]
  (default)     full run: 1/10/50/200/1000 clients, 8 s runs, 2 rounds, scale 10, 10,000 idle clients
  --quick       10 and 50 clients, 2 s runs, 1 round, scale 1, 1,000 idle clients
  --smoke       simple 10 clients and the pass-through row, 1 s, 200 idle clients: proves the pipeline works
  --duration S  seconds per pgbench run      --rounds N  repetitions of every case
  --idle N      idle clients for the memory test (measured in every run)
  --clients N,N client counts of the transaction-mode matrix (the efficiency rows keep their own: 1000, quick 50)
  --only G,...  only these case groups (and the rows their summaries need): ${CASE_GROUPS.join(", ")}
  --baseline-rev REV  adds the before-after rows: this tree's pgbun against one started from a git worktree of REV
  --wait-quiet S  before each cell wait up to S seconds for the 1-minute load below 1 and no other runnable work;
                a cell that starts without it is named NOT QUIET in the report's problems
  --instructions  also run the instruction-count phase (valgrind callgrind, bench/instructions.ts): Ir per
                transaction of PgBouncer, the pass-through and pgbun beside their CPU per transaction
  --out DIR     where results go (default bench/results)`;

function value(argv: string[], i: number, flag: string): string {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value\n${USAGE}`);
  return v;
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got ${v}`);
  return n;
}

const VALUE_FLAGS = new Set(["--duration", "--rounds", "--idle", "--out", "--clients", "--only", "--baseline-rev", "--wait-quiet"]);

function groupsOf(v: string): CaseGroup[] {
  const groups = v.split(",").map((g) => g.trim()).filter((g) => g !== "");
  const unknown = groups.filter((g) => !(CASE_GROUPS as readonly string[]).includes(g));
  if (unknown.length > 0 || groups.length === 0) throw new Error(`--only: unknown group ${unknown.join(", ") || "(none given)"}; groups: ${CASE_GROUPS.join(", ")}`);
  return groups as CaseGroup[];
}

function clientCounts(v: string): number[] {
  const counts = v.split(",").map((c) => Math.round(positive(c.trim(), "--clients")));
  return [...new Set(counts)].sort((a, b) => a - b);
}

export function parseArgs(argv: string[]): BenchOptions {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick" || a === "--smoke" || a === "--instructions") flags.set(a, true);
    else if (VALUE_FLAGS.has(a)) flags.set(a, value(argv, i++, a));
    else if (a === "--help" || a === "-h") throw new Error(USAGE);
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  const mode = flags.has("--smoke") ? "smoke" : flags.has("--quick") ? "quick" : "full";
  const o: BenchOptions =
    mode === "full"
      ? { mode, durationS: 8, rounds: 2, scale: 10, clients: [1, 10, 50, 200, 1000], efficiencyClients: 1000, idleClients: 10_000, outDir: "", warmupS: 3, waitQuietS: 0, instructions: false }
      : mode === "quick"
        ? { mode, durationS: 2, rounds: 1, scale: 1, clients: [10, 50], efficiencyClients: 50, idleClients: 1_000, outDir: "", warmupS: 1, waitQuietS: 0, instructions: false }
        : { mode, durationS: 1, rounds: 1, scale: 1, clients: [10], efficiencyClients: 50, idleClients: 200, outDir: "", warmupS: 1, waitQuietS: 0, instructions: false };
  const str = (f: string) => flags.get(f) as string | undefined;
  if (str("--duration")) o.durationS = Math.max(1, Math.round(positive(str("--duration")!, "--duration")));
  if (str("--rounds")) o.rounds = Math.round(positive(str("--rounds")!, "--rounds"));
  if (str("--idle")) o.idleClients = Math.round(positive(str("--idle")!, "--idle"));
  if (str("--clients")) o.clients = clientCounts(str("--clients")!);
  if (str("--only")) o.only = groupsOf(str("--only")!);
  if (str("--baseline-rev")) o.baselineRev = str("--baseline-rev");
  if (str("--wait-quiet")) o.waitQuietS = positive(str("--wait-quiet")!, "--wait-quiet");
  o.instructions = flags.has("--instructions");
  if (o.only?.includes("before-after") && !o.baselineRev) throw new Error("--only before-after needs --baseline-rev REV (the revision to compare with)");
  if (mode === "smoke") o.durationS = Math.min(o.durationS, 1);
  o.outDir = resolve(str("--out") ?? resolve(import.meta.dir, "results"));
  return o;
}

/** The value after `flag` in argv (`--rev REV`), or undefined: the small scripts' (ab.ts, perf-js.ts) argument reading. */
export function flagValue(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}
