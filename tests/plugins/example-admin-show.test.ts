// The admin-long-queries example against a real PostgreSQL: SHOW LONG_QUERIES [ms] and LONG_QUERY_MS, added on AdminApi.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { join, resolve } from "node:path";
import type { Client } from "pg";
import { harnessTempDir } from "../harness/postgres.ts";
import { closeAfterEach, firstValue, pgConnect, rejection, usePostgres, waitFor } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import type { AdminLongQueriesOptions } from "../../examples/admin-long-queries.ts";

setDefaultTimeout(30_000);

const EXAMPLE = join(resolve(import.meta.dir, "..", ".."), "examples", "admin-long-queries.ts");
const ADMIN = "admin";
const WATCHER = "watcher";

const pg = usePostgres();
const track = closeAfterEach();

async function pooler(plugins: Array<string | [string, Record<string, unknown>]>): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", admin_users: [ADMIN], stats_users: [WATCHER] },
    plugins,
    dir: await harnessTempDir("example-admin-show"),
  });
  return track(p, (p) => p.stop());
}

const withExample = (options: AdminLongQueriesOptions = {}) => pooler([[EXAMPLE, options as Record<string, unknown>]]);

async function connect(p: TestPooler, config: { user?: string; database?: string; application_name?: string } = {}): Promise<Client> {
  return track(await pgConnect(p, config), (c) => c.end());
}

type Row = Record<string, string | null>;
type Failure = { code?: string; message: string };
const failure = (c: Client, sql: string): Promise<Failure | null> => c.query(sql).then(() => null, (e: Failure) => e);
const longQueries = async (c: Client, sql = "SHOW LONG_QUERIES"): Promise<Row[]> => (await c.query(sql)).rows as Row[];

describe("the admin-long-queries example", () => {
  test("SHOW LONG_QUERIES lists a client waiting on a long query, with its server's backend pid; not an idle one", async () => {
    const p = await withExample({ thresholdMs: 300 });
    const slow = await connect(p, { application_name: "nightly-report" });
    const idle = await connect(p, { application_name: "idle-one" });
    await firstValue(idle, "SELECT 1");
    // one transaction: the sleep runs on the server whose pid we read
    await slow.query("BEGIN");
    const pid = String(await firstValue(slow, "SELECT pg_backend_pid()"));
    const sleeping = slow.query("SELECT pg_sleep(1.5)");

    const admin = await connect(p, { user: ADMIN, database: "pgbouncer" });
    let rows: Row[] = [];
    await waitFor("the sleeping client in SHOW LONG_QUERIES", async () => (rows = await longQueries(admin)).length > 0, 3_000);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ user: "postgres", database: "app", application_name: "nightly-report", state: "active", remote_pid: pid });
    expect(row.client).toMatch(/^C-\d+$/);
    expect(row.server).toMatch(/^S-\d+$/);
    expect(Number(row.running_ms)).toBeGreaterThanOrEqual(300);
    // int8 like the built-in tables' counts
    const r = await admin.query("SHOW LONG_QUERIES");
    expect(r.fields.find((f) => f.name === "running_ms")!.dataTypeID).toBe(20);

    await sleeping;
    await slow.query("COMMIT");
    expect(await longQueries(admin, "SHOW LONG_QUERIES 0")).toEqual([]);
  });

  test("an argument overrides the threshold; LONG_QUERY_MS changes the default; a bad number is 22023", async () => {
    const p = await withExample({ thresholdMs: 60_000 });
    const slow = await connect(p);
    const sleeping = slow.query("SELECT pg_sleep(1)");
    const admin = await connect(p, { user: ADMIN, database: "pgbouncer" });
    await waitFor("the query in SHOW LONG_QUERIES 100", async () => (await longQueries(admin, "SHOW LONG_QUERIES 100")).length === 1, 3_000);
    // the default (60 s) hides it
    expect(await longQueries(admin)).toEqual([]);
    expect((await admin.query("LONG_QUERY_MS 100")).command).toBe("SET");
    expect((await longQueries(admin)).length).toBe(1);
    expect(await failure(admin, "SHOW LONG_QUERIES soon")).toMatchObject({ code: "22023" });
    expect(await failure(admin, "LONG_QUERY_MS -5")).toMatchObject({ code: "22023" });
    await sleeping;
  });

  test("a stats_user may SHOW LONG_QUERIES but not set LONG_QUERY_MS (42501); SHOW HELP lists both", async () => {
    const p = await withExample();
    const watcher = await connect(p, { user: WATCHER, database: "pgbouncer" });
    expect(await longQueries(watcher)).toEqual([]);
    expect(await failure(watcher, "LONG_QUERY_MS 5")).toMatchObject({ code: "42501" });
    const admin = await connect(p, { user: ADMIN, database: "pgbouncer" });
    const notices: string[] = [];
    admin.on("notice", (n) => notices.push(`${n.message}\n${(n as { detail?: string }).detail ?? ""}`));
    await admin.query("SHOW HELP");
    await Bun.sleep(50);
    const help = notices.join("\n");
    expect(help).toContain("SHOW LONG_QUERIES -- clients waiting on a query longer than [ms] (default 1000)");
    expect(help).toContain("LONG_QUERY_MS -- <ms>: the default threshold of SHOW LONG_QUERIES");
  });

  test("listed before pgbun:admin, it fails start-up saying so", async () => {
    const err = await rejection<Error>(pooler([EXAMPLE, "pgbun:admin"]));
    expect(err.message).toContain("admin-long-queries");
    expect(err.message).toContain("must come before this plugin");
  });
});
