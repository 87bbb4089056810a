// The idle-memory test's clients that prepare named statements after login, against pgbun and PgBouncer, and its rows.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startPostgres, type TestPostgres } from "../tests/harness/postgres.ts";
import { measureIdleMemory, type MemoryResult } from "./memory.ts";
import { hasMaxPreparedStatements, pgbouncerVersion } from "./pgbouncer.ts";
import { cleanupAll } from "./processes.ts";
import { buildTable, type ReportInput } from "./report.ts";
import { startTarget, type PoolerSettings } from "./targets.ts";

const SETTINGS: PoolerSettings = { poolSize: 4, maxClientConn: 1_000, widePoolSize: 4 };
const CLIENTS = 20;
const pgbouncer = Bun.which("pgbouncer", { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/usr/local/sbin:/sbin` });

describe("idle clients that prepared named statements", () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres({ passwordAuth: "trust" });
  }, 60_000);
  afterAll(async () => {
    await cleanupAll();
    await pg?.stop();
  });

  test("pgbun: every client logs in, runs its 5 named statements (each returns 1 + i) and stays open", async () => {
    const target = await startTarget("pgbun", pg, null, SETTINGS);
    try {
      const r = await measureIdleMemory(target.pid!, target.endpoint, CLIENTS, 5);
      expect(r.error).toBeUndefined();
      expect(r).toMatchObject({ ok: true, requested: CLIENTS, prepared: 5, opened: CLIENTS, failed: 0 });
      expect(r.perClientBytes).not.toBeNull();
    } finally {
      await target.stop();
    }
  }, 60_000);

  // a PgBouncer without max_prepared_statements passes "s0" to a server where the previous client left its "s0":
  // the connector must see that failure, or its statements would prove nothing
  test.skipIf(!pgbouncer)("PgBouncer: before 1.21 the clients' statements collide on the servers (42P05); from 1.21 with max_prepared_statements they all pass", async () => {
    const version = await pgbouncerVersion(pgbouncer!);
    const supported = hasMaxPreparedStatements(version);
    const target = await startTarget("pgbouncer", pg, pgbouncer!, supported ? { ...SETTINGS, pgbouncerMaxPreparedStatements: 200 } : SETTINGS);
    try {
      const r = await measureIdleMemory(target.pid!, target.endpoint, CLIENTS, 5);
      if (supported) expect(r).toMatchObject({ ok: true, opened: CLIENTS });
      else {
        expect(r.ok).toBe(false);
        expect(r.failed).toBeGreaterThan(0);
        expect(r.error).toContain('42P05 prepared statement "s0" already exists');
      }
    } finally {
      await target.stop();
    }
  }, 60_000);
});

test("PgBouncer versions with max_prepared_statements", () => {
  expect(["1.18.0", "1.20.1", "unknown", ""].map(hasMaxPreparedStatements)).toEqual([false, false, false, false]);
  expect(["1.21.0", "1.24.1", "2.0"].map(hasMaxPreparedStatements)).toEqual([true, true, true]);
});

test("report: the prepared-statement rows beside the login-only ones, with the statements' share, n/a and the baseline's", () => {
  const result = (perClientBytes: number, prepared = 0): MemoryResult => ({
    ok: true,
    requested: 200,
    prepared,
    opened: 200,
    failed: 0,
    rssBeforeKb: 50_000,
    rssAfterKb: 50_000 + (perClientBytes * 200) / 1024,
    perClientBytes,
  });
  const input = {
    settings: { idleClients: 200, poolSize: 20, durationS: 1, baselineRev: "abc1234" },
    cases: [],
    memory: {
      pgbouncer: result(500),
      pgbun: result(2_000),
      pgbunRev: result(2_100),
      prepared: { statements: 5, pgbouncer: { na: "n/a: PgBouncer 1.18.0 has no max_prepared_statements" }, pgbun: result(3_500, 5), pgbunRev: result(3_000, 5) },
    },
  } as unknown as ReportInput;
  const rows = buildTable(input).rows;
  const row = rows.find((r) => r.label.startsWith("memory per idle client after 5 prepared statements (extended protocol"));
  expect(row?.cells.pgbun).toBe("3,500 B (+1,500 B for the statements)");
  expect(row?.cells.pgbouncer).toBe("n/a: PgBouncer 1.18.0 has no max_prepared_statements");
  expect(row?.label).toContain("max_prepared_statements 200");
  const rev = rows.find((r) => r.label.startsWith("memory per idle client after 5 prepared statements, pgbun at abc1234"));
  expect(rev?.cells.pgbun).toBe("3,000 B (+900 B for the statements)");
  expect(rev?.ratioPgbouncer).toBe("this tree ÷ abc1234: 1.17×");
  // the login-only rows are still there, first
  expect(rows.findIndex((r) => r.label === "memory per idle client ((after − before) / 200)")).toBeLessThan(rows.indexOf(row!));
});
