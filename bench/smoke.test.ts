// Runs the benchmark end to end on its smoke cases (bench/run.ts --smoke) and checks it writes a table of numbers.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO_ROOT = resolve(import.meta.dir, "..");
const BUN = join(REPO_ROOT, "node_modules", ".bin", "bun");
/** A cell measured on a busy machine ends with its load warning (bench/load.ts: loadMark). */
const LOAD = "( ⚠ load [\\d.]+(, OTHER WORK [\\d.]+ runnable)?)?";
const NUMBER_CELL = new RegExp(`^\\d[\\d,]*(\\.\\d+)? tps \\(avg [\\d.]+ ms, p99 [\\d.]+ ms\\)${LOAD}$`);
/** A pooler's cell also carries its CPU per transaction. */
const POOLER_CELL = new RegExp(`^\\d[\\d,]*(\\.\\d+)? tps \\(avg [\\d.]+ ms, p99 [\\d.]+ ms, CPU [\\d,]+ µs\\/txn\\)${LOAD}$`);
const RATIO = /^\d+\.\d\d×$/;

/** The cells of the table row whose first cell is `label`. */
function row(table: string, label: string): string[] | undefined {
  for (const line of table.split("\n")) {
    const cells = line.split(" | ").map((c) => c.replace(/^\| ?| ?\|$/g, "").trim());
    if (cells[0] === label) return cells;
  }
  return undefined;
}

test("bench/run.ts --smoke completes and writes a results table with numeric cells, pooler CPU and the pass-through row", async () => {
  const out = mkdtempSync(join(tmpdir(), "pgbun-bench-smoke-"));
  try {
    const proc = Bun.spawn([BUN, "bench/run.ts", "--quick", "--duration", "1", "--smoke", "--out", out], {
      cwd: REPO_ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) console.error(stdout, stderr);
    expect(code).toBe(0);

    const doc = readFileSync(join(out, "latest-smoke.md"), "utf8");
    const cells = row(doc, "select-only, simple, 10 clients");
    expect(cells).toBeDefined();
    const [, direct, pgbouncer, pgbun, vsBouncer, vsDirect] = cells!;
    expect(direct).toMatch(NUMBER_CELL);
    expect(pgbun).toMatch(POOLER_CELL);
    expect(vsDirect).toMatch(RATIO);
    if (!doc.includes("PgBouncer unavailable")) {
      expect(pgbouncer).toMatch(POOLER_CELL);
      expect(vsBouncer).toMatch(/^\d+\.\d\d× \(CPU\/txn \d+\.\d\d×\)$/);
    }
    const floor = doc.split("\n").find((l) => l.startsWith("| REFERENCE, not a pooler: bare Bun pass-through"));
    expect(floor).toBeDefined();
    expect(floor!).toMatch(/of the pass-through run beside it: [\d,]+ tps, CPU [\d,]+ µs\/txn/);
    const perClient = row(doc, "memory per idle client ((after − before) / 200)");
    expect(perClient?.[3]).toMatch(/^-?\d[\d,]* B$/);
    // the realistic idle client: 5 named statements prepared after login, beside the login-only figure
    const prepared = doc.split("\n").find((l) => l.startsWith("| memory per idle client after 5 prepared statements (extended protocol"));
    expect(prepared).toBeDefined();
    const [, , bouncerPrepared, pgbunPrepared] = prepared!.split(" | ");
    expect(pgbunPrepared).toMatch(/^-?\d[\d,]* B \([+−][\d,]+ B for the statements\)$/);
    if (!doc.includes("PgBouncer unavailable")) expect(bouncerPrepared).toMatch(/^(-?\d[\d,]* B \([+−][\d,]+ B for the statements\)|n\/a: PgBouncer \S+ has no max_prepared_statements .*)$/);

    type Cell = { tps: number; load: { load1Max: number | null; othersMax: number | null } };
    const json = JSON.parse(readFileSync(join(out, "latest-smoke.json"), "utf8")) as { cases: Array<{ cells: { pgbun: Cell } }> };
    expect(json.cases[0]!.cells.pgbun.tps).toBeGreaterThan(0);
    // the machine's load before the cell's run, and the other work seen then, are kept for the warning
    expect(json.cases[0]!.cells.pgbun.load.load1Max).toBeGreaterThanOrEqual(0);
    expect(json.cases[0]!.cells.pgbun.load.othersMax).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, "latest-smoke.svg"))).toBe(true);
    expect(readFileSync(join(out, "latest-smoke.svg"), "utf8")).toStartWith("<svg");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 300_000);
