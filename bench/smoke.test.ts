// Runs the benchmark end to end on one tiny case (bench/run.ts --smoke) and checks it writes a table of numbers.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO_ROOT = resolve(import.meta.dir, "..");
const BUN = join(REPO_ROOT, "node_modules", ".bin", "bun");
const NUMBER_CELL = /^\d[\d,]*(\.\d+)? tps \(avg [\d.]+ ms, p99 [\d.]+ ms\)$/;

/** The cells of the table row whose first cell is `label`. */
function row(table: string, label: string): string[] | undefined {
  for (const line of table.split("\n")) {
    const cells = line.split(" | ").map((c) => c.replace(/^\| ?| ?\|$/g, "").trim());
    if (cells[0] === label) return cells;
  }
  return undefined;
}

test("bench/run.ts --smoke completes and writes a results table with numeric cells", async () => {
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
    expect(pgbun).toMatch(NUMBER_CELL);
    expect(vsDirect).toMatch(/^\d+\.\d\d×$/);
    if (!doc.includes("PgBouncer unavailable")) {
      expect(pgbouncer).toMatch(NUMBER_CELL);
      expect(vsBouncer).toMatch(/^\d+\.\d\d×$/);
    }
    const perClient = row(doc, "memory per idle client ((after − before) / 200)");
    expect(perClient?.[3]).toMatch(/^-?\d[\d,]* B$/);

    const json = JSON.parse(readFileSync(join(out, "latest-smoke.json"), "utf8")) as { cases: Array<{ cells: { pgbun: { tps: number } } }> };
    expect(json.cases[0]!.cells.pgbun.tps).toBeGreaterThan(0);
    expect(existsSync(join(out, "latest-smoke.svg"))).toBe(true);
    expect(readFileSync(join(out, "latest-smoke.svg"), "utf8")).toStartWith("<svg");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 300_000);
