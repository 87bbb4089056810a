// Integration: pgbench (TPC-B-like and select-only, simple and extended protocol) through pgbun in session and
// transaction mode; every run must finish without a failed transaction and with real throughput.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import {
  appBackends,
  initPgbench,
  parsePgbenchSummary,
  runPgbench,
  usePostgres,
  waitNoAppBackends,
  type PgbenchSummary,
} from "../harness/fixtures.ts";

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

const pg = usePostgres((db) => initPgbench(db));
const bouncers = {} as Record<Mode, TestPgbun>;

/** Runs pgbench through pgbun and checks the run's summary; returns it. */
async function benchThrough(mode: Mode, extra: string[]): Promise<PgbenchSummary> {
  const b = bouncers[mode];
  const run = runPgbench(pg, b, ["-c", String(CLIENTS), "-j", String(THREADS), "-T", String(SECONDS), ...extra]);
  // meanwhile, PostgreSQL's own view: never more backends on `app` than the pool allows
  let done = false;
  let maxBackends = 0;
  const sampler = (async () => {
    while (!done) {
      maxBackends = Math.max(maxBackends, await appBackends(pg));
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
  const summary = parsePgbenchSummary(r.output);
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
      await waitNoAppBackends(pg);
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
