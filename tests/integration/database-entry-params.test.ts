// Integration: a [databases] entry's client_encoding, datestyle, timezone, application_name and connect_query reach every server login.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { appBackends, backendPid, firstValue, pgConnect, queryValue, tx, usePostgres, waitNoAppBackends, withPgbun } from "../harness/fixtures.ts";
import { errorFields, only } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(60_000);

const pg = usePostgres();

/** The app entry to the test PostgreSQL, plus `more` keys. */
function databases(more: Record<string, unknown>): Record<string, unknown> {
  return { app: { host: pg.host, port: pg.port, password: pg.password, ...more } };
}

const STARTUP = { timezone: "Pacific/Chatham", datestyle: "SQL, DMY", client_encoding: "LATIN1", application_name: "from-entry" };

describe("an entry's startup parameters (PgBouncer sends them in each server login)", () => {
  test("a client that sets none sees the entry's values, in its welcome ParameterStatus and in SHOW", async () => {
    await withPgbun(pg, { pgbun: tx(2), databases: databases(STARTUP) }, async (f) => {
      const c = await f.login();
      expect(c.params.get("TimeZone")).toBe("Pacific/Chatham");
      expect(c.params.get("DateStyle")).toBe("SQL, DMY");
      expect(c.params.get("client_encoding")).toBe("LATIN1");
      expect(c.params.get("application_name")).toBe("from-entry");
      expect(await queryValue(c, "SHOW TimeZone")).toBe("Pacific/Chatham");
      expect(await queryValue(c, "SHOW DateStyle")).toBe("SQL, DMY");
      expect(await queryValue(c, "SHOW client_encoding")).toBe("LATIN1");
      expect(await queryValue(c, "SELECT current_setting('application_name')")).toBe("from-entry");

      // a real client library that sends only user and database (node-postgres) gets them too
      const client = await pgConnect(f.pb);
      try {
        expect(await firstValue(client, "SHOW TimeZone")).toBe("Pacific/Chatham");
        expect(await firstValue(client, "SELECT current_setting('application_name')")).toBe("from-entry");
      } finally {
        await client.end();
      }
    });
  });

  test("a client that sets its own values in its startup gets its own, on the same servers", async () => {
    await withPgbun(pg, { pgbun: tx(1), databases: databases(STARTUP) }, async (f) => {
      const plain = await f.login();
      const pid = await backendPid(plain);
      const own = await f.login({ TimeZone: "UTC", DateStyle: "ISO, MDY", client_encoding: "UTF8", application_name: "mine" });
      expect(own.params.get("TimeZone")).toBe("UTC");
      expect(own.params.get("DateStyle")).toBe("ISO, MDY");
      expect(own.params.get("client_encoding")).toBe("UTF8");
      expect(own.params.get("application_name")).toBe("mine");
      expect(await backendPid(own)).toBe(pid);
      expect(await queryValue(own, "SHOW TimeZone")).toBe("UTC");
      expect(await queryValue(own, "SHOW DateStyle")).toBe("ISO, MDY");
      expect(await queryValue(own, "SHOW client_encoding")).toBe("UTF8");
      expect(await queryValue(own, "SELECT current_setting('application_name')")).toBe("mine");
      // and the client that set none is given the entry's values back on that server
      expect(await queryValue(plain, "SHOW TimeZone")).toBe("Pacific/Chatham");
      expect(await queryValue(plain, "SELECT current_setting('application_name')")).toBe("from-entry");
    });
  });

  test("a value PostgreSQL refuses fails the login at once with its SQLSTATE (22023), no waiting", async () => {
    await withPgbun(pg, { pgbun: tx(2), databases: databases({ timezone: "No/Such_Zone" }) }, async (f) => {
      const started = Date.now();
      const { messages } = await f.attempt({}, 10_000);
      const errors = only(messages, "E").map(errorFields);
      expect(errors.map((e) => e.C)).toEqual(["22023"]);
      expect(errors[0]!.M).toContain("No/Such_Zone");
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });
});

describe("connect_query (run once after each server login, before the server is used)", () => {
  test("its settings are in force in a client's session on every new server", async () => {
    await pg.psql("CREATE SCHEMA IF NOT EXISTS entry_x; CREATE TABLE IF NOT EXISTS entry_x.marker (v text); TRUNCATE entry_x.marker; INSERT INTO entry_x.marker VALUES ('x')", "app");
    const connect_query = "SET search_path = entry_x, public; SET pgbun_test.tag = 'from connect_query'";
    await withPgbun(pg, { pgbun: tx(2), databases: databases({ connect_query }) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      // two servers at once: each logged in (and ran the connect_query) on its own
      expect((await a.query("BEGIN")).errors).toEqual([]);
      expect((await b.query("BEGIN")).errors).toEqual([]);
      const pids = new Set([await backendPid(a), await backendPid(b)]);
      expect(pids.size).toBe(2);
      for (const c of [a, b]) {
        const r = await c.query("SELECT current_setting('search_path'), (SELECT v FROM marker), current_setting('pgbun_test.tag')");
        expect(r.errors).toEqual([]);
        expect(r.rows).toEqual([["entry_x, public", "x", "from connect_query"]]);
        expect((await c.query("COMMIT")).errors).toEqual([]);
      }
      // a real client library sees the same
      const client = await pgConnect(f.pb);
      try {
        expect(await firstValue(client, "SELECT v FROM marker")).toBe("x");
      } finally {
        await client.end();
      }
    });
  });

  test("a reported setting it changes is what clients are welcomed with", async () => {
    await withPgbun(pg, { pgbun: tx(2), databases: databases({ connect_query: "SET TimeZone = 'Asia/Kathmandu'" }) }, async (f) => {
      const c = await f.login();
      expect(c.params.get("TimeZone")).toBe("Asia/Kathmandu");
      expect(await queryValue(c, "SHOW TimeZone")).toBe("Asia/Kathmandu");
    });
  });

  test("one that fails gives the client an error with a SQLSTATE at once, and its server serves nobody", async () => {
    await withPgbun(pg, { pgbun: tx(2), databases: databases({ connect_query: "SELEC 1" }) }, async (f) => {
      for (let i = 0; i < 2; i++) {
        const started = Date.now();
        const { messages, client } = await f.attempt({}, 10_000);
        expect(only(messages, "Z")).toEqual([]);
        const errors = only(messages, "E").map(errorFields);
        expect(errors.length).toBe(1);
        expect(errors[0]!.S).toBe("FATAL");
        expect(errors[0]!.C).toBe("42601"); // PostgreSQL's own SQLSTATE
        expect(errors[0]!.M).toContain("connect_query failed");
        expect(errors[0]!.M).toContain("syntax error");
        expect(Date.now() - started).toBeLessThan(5_000);
        await client.waitClosed(3_000);
      }
      // no server was kept: none of pgbun's logins is left open on PostgreSQL
      await waitNoAppBackends(pg);
      expect(await appBackends(pg)).toBe(0);
      // logged with the database it ran on (the log is JSON: its quotes are escaped)
      expect(f.pb.logs()).toContain('connect_query failed on database \\"app\\": syntax error');
    });
  });

  test("clients waiting together for the first server all get the failure at once", async () => {
    await withPgbun(pg, { pgbun: tx(2), databases: databases({ connect_query: "SELECT * FROM no_such_table" }) }, async (f) => {
      const started = Date.now();
      const outcomes = await Promise.all([0, 1, 2].map(() => f.attempt({}, 10_000)));
      for (const { messages } of outcomes) {
        expect(only(messages, "Z")).toEqual([]);
        expect(only(messages, "E").map((m) => errorFields(m).C)).toEqual(["42P01"]);
      }
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });

  test("a new server whose connect_query fails is never given to a waiting client: it waits for a working one", async () => {
    await pg.psql("CREATE TABLE IF NOT EXISTS entry_gate (v int)", "app");
    try {
      await withPgbun(pg, { pgbun: tx(2), databases: databases({ connect_query: "SELECT count(*) FROM entry_gate" }) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        expect((await a.query("BEGIN")).errors).toEqual([]);
        const pid = await backendPid(a); // a holds the pool's one server
        await pg.psql("DROP TABLE entry_gate", "app");
        // b needs a second server: its login fails in the connect_query, and b waits for a's server instead
        const answer = b.query("SELECT pg_backend_pid()");
        await Bun.sleep(500);
        expect((await a.query("COMMIT")).errors).toEqual([]);
        const r = await answer;
        expect(r.errors).toEqual([]);
        expect(r.rows).toEqual([[pid]]);
        expect(f.pb.logs()).toContain("relation \\\"entry_gate\\\" does not exist");
      });
    } finally {
      await pg.psql("DROP TABLE IF EXISTS entry_gate", "app");
    }
  });
});
