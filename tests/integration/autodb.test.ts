// Integration: pools made for names the "*" entry answers are dropped, with their servers, once unused for
// autodb_idle_timeout (PgBouncer's setting); configured databases and pools with clients stay.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { appBackends, expectLog, pgConnect, usePostgres, waitFor, waitNoAppBackends, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import type { WireClient } from "../harness/wire.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();

const ADMIN = "autodb_admin";

/** Transaction mode, autodb_idle_timeout 1 s; every name goes to the upstream `app` through "*" unless `databases` adds entries. */
function config(databases: Record<string, unknown> = {}, settings: Record<string, unknown> = {}) {
  const upstream = { host: pg.host, port: pg.port, password: pg.password, dbname: "app" };
  return {
    pgbun: { pool_mode: "transaction", default_pool_size: 2, autodb_idle_timeout: 1, admin_users: [ADMIN], ...settings },
    databases: { "*": upstream, ...databases },
  };
}

/** The database names of SHOW POOLS, SHOW DATABASES and SHOW STATS, as the admin console lists them. */
async function listed(f: PgbunFixture): Promise<{ pools: string[]; databases: string[]; stats: string[] }> {
  const c = await pgConnect(f.pb, { user: ADMIN, database: "pgbouncer" });
  try {
    const pools = (await c.query("SHOW POOLS")).rows.map((r: { database: string }) => r.database);
    const databases = (await c.query("SHOW DATABASES")).rows.map((r: { name: string }) => r.name);
    const stats = (await c.query("SHOW STATS")).rows.map((r: { database: string }) => r.database);
    return { pools, databases, stats };
  } finally {
    await c.end();
  }
}

async function value(c: WireClient, sql: string): Promise<string | null> {
  const r = await c.query(sql);
  expect(r.errors).toEqual([]);
  return r.rows[0]![0]!;
}

const autoNames = (names: string[]) => names.filter((n) => n.startsWith("auto_")).sort();

describe("autodb_idle_timeout", () => {
  test("unused auto-database pools are dropped with their servers and their SHOW STATS rows; a new login to the same name works", async () => {
    await waitNoAppBackends(pg);
    await withPgbun(pg, config({}, { stats_period: 1 }), async (f) => {
      const names = Array.from({ length: 12 }, (_, i) => `auto_${String(i).padStart(2, "0")}`);
      const clients: WireClient[] = [];
      for (const database of names) {
        const c = await f.login({ database });
        expect(await value(c, "SELECT current_database()")).toBe("app");
        clients.push(c);
      }
      const before = await listed(f);
      expect(autoNames(before.pools)).toEqual(names);
      expect(autoNames(before.databases)).toEqual(names);
      expect(autoNames(before.stats)).toEqual(names);
      expect(await appBackends(pg)).toBe(names.length);

      for (const c of clients) await c.close();
      await waitFor("the auto-database pools to be dropped", async () => autoNames((await listed(f)).pools).length === 0, 8_000, 200);
      expect(autoNames((await listed(f)).databases)).toEqual([]);
      // counters of a dropped pool go at the next stats period (stats_period 1 s here), as PgBouncer's do
      await waitFor("their stats to be dropped", async () => autoNames((await listed(f)).stats).length === 0, 5_000, 200);
      await waitFor("their servers to be closed", async () => (await appBackends(pg)) === 0, 5_000, 100);
      await expectLog(f.pb, "auto-database pool dropped after autodb_idle_timeout");

      const again = await f.login({ database: "auto_03" });
      expect(await value(again, "SELECT current_database()")).toBe("app");
      expect(autoNames((await listed(f)).pools)).toEqual(["auto_03"]);
    });
  });

  test("a pool whose client stays logged in is kept however long the client idles, and so is its server", async () => {
    await withPgbun(pg, config(), async (f) => {
      const c = await f.login({ database: "auto_keep" });
      const pid = await value(c, "SELECT pg_backend_pid()");
      await Bun.sleep(2_500);
      expect(autoNames((await listed(f)).pools)).toEqual(["auto_keep"]);
      expect(await value(c, "SELECT pg_backend_pid()")).toBe(pid);
    });
  });

  test("a pool of a configured [databases] entry is never dropped: its idle server serves the next login", async () => {
    const app = { host: pg.host, port: pg.port, password: pg.password };
    await withPgbun(pg, config({ app }), async (f) => {
      const a = await f.login({ database: "app" });
      const pid = await value(a, "SELECT pg_backend_pid()");
      await a.close();
      await Bun.sleep(2_500);
      expect((await listed(f)).pools).toContain("app");
      const b = await f.login({ database: "app" });
      expect(await value(b, "SELECT pg_backend_pid()")).toBe(pid);
    });
  });

  test("autodb_idle_timeout = 0 never drops an auto-database pool", async () => {
    await withPgbun(pg, config({}, { autodb_idle_timeout: 0 }), async (f) => {
      const a = await f.login({ database: "auto_forever" });
      const pid = await value(a, "SELECT pg_backend_pid()");
      await a.close();
      await Bun.sleep(2_000);
      expect(autoNames((await listed(f)).pools)).toEqual(["auto_forever"]);
      const b = await f.login({ database: "auto_forever" });
      expect(await value(b, "SELECT pg_backend_pid()")).toBe(pid);
    });
  });
});
