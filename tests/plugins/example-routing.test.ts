// The route-by-user example against a real PostgreSQL with two databases: who is routed, where, and SHOW POOLS.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { join, resolve } from "node:path";
import type { Client } from "pg";
import { harnessTempDir, TEST_ROLES } from "../harness/postgres.ts";
import { closeAfterEach, firstValue, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import type { RouteByUserOptions } from "../../examples/route-by-user.ts";

setDefaultTimeout(30_000);

const ROUTE_BY_USER = join(resolve(import.meta.dir, "..", ".."), "examples", "route-by-user.ts");
const REPORTS = "reports";
/** A role PostgreSQL trusts from 127.0.0.1: its servers log in without a password. */
const ROUTED_USER = TEST_ROLES.trust.user;
const ADMIN = "admin";

const pg = usePostgres((pg) => pg.psql(`CREATE DATABASE ${REPORTS}`));
const track = closeAfterEach();

/** Two [databases] entries (no `*`: a name without an entry is unknown), the example loaded from its path. */
async function pooler(options: RouteByUserOptions): Promise<TestPooler> {
  const entry = { host: pg.host, port: pg.port, password: pg.password };
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 1, admin_users: [ADMIN] },
    databases: { app: { ...entry, dbname: "app" }, [REPORTS]: { ...entry, dbname: REPORTS } },
    plugins: [[ROUTE_BY_USER, options as Record<string, unknown>]],
    dir: await harnessTempDir("example-routing"),
  });
  return track(p, (p) => p.stop());
}

async function connect(p: TestPooler, config: { user?: string; database?: string; application_name?: string } = {}): Promise<Client> {
  return track(await pgConnect(p, config), (c) => c.end());
}

type Row = Record<string, string | null>;

describe("the route-by-user example", () => {
  test("a routed user's queries run in the target database; an unrouted user's in the one it asked for", async () => {
    const p = await pooler({ users: { [ROUTED_USER]: REPORTS } });
    const routed = await connect(p, { user: ROUTED_USER, database: "app" });
    const plain = await connect(p, { database: "app" });
    expect(await firstValue(routed, "SELECT current_database()")).toBe(REPORTS);
    expect(await firstValue(plain, "SELECT current_database()")).toBe("app");
    // the next client of each pool (one server each): still where its pool says, not the other's server
    await routed.end();
    const next = await connect(p, { user: ROUTED_USER, database: "app" });
    expect(await firstValue(next, "SELECT current_user || '@' || current_database()")).toBe(`${ROUTED_USER}@${REPORTS}`);
    expect(await firstValue(plain, "SELECT current_user || '@' || current_database()")).toBe("postgres@app");
  });

  test("application_name routes a client; a user's own route wins over it", async () => {
    const p = await pooler({ users: { [ROUTED_USER]: "app" }, applicationName: { reporting: REPORTS } });
    const byApp = await connect(p, { database: "app", application_name: "reporting" });
    const otherApp = await connect(p, { database: "app", application_name: "web" });
    const userWins = await connect(p, { user: ROUTED_USER, database: REPORTS, application_name: "reporting" });
    expect(await firstValue(byApp, "SELECT current_database()")).toBe(REPORTS);
    expect(await firstValue(otherApp, "SELECT current_database()")).toBe("app");
    expect(await firstValue(userWins, "SELECT current_database()")).toBe("app");
  });

  test("a route to a database with no entry refuses the login with 3D000 and says which route", async () => {
    const p = await pooler({ applicationName: { lost: "nowhere" } });
    const err = await rejection(pgConnect(p, { database: "app", application_name: "lost" }, { ignoreErrors: false }));
    expect(err.code).toBe("3D000");
    expect(err.message).toBe("no such database: nowhere");
    expect(err.detail).toContain("application_name lost");
    // the refusal is that client's alone
    const ok = await connect(p, { database: "app", application_name: "found" });
    expect(await firstValue(ok, "SELECT current_database()")).toBe("app");
  });

  test("SHOW POOLS lists the routed clients' pool under the target database; the admin console is not routed", async () => {
    const p = await pooler({ users: { [ROUTED_USER]: REPORTS }, applicationName: { [ADMIN]: REPORTS } });
    const routed = await connect(p, { user: ROUTED_USER, database: "app" });
    const plain = await connect(p, { database: "app" });
    await firstValue(routed, "SELECT 1");
    await firstValue(plain, "SELECT 1");
    const admin = await connect(p, { user: ADMIN, database: "pgbouncer", application_name: ADMIN });
    const pools = (await admin.query("SHOW POOLS")).rows as Row[];
    const pairs = pools.map((r) => `${r.user}@${r.database}`);
    expect(pairs).toContain(`${ROUTED_USER}@${REPORTS}`);
    expect(pairs).toContain("postgres@app");
    expect(pairs).not.toContain(`${ROUTED_USER}@app`);
    // the routed client is counted in the target's pool, with the server it used
    const reports = pools.find((r) => r.database === REPORTS && r.user === ROUTED_USER)!;
    expect([reports.cl_active, reports.sv_idle]).toEqual(["1", "1"]);
  });
});
