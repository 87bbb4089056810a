// Integration: pgbench (TPC-B-like and select-only, simple and extended protocol) through pgbun in session and
// transaction mode; every run must finish without a failed transaction and with real throughput.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../harness/postgres.ts";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(30_000);

type Mode = "session" | "transaction";
const MODES: Mode[] = ["session", "transaction"];
const CLIENTS = 8;
const THREADS = 2;
const SECONDS = 3;
/**
 * 8 clients on 4 servers in both modes: in session mode the other 4 wait until pgbench ends the sessions of
 * the clients that are done (their runs are late and short, but must not fail).
 */
const POOL_SIZE: Record<Mode, number> = { session: 4, transaction: 4 };

/** A PostgreSQL client program: PATH first, then Debian's versioned bin dirs (highest version first). */
function findBinary(name: string): string {
  const onPath = Bun.which(name);
  if (onPath) return onPath;
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const candidate = join(base, v, "bin", name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found on PATH or in ${base}/*/bin`);
}
const PGBENCH = findBinary("pgbench");

let pg: TestPostgres;
const bouncers = {} as Record<Mode, TestPgbun>;

interface RunResult {
  code: number;
  output: string;
}

async function pgbench(host: string, port: number, args: string[]): Promise<RunResult> {
  const proc = Bun.spawn([PGBENCH, "-h", host, "-p", String(port), "-U", pg.superuser, ...args, "app"], {
    env: { ...process.env, PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: "10", LANG: "C", LC_ALL: "C" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  return { code, output: `${out}\n${err}` };
}

interface BenchSummary {
  processed: number;
  failed: number;
  tps: number;
}

/** The summary lines of a pgbench run; throws (with the whole output) when one is missing. */
function parseSummary(output: string): BenchSummary {
  const processed = /number of transactions actually processed: (\d+)/.exec(output);
  const failed = /number of failed transactions: (\d+)/.exec(output);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(output);
  if (!processed || !failed || !tps) throw new Error(`unexpected pgbench output:\n${output}`);
  return { processed: Number(processed[1]), failed: Number(failed[1]), tps: Number(tps[1]) };
}

beforeAll(async () => {
  pg = await startPostgres();
  const init = await pgbench(pg.host, pg.port, ["-i", "-s", "1", "-q"]);
  if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.output}`);
}, 60_000);

afterAll(async () => {
  await pg?.stop();
});

/** Runs pgbench through pgbun and checks the run's summary; returns it. */
async function benchThrough(mode: Mode, extra: string[]): Promise<BenchSummary> {
  const b = bouncers[mode];
  const run = pgbench(b.host, b.port, ["-c", String(CLIENTS), "-j", String(THREADS), "-T", String(SECONDS), ...extra]);
  // meanwhile, PostgreSQL's own view: never more backends on `app` than the pool allows
  let done = false;
  let maxBackends = 0;
  const sampler = (async () => {
    while (!done) {
      const n = Number(await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = 'app'"));
      maxBackends = Math.max(maxBackends, n);
      await Bun.sleep(50);
    }
  })();
  const r = await run;
  done = true;
  await sampler;
  expect(maxBackends).toBeGreaterThan(0);
  expect(maxBackends).toBeLessThanOrEqual(POOL_SIZE[mode]);
  if (r.code !== 0) throw new Error(`pgbench exited with ${r.code}:\n${r.output}\n--- pgbun logs ---\n${b.logs()}`);
  expect(r.output).toContain("number of failed transactions: 0 ");
  const summary = parseSummary(r.output);
  expect(summary.failed).toBe(0);
  expect(summary.processed).toBeGreaterThan(0);
  expect(summary.tps).toBeGreaterThan(0);
  expect(r.output).not.toMatch(/error|aborted/i);
  return summary;
}

/** Rows pgbench_history holds, read straight from PostgreSQL. */
async function historyRows(): Promise<number> {
  return Number(await pg.psql("SELECT count(*) FROM pgbench_history", "app"));
}

for (const mode of MODES) {
  describe(`${mode} mode (pool size ${POOL_SIZE[mode]}, -c ${CLIENTS} -j ${THREADS})`, () => {
    // one pgbun at a time, so that every backend on `app` belongs to the pool under test
    beforeAll(async () => {
      bouncers[mode] = await startPgbun({ config: { pgbun: { pool_mode: mode, default_pool_size: POOL_SIZE[mode] } }, pg });
    });
    afterAll(async () => {
      await bouncers[mode]?.stop();
      // its servers are gone before the next mode starts counting
      for (let i = 0; i < 100 && (await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = 'app'")) !== "0"; i++) {
        await Bun.sleep(50);
      }
    });

    for (const protocol of ["simple", "extended"] as const) {
      test(`pgbench TPC-B -M ${protocol} completes with no failed transaction and every transaction recorded`, async () => {
        const summary = await benchThrough(mode, ["-M", protocol]);
        // pgbench vacuums and truncates pgbench_history before the run: each committed transaction left one row
        expect(await historyRows()).toBe(summary.processed);
        // the balances stay consistent: the sum over accounts equals the sum over branches and tellers
        const sums = await pg.psql(
          "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches) AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)",
          "app",
        );
        expect(sums).toBe("t");
      }, 30_000);
    }

    test("pgbench -S (select-only) -M extended completes with no failed transaction", async () => {
      await benchThrough(mode, ["-S", "-M", "extended"]);
    }, 30_000);

    test("pgbench -S (select-only) -M simple completes with no failed transaction", async () => {
      await benchThrough(mode, ["-S", "-M", "simple"]);
    }, 30_000);
  });
}
