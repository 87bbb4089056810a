// Integration: session state in transaction mode. SET values follow their client from server to server and never
// leak to another client of the same server; advisory locks, temp tables, LISTEN, holdable cursors and SET ROLE pin
// the client to its server until they are gone; session_state = "error" refuses such state, "ignore" ignores it.
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { expectLog, tx, usePostgres, withPgbun, queryOk as ok, queryValue as value } from "../harness/fixtures.ts";
import { errorFields, msg, readyWithin, rows, WireClient, type BackendMessage } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(30_000);

const pg = usePostgres((db) =>
  db.psql(
    `CREATE SCHEMA myschema;
     CREATE TABLE myschema.marker (v text);
     INSERT INTO myschema.marker VALUES ('in myschema');
     CREATE ROLE pin_role NOLOGIN`,
    "app",
  ),
);

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

/** The backend pid of the server a client's next query runs on, read with `value` (so its checks apply too). */
async function backendPid(c: WireClient): Promise<string> {
  return (await value(c, "SELECT pg_backend_pid()"))!;
}

/** channel and payload of a NotificationResponse. */
function notification(m: BackendMessage): { pid: number; channel: string; payload: string } {
  const pid = m.body.readInt32BE(0);
  const a = m.body.indexOf(0, 4);
  const b = m.body.indexOf(0, a + 1);
  return { pid, channel: m.body.subarray(4, a).toString(), payload: m.body.subarray(a + 1, b).toString() };
}

// ---------------------------------------------------------------------------------------------------------------

describe("SET values follow their client and never leak to another client of the same server (pool size 1)", () => {
  interface SettingCase {
    name: string;
    set: string;
    read: string;
    /** What A reads after its SET. */
    want: string;
    /** What B may read: PostgreSQL's default (or, for a custom setting, unset: null, or "" once reset). */
    other: Array<string | null>;
  }
  const cases: SettingCase[] = [
    {
      name: "SET search_path TO myschema, public",
      set: "SET search_path TO myschema, public",
      read: "SELECT current_setting('search_path')",
      want: "myschema, public",
      other: ['"$user", public'],
    },
    {
      name: "SET statement_timeout",
      set: "SET statement_timeout = '4s'",
      read: "SELECT current_setting('statement_timeout')",
      want: "4s",
      other: ["0"],
    },
    {
      name: "SET myapp.tenant = 'a' (custom setting)",
      set: "SET myapp.tenant = 'a'",
      read: "SELECT current_setting('myapp.tenant', true)",
      want: "a",
      other: [null, ""],
    },
    {
      name: "set_config('myapp.x', 'v', false)",
      set: "SELECT set_config('myapp.x', 'v', false)",
      read: "SELECT current_setting('myapp.x', true)",
      want: "v",
      other: [null, ""],
    },
  ];
  for (const c of cases) {
    test(`${c.name} by A is seen by A in every later transaction; B on the same server never sees it`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        expect(c.other).toContain(await value(b, c.read));
        await ok(a, c.set);
        for (let round = 0; round < 4; round++) {
          expect(await value(a, c.read)).toBe(c.want);
          const pidA = await backendPid(a);
          const other = await value(b, c.read);
          expect(c.other).toContain(other);
          // the same (only) server served both
          expect(await backendPid(b)).toBe(pidA);
          // and in an explicit transaction of A
          expect((await a.query("BEGIN")).status).toBe("T");
          const inTx = await a.query(c.read);
          expect(inTx.rows).toEqual([[c.want]]);
          expect((await a.query("COMMIT")).status).toBe("I");
        }
      });
    });
  }

  test("search_path set by A resolves A's unqualified names to myschema; B's stay unresolved (42P01)", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      await ok(a, "SET search_path TO myschema, public");
      for (let round = 0; round < 3; round++) {
        expect(await ok(a, "SELECT v FROM marker")).toEqual([["in myschema"]]);
        const r = await b.query("SELECT v FROM marker");
        expect(r.errors.map((e) => e.C)).toEqual(["42P01"]);
        expect(r.status).toBe("I");
      }
    });
  });

  test("two clients with different values of the same custom setting each keep their own", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      await ok(a, "SET myapp.tenant = 'a'");
      await ok(b, "SET myapp.tenant = 'b'");
      for (let round = 0; round < 4; round++) {
        expect(await value(a, "SELECT current_setting('myapp.tenant')")).toBe("a");
        expect(await value(b, "SELECT current_setting('myapp.tenant')")).toBe("b");
      }
    });
  });

  test("RESET statement_timeout after connecting with options=-c statement_timeout=1234 gives back 1234ms", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login({ options: "-c statement_timeout=1234" });
      const b = await f.login();
      expect(await value(a, "SHOW statement_timeout")).toBe("1234ms");
      expect(await value(b, "SHOW statement_timeout")).toBe("0");
      await ok(a, "SET statement_timeout = '9s'");
      expect(await value(a, "SHOW statement_timeout")).toBe("9s");
      expect(await value(b, "SHOW statement_timeout")).toBe("0");
      await ok(a, "RESET statement_timeout");
      for (let round = 0; round < 3; round++) {
        expect(await value(a, "SHOW statement_timeout")).toBe("1234ms");
        expect(await value(b, "SHOW statement_timeout")).toBe("0");
      }
    });
  });
});

describe("state that pins the client to its server (transaction mode)", () => {
  interface PinCase {
    name: string;
    setup: string[];
    /** Run by A while pinned (each in its own transaction), with the rows it must return. */
    during: Array<[string, Array<Array<string | null>>]>;
    release: string;
  }
  const cases: PinCase[] = [
    {
      name: "pg_advisory_lock(1) pins until pg_advisory_unlock(1)",
      setup: ["SELECT pg_advisory_lock(1)"],
      during: [["SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", [["1"]]]],
      release: "SELECT pg_advisory_unlock(1)",
    },
    {
      name: "CREATE TEMP TABLE pins until DROP TABLE",
      setup: ["CREATE TEMP TABLE tmp_pin (x int)", "INSERT INTO tmp_pin VALUES (1), (2)"],
      during: [
        ["INSERT INTO tmp_pin VALUES (3)", []],
        ["SELECT sum(x) FROM tmp_pin", [["6"]]],
      ],
      release: "DROP TABLE tmp_pin",
    },
    {
      name: "DECLARE c CURSOR WITH HOLD; COMMIT pins until CLOSE c",
      setup: ["BEGIN", "DECLARE c CURSOR WITH HOLD FOR SELECT generate_series(1, 5)", "COMMIT"],
      during: [
        ["FETCH 1 FROM c", [["1"]]],
        ["FETCH 2 FROM c", [["2"], ["3"]]],
      ],
      release: "CLOSE c",
    },
    {
      name: "SET ROLE pins until RESET ROLE",
      setup: ["SET ROLE pin_role"],
      during: [["SELECT current_user, session_user", [["pin_role", "postgres"]]]],
      release: "RESET ROLE",
    },
  ];
  for (const c of cases) {
    test(`${c.name}: same backend across transactions, and with pool size 1 another client waits until then`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        for (const sql of c.setup) {
          const r = await a.query(sql);
          expect(r.errors).toEqual([]);
        }
        const pidA = await backendPid(a);
        for (const [sql, want] of c.during) {
          expect(await ok(a, sql)).toEqual(want);
          expect(await backendPid(a)).toBe(pidA);
        }
        b.send(msg.query("SELECT 'b', pg_backend_pid(), current_user"));
        expect(await readyWithin(b, 800)).toBe("timeout");
        // still A's: another transaction of A on the same backend, B still waiting
        expect(await backendPid(a)).toBe(pidA);
        expect(await readyWithin(b, 300)).toBe("timeout");
        await expectLog(f.pb, "client pinned to its server");

        await ok(a, c.release);
        const gotB = await b.readUntilReady(5_000);
        expect(gotB.filter((m) => m.type === "E").map((m) => errorFields(m).C)).toEqual([]);
        expect(rows(gotB)).toEqual([["b", pidA, "postgres"]]);
        // both go on
        expect(await value(a, "SELECT current_user")).toBe("postgres");
        expect(await value(b, "SELECT 'b again'")).toBe("b again");
      });
    });
  }

  test("LISTEN pins the client (stable backend, gets a NOTIFY sent directly to PostgreSQL) until UNLISTEN *", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      const c = await f.login();
      await ok(a, "LISTEN chan_pin");
      const pidA = await backendPid(a);
      for (let round = 0; round < 3; round++) {
        expect(await backendPid(a)).toBe(pidA);
        // B is served meanwhile, on the other server
        expect(await backendPid(b)).not.toBe(pidA);
      }
      await pg.psql("NOTIFY chan_pin, 'hello'", "app");
      const got = await a.readUntil((m) => m.type === "A", 5_000);
      const n = notification(got[got.length - 1]!);
      expect({ channel: n.channel, payload: n.payload }).toEqual({ channel: "chan_pin", payload: "hello" });
      expect(await backendPid(a)).toBe(pidA);

      // B holds the other server in a transaction: C can only get A's server, once A lets go of it
      expect((await b.query("BEGIN")).status).toBe("T");
      const inTx = await b.query("SELECT pg_backend_pid()");
      expect(inTx.status).toBe("T");
      const pidB = inTx.rows[0]![0]!;
      c.send(msg.query("SELECT 'c', pg_backend_pid()"));
      expect(await readyWithin(c, 800)).toBe("timeout");
      await ok(a, "UNLISTEN *");
      expect(rows(await c.readUntilReady(5_000))).toEqual([["c", pidA]]);
      expect(pidB).not.toBe(pidA);
      expect((await b.query("COMMIT")).status).toBe("I");
    });
  });

  test("pinned state is visible in the logs: 'client pinned to its server: advisory lock', then 'client unpinned'", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      await ok(a, "SELECT pg_advisory_lock(42)");
      await ok(a, "SELECT 1");
      await expectLog(f.pb, "client pinned to its server: advisory lock");
      expect(f.pb.logs()).not.toContain("client unpinned");
      await ok(a, "SELECT pg_advisory_unlock(42)");
      await ok(a, "SELECT 1");
      await expectLog(f.pb, "client unpinned");
    });
  });
});

describe("session_state settings (transaction mode, pool size 1)", () => {
  test('session_state = "error": CREATE TEMP TABLE gets a FATAL 0A000 and the next client does not see the temp table', async () => {
    await withPgbun(pg, { pgbun: tx(1, { session_state: "error" }) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      a.send(msg.query("CREATE TEMP TABLE tt_err (x int)"));
      const { messages, closed } = await a.readUntilClosed(5_000);
      const errors = messages.filter((m) => m.type === "E").map(errorFields);
      expect(errors.length).toBe(1);
      expect(errors[0]!.C).toBe("0A000");
      expect(errors[0]!.S).toBe("FATAL");
      expect(closed).toBe(true);
      // the server is not handed on with the temp table
      expect(await ok(b, "SELECT to_regclass('tt_err') IS NULL, (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())")).toEqual([
        ["t", "0"],
      ]);
    });
  });

  test('session_state = "ignore": no pin (as in PgBouncer): with pool size 1, B is served on the same backend while A\'s temp table exists', async () => {
    await withPgbun(pg, { pgbun: tx(1, { session_state: "ignore" }) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      await ok(a, "CREATE TEMP TABLE tt_ign (x int)");
      const pidA = await backendPid(a);
      b.send(msg.query("SELECT pg_backend_pid(), to_regclass('tt_ign') IS NOT NULL"));
      const got = await readyWithin(b, 3_000);
      expect(got).not.toBe("timeout");
      expect(rows(got as BackendMessage[])).toEqual([[pidA, "t"]]);
      expect(f.pb.logs()).not.toContain("client pinned to its server");
    });
  });
});

describe("session_state changed by a reload (SIGHUP) takes effect for the next transaction", () => {
  test('"ignore", then "pin" by SIGHUP: A\'s temp table now pins it, and B waits rather than get A\'s server; back to "ignore": B is served', async () => {
    await withPgbun(pg, { pgbun: tx(1, { session_state: "ignore" }) }, async (f) => {
      const setMode = async (mode: string) => {
        const cfg = JSON.parse(readFileSync(f.pb.configFile, "utf8"));
        cfg.pgbun.session_state = mode;
        writeFileSync(f.pb.configFile, JSON.stringify(cfg));
        const reloads = f.pb.logs().split("configuration reloaded").length;
        f.pb.proc.kill("SIGHUP");
        for (let i = 0; i < 100 && f.pb.logs().split("configuration reloaded").length === reloads; i++) await Bun.sleep(50);
        expect(f.pb.logs().split("configuration reloaded").length).toBe(reloads + 1);
      };
      const a = await f.login();
      const b = await f.login();
      await ok(a, "CREATE TEMP TABLE tt_before (x int)");
      expect(f.pb.logs()).not.toContain("client pinned to its server");
      await ok(a, "DISCARD TEMP");
      await setMode("pin");
      await ok(a, "CREATE TEMP TABLE tt_reload (x int)");
      await expectLog(f.pb, "client pinned to its server: temporary table");
      b.send(msg.query("SELECT to_regclass('tt_reload') IS NULL"));
      expect(await readyWithin(b, 1_000)).toBe("timeout");
      // unpinned: B gets the server, without A's table
      await ok(a, "DROP TABLE tt_reload");
      const got = await readyWithin(b, 5_000);
      expect(got).not.toBe("timeout");
      expect(rows(got as BackendMessage[])).toEqual([["t"]]);
      await setMode("ignore");
      await ok(a, "CREATE TEMP TABLE tt_after (x int)");
      const c = await f.login();
      c.send(msg.query("SELECT to_regclass('tt_after') IS NOT NULL"));
      const served = await readyWithin(c, 3_000);
      expect(served).not.toBe("timeout");
      expect(rows(served as BackendMessage[])).toEqual([["t"]]);
    });
  });
});

describe("the light check of a pinned client keeps the settings it carries", () => {
  test("A: LISTEN (pins), SET statement_timeout while pinned, UNLISTEN * (unpins): on another server A still has its setting", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const holder = await f.login();
      await ok(a, "LISTEN light_ch");
      await ok(a, "SELECT 1"); // a pinned transaction that screens clean: the light check
      await ok(a, "SET statement_timeout = '4s'");
      await ok(a, "SELECT 1");
      await ok(a, "UNLISTEN *");
      const pidA = await backendPid(a);
      // holder takes the server A just left (the most recently released): A must move to the other one
      expect((await holder.query("BEGIN")).status).toBe("T");
      expect((await holder.query("SELECT pg_backend_pid()")).rows).toEqual([[pidA]]);
      expect(await backendPid(a)).not.toBe(pidA);
      expect(await value(a, "SELECT current_setting('statement_timeout')")).toBe("4s");
      expect((await holder.query("COMMIT")).status).toBe("I");
    });
  });
});

describe("a pinned client's statements replayed without their text still have their settings read", () => {
  test("PREPARE p AS SELECT set_config(...) pins A; EXECUTE p sets it; after DEALLOCATE, B on the same server does not get A's value, and A keeps it", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      await ok(a, "PREPARE set_to AS SELECT set_config('statement_timeout', '5s', false)");
      await ok(a, "EXECUTE set_to");
      await ok(a, "DEALLOCATE set_to");
      expect(await value(a, "SELECT current_setting('statement_timeout')")).toBe("5s");
      // B gets the server A left (pool size 1): not with A's setting
      expect(await value(b, "SELECT current_setting('statement_timeout')")).toBe("0");
      expect(await value(a, "SELECT current_setting('statement_timeout')")).toBe("5s");
    });
  });
});
