// The benchmark's case list, --only selection, options, custom pgbench scripts and derived rows, without running pgbench.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "./args.ts";
import { buildCases, COLUMNS, selectCases, statementCaseId, targetsOf, type BenchCase, type MatrixOptions } from "./cases.ts";
import { efficiencyRows, resetRows } from "./derived-rows.ts";
import { loadMark, loadWarning } from "./load.ts";
import { pgbenchArgs, writeScript, type PgbenchResult } from "./pgbench.ts";
import { ablatedPlugins, pgbunConfig } from "./pgbun-process.ts";
import type { CaseOutcome } from "./report.ts";
import { summarize } from "./summary.ts";

const QUICK: MatrixOptions = { durationS: 2, clients: [10, 50], efficiencyClients: 50, smoke: false, auditLog: false, poolSize: 20 };
const ids = (cases: BenchCase[]) => cases.map((c) => c.id);

/** No cell may repeat a case the run does not have. */
function danglingSameAs(cases: BenchCase[]): string[] {
  const have = new Set(ids(cases));
  return cases.flatMap((c) => COLUMNS.map((col) => c.cells[col]).filter((cell) => cell.kind === "same-as" && !have.has(cell.caseId)).map(() => c.id));
}

describe("case list", () => {
  test("ablatedPlugins: a stub providing the left-out built-ins, then the extra plugin files as absolute paths; nothing when neither", () => {
    expect(ablatedPlugins([])).toBeUndefined();
    const list = ablatedPlugins(["stats", "metrics"], ["bench/plugins/deliver.ts"])!;
    expect(list).toHaveLength(2);
    expect(list[0]).toEqual([expect.stringMatching(/\/bench\/plugins\/stub\.ts$/), { provides: ["stats", "metrics"] }]);
    expect(list[1]).toEqual(expect.stringMatching(/^\/.*\/bench\/plugins\/deliver\.ts$/));
  });

  test("the floor group measures the pass-through at -M simple and -M extended, 10 clients, against that row's PgBouncer", () => {
    const cases = buildCases(QUICK);
    const floor = selectCases(cases, ["floor"]);
    expect(floor.map((c) => [c.id, c.spec.protocol, c.baseline])).toEqual([
      ["floor-passthrough-10", "simple", "passthrough"],
      ["floor-passthrough-extended-10", "extended", "passthrough"],
    ]);
    expect(cases.find((c) => c.id === "floor-passthrough-extended-10")!.cells.pgbouncer).toEqual({ kind: "same-as", caseId: "tx-extended-10" });
    expect(danglingSameAs(cases)).toEqual([]);
  });

  test("statement mode stands beside transaction and session mode in the efficiency group, for both poolers", () => {
    const eff = buildCases(QUICK).filter((c) => c.group === "efficiency");
    const statement = eff.find((c) => c.id === statementCaseId(50));
    expect(statement).toBeDefined();
    expect(statement!.spec.script).toBe("select-only");
    expect(statement!.cells.pgbouncer).toEqual({ kind: "run", target: "pgbouncer-statement" });
    expect(statement!.cells.pgbun).toEqual({ kind: "run", target: "pgbun-statement" });
    expect(pgbunConfig("statement", { host: "h", port: 1, password: "p" } as never, { poolSize: 20, maxClientConn: 10 }).pgbun).toMatchObject({ pool_mode: "statement" });
  });

  test("verify rows compare pgbun-verify with a twin on select-only and TPC-B-like; reset rows are -C storms with custom scripts", () => {
    const cases = buildCases(QUICK);
    const verify = cases.filter((c) => c.group === "verify");
    expect(verify.map((c) => c.spec.script)).toEqual(["select-only", "tpcb-like"]);
    for (const c of verify) expect([c.cells.pgbun, c.baseline]).toEqual([{ kind: "run", target: "pgbun-verify" }, "pgbun-twin-verify"]);
    expect(pgbunConfig("verify", { host: "h", port: 1, password: "p" } as never, { poolSize: 20, maxClientConn: 10 }).pgbun).toMatchObject({ session_state: "verify" });
    const reset = cases.filter((c) => c.group === "reset");
    expect(reset.map((c) => c.spec.reconnect)).toEqual([true, true]);
    expect(reset.map((c) => (typeof c.spec.script === "object" ? c.spec.script.text : c.spec.script))).toEqual(["SELECT 1;\nSELECT 1;\n", "LISTEN bench_ch;\nSELECT 1;\n"]);
  });

  test("before-after rows exist only with a baseline revision: pgbun-rev run beside a twin, 3 protocols × 10/50 clients", () => {
    expect(buildCases(QUICK).some((c) => c.group === "before-after")).toBe(false);
    const rows = buildCases({ ...QUICK, baselineRev: "de7f4e5" }).filter((c) => c.group === "before-after");
    expect(rows.map((c) => `${c.spec.protocol}-${c.spec.clients}`)).toEqual(["simple-10", "simple-50", "extended-10", "extended-50", "prepared-10", "prepared-50"]);
    for (const c of rows) expect([c.baseline, c.cells.pgbun, c.baselineName]).toEqual(["pgbun-rev", { kind: "run", target: "pgbun-twin-rev" }, "pgbun at de7f4e5"]);
  });

  test("the full case list has no cell repeating a missing case", () => {
    expect(danglingSameAs(buildCases({ ...QUICK, baselineRev: "x" }))).toEqual([]);
    expect(danglingSameAs(buildCases({ ...QUICK, clients: [1, 10, 50, 200, 1000], efficiencyClients: 1000 }))).toEqual([]);
  });
});

describe("--only", () => {
  test("efficiency brings the transaction-mode row its ratios need, and nothing that repeats a missing row", () => {
    const cases = selectCases(buildCases(QUICK), ["efficiency"]);
    expect(ids(cases).sort()).toEqual(["session-simple-50", "session-wide-simple-50", "statement-simple-50", "tx-simple-50"]);
    expect(danglingSameAs(cases)).toEqual([]);
  });

  test("the efficiency group has a transaction-mode row of its own when the matrix lacks its client count", () => {
    const cases = selectCases(buildCases({ ...QUICK, clients: [10] }), ["efficiency"]);
    expect(ids(cases)).toContain("tx-simple-50");
    expect(cases.find((c) => c.id === "tx-simple-50")!.cells.pgbouncer).toEqual({ kind: "run", target: "pgbouncer" });
  });

  test("a cell repeating a row left out becomes n/a; targets are only those of the selected rows", () => {
    const cases = selectCases(buildCases({ ...QUICK, baselineRev: "r" }), ["verify", "reset", "before-after"]);
    expect(new Set(cases.map((c) => c.group))).toEqual(new Set(["verify", "reset", "before-after"]));
    expect(danglingSameAs(cases)).toEqual([]);
    expect(cases.find((c) => c.id === "verify-tpcb-50")!.cells.direct.kind).toBe("na");
    expect([...targetsOf(cases)].sort()).toEqual(["direct", "pgbouncer", "pgbun", "pgbun-rev", "pgbun-twin-rev", "pgbun-twin-verify", "pgbun-verify"]);
  });

  test("options: groups are checked, before-after needs --baseline-rev, --clients sets the matrix", () => {
    expect(parseArgs(["--quick", "--only", "efficiency,verify"]).only).toEqual(["efficiency", "verify"]);
    expect(() => parseArgs(["--only", "efficency"])).toThrow(/unknown group efficency/);
    expect(() => parseArgs(["--only", "before-after"])).toThrow(/needs --baseline-rev/);
    expect(parseArgs(["--only", "before-after", "--baseline-rev", "de7f4e5"]).baselineRev).toBe("de7f4e5");
    expect(parseArgs(["--clients", "50,10,10"]).clients).toEqual([10, 50]);
    expect(parseArgs([]).only).toBeUndefined();
  });
});

describe("custom pgbench scripts", () => {
  test("a custom script is written to the run's directory and passed with -f, not -S", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgbun-bench-test-"));
    try {
      const spec = { clients: 10, protocol: "simple" as const, script: { name: "listen", text: "LISTEN x;\nSELECT 1;" }, reconnect: true, durationS: 1 };
      const file = writeScript(spec, dir)!;
      expect(readFileSync(file, "utf8")).toBe("LISTEN x;\nSELECT 1;\n");
      const args = pgbenchArgs(spec, { host: "h", port: 1, database: "d", user: "u" }, join(dir, "log"), 0, file);
      expect(args).not.toContain("-S");
      expect(args.slice(args.indexOf("-f"), args.indexOf("-f") + 2)).toEqual(["-f", file]);
      expect(args).toContain("-C");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A run that counted: tps, CPU per transaction, and the load seen before it. */
function runOf(tps: number, cpuUs: number | null, load1 = 0.2, others = 0): PgbenchResult {
  return {
    ok: true,
    tps,
    latencyAvgMs: 1,
    p99Ms: 2,
    transactions: tps * 2,
    failedTransactions: 0,
    samples: 100,
    connectMs: null,
    initialConnectMs: null,
    connectAllowanceS: 0,
    clientsServed: 50,
    wallS: 2,
    command: "",
    poolerCpu: cpuUs === null ? null : { seconds: 1, usPerTxn: cpuUs, resolutionUs: 0.1, processes: 1 },
    load: { load1, othersRunnable: others },
  };
}

function outcome(c: BenchCase, tps: Record<"direct" | "pgbouncer" | "pgbun", number>, cpu: Record<"pgbouncer" | "pgbun", number>): CaseOutcome {
  const runs = { direct: [runOf(tps.direct, null)], pgbouncer: [runOf(tps.pgbouncer, cpu.pgbouncer)], pgbun: [runOf(tps.pgbun, cpu.pgbun)] };
  return { case: c, runs, cells: { direct: summarize(runs.direct), pgbouncer: summarize(runs.pgbouncer), pgbun: summarize(runs.pgbun) } };
}

describe("derived rows", () => {
  const cases = new Map(buildCases(QUICK).map((c) => [c.id, c]));
  const at = (id: string, t: number) => outcome(cases.get(id)!, { direct: t, pgbouncer: t, pgbun: t }, { pgbouncer: 20, pgbun: 20 });

  test("efficiency: transactions per server connection for session / transaction / statement, and both ratios to session mode", () => {
    // 2 s runs, 50 clients: transaction and statement on 20 servers, session on 50
    const rows = efficiencyRows([at("tx-simple-50", 10_000), at("statement-simple-50", 12_000), at("session-wide-simple-50", 5_000)], 20, 2);
    const side = rows.find((r) => r.label.startsWith("transactions per server connection side by side"))!;
    expect(side.cells.pgbun).toBe("session 200 / transaction 1,000 / statement 1,200");
    const ratios = rows.filter((r) => r.label.startsWith("connection efficiency")).map((r) => [r.label.split(" (")[0], r.cells.pgbun]);
    expect(ratios).toEqual([
      ["connection efficiency: transaction mode", "5.00×"],
      ["connection efficiency: statement mode", "6.00×"],
    ]);
  });

  test("reset cost: tps ratio of the LISTEN storm to the stateless one, and the CPU per connection it adds", () => {
    const plain = outcome(cases.get("reset-stateless-10")!, { direct: 1000, pgbouncer: 2000, pgbun: 2000 }, { pgbouncer: 100, pgbun: 150 });
    const pinned = outcome(cases.get("reset-listen-10")!, { direct: 900, pgbouncer: 1900, pgbun: 1500 }, { pgbouncer: 105, pgbun: 190 });
    const [row] = resetRows([plain, pinned]);
    expect(row!.cells).toEqual({ direct: "0.90× tps", pgbouncer: "0.95× tps, CPU +5 µs per connection", pgbun: "0.75× tps, CPU +40 µs per connection" });
  });
});

describe("load warning", () => {
  test("a cell above 1.5 is marked; other work is called out apart from the benchmark's own load", () => {
    expect(loadMark(summarize([runOf(1, null, 1.2)]).load)).toBe("");
    expect(loadMark(summarize([runOf(1, null, 1.2), runOf(1, null, 2.5)]).load)).toBe(" ⚠ load 2.50");
    expect(loadMark(summarize([runOf(1, null, 3, 1.6)]).load)).toBe(" ⚠ load 3.00, OTHER WORK 1.6 runnable");
    expect(loadWarning([{ where: "a", load: summarize([runOf(1, null, 1)]).load }], 2)).toEqual([]);
    const quiet = loadWarning([{ where: "a", load: summarize([runOf(1, null, 2.2)]).load }], 2);
    expect(quiet.join("\n")).toMatch(/WARNING: LOAD\. Before 1 of 1 measured cells .*\(no other work seen\)/);
    const busy = loadWarning([{ where: "pgbun, x", load: summarize([runOf(1, null, 4, 2)]).load }], 2);
    expect(busy.join("\n")).toMatch(/DO NOT TRUST[\s\S]*OTHER WORK before pgbun, x: 2\.0 runnable threads/);
  });
});
