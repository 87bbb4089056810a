// Integration: a client that leaves (Terminate, a dropped socket, pgbun ending it) never hands its session state to
// the next client of its server: pinned state is reset and checked, mid-transaction/pipeline/COPY servers closed.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { expectLog, pgConnect, tx, usePostgres, withPgbun, type PgbunFixture, queryOk as ok, queryValue as value } from "../harness/fixtures.ts";
import type { Client } from "pg";
import { extendedQuery, msg, readyWithin, summarize, WireClient } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(30_000);

const pg = usePostgres((db) => db.psql("CREATE ROLE leak_role NOLOGIN; CREATE TABLE leak_regular (x int)", "app"));

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

const backendPid = async (c: WireClient) => (await value(c, "SELECT pg_backend_pid()"))!;

/** SQLSTATEs of a query's errors. */
async function errorCodes(c: WireClient, sql: string): Promise<string[]> {
  return (await c.query(sql)).errors.map((e) => e.C ?? "");
}

/** Whether a session of its own can take advisory lock `key`, asked every 50 ms until it can or `ms` pass. */
async function lockFreeWithin(key: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if ((await pg.psql(`SELECT pg_try_advisory_lock(${key})`, "app")) === "t") return true;
    if (Date.now() > deadline) return false;
    await Bun.sleep(50);
  }
}

/** The log line the pool writes when it resets a server a client left with unknown session state. */
const RESET_LOG = "resetting a server its client left with session state";

// ---------------------------------------------------------------------------------------------------------------
// What A leaves behind, and how B proves it is gone.

interface LeftState {
  name: string;
  /** Run by A, each as one Query that must succeed (the last leaves no transaction open). */
  make: string[];
  /** Run by B on the server A left: fails the test if any of A's state is still there. */
  gone: (b: WireClient) => Promise<void>;
}

const STATES: LeftState[] = [
  {
    name: "CREATE TEMP TABLE (with rows)",
    make: ["CREATE TEMP TABLE leak_t (x int)", "INSERT INTO leak_t VALUES (42)"],
    gone: async (b) => {
      expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
      expect(await value(b, "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()")).toBe("0");
    },
  },
  {
    name: "pg_advisory_lock",
    make: ["SELECT pg_advisory_lock(4242)"],
    gone: async (b) => {
      expect(await value(b, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).toBe("0");
      // another session can take the lock: nobody holds it any more (psql's session ends, and its lock with it).
      // Where pgbun closed A's server rather than reset it, that backend's exit (and its lock's release) finishes
      // in PostgreSQL after the close: asked again until it is free, for up to 5 s
      expect(await lockFreeWithin(4242, 5_000)).toBe(true);
    },
  },
  {
    name: "LISTEN",
    make: ["LISTEN leak_ch"],
    gone: async (b) => {
      expect(await value(b, "SELECT count(*) FROM pg_listening_channels()")).toBe("0");
    },
  },
  {
    name: "SQL PREPARE",
    make: ["PREPARE leak_p AS SELECT 42"],
    gone: async (b) => {
      expect(await value(b, "SELECT count(*) FROM pg_prepared_statements")).toBe("0");
      expect(await errorCodes(b, "EXECUTE leak_p")).toEqual(["26000"]);
    },
  },
  {
    name: "DECLARE CURSOR WITH HOLD",
    make: ["BEGIN", "DECLARE leak_c CURSOR WITH HOLD FOR SELECT generate_series(1, 3)", "COMMIT"],
    gone: async (b) => {
      expect(await value(b, "SELECT count(*) FROM pg_cursors")).toBe("0");
      expect(await errorCodes(b, "FETCH 1 FROM leak_c")).toEqual(["34000"]);
    },
  },
  {
    name: "SET ROLE",
    make: ["SET ROLE leak_role"],
    gone: async (b) => {
      expect(await ok(b, "SELECT current_user::text, session_user::text")).toEqual([["postgres", "postgres"]]);
    },
  },
];

/** A logs in, makes the state, and is pinned; returns A and the backend pid it is pinned to. */
async function makeState(f: PgbunFixture, state: LeftState, params: Record<string, string> = {}): Promise<{ a: WireClient; pidA: string }> {
  const a = await f.login(params);
  for (const sql of state.make) expect((await a.query(sql)).errors).toEqual([]);
  return { a, pidA: await backendPid(a) };
}

/** Waits until pgbun has pinned A and finished checking its server (nothing of pgbun's own in flight). */
async function settled(f: PgbunFixture): Promise<void> {
  await expectLog(f.pb, "client pinned to its server");
  await Bun.sleep(300);
}

// ---------------------------------------------------------------------------------------------------------------
// How A leaves.

interface Leave {
  name: string;
  settings?: Record<string, unknown>;
  /** A has waited until pgbun is idle on its server: the server must then be reset and reused, not closed. */
  reused: boolean;
  leave: (f: PgbunFixture, a: WireClient) => Promise<void>;
}

const ADMIN = "leak_admin";

/** Runs `fn` with a node-postgres connection to the admin console. */
async function admin(f: PgbunFixture, fn: (console: Client) => Promise<void>): Promise<void> {
  const console = await pgConnect(f.pb, { user: ADMIN, database: "pgbouncer" });
  try {
    await fn(console);
  } finally {
    await console.end();
  }
}

const LEAVES: Leave[] = [
  { name: "Terminate at once", reused: false, leave: (_f, a) => a.close() },
  {
    name: "socket closed abruptly at once",
    reused: false,
    leave: async (_f, a) => {
      a.destroy();
    },
  },
  {
    name: "Terminate after a pause",
    reused: true,
    leave: async (f, a) => {
      await settled(f);
      await a.close();
    },
  },
  {
    name: "socket closed abruptly after a pause",
    reused: true,
    leave: async (f, a) => {
      await settled(f);
      a.destroy();
    },
  },
  {
    name: "pgbun ends it: client_idle_timeout",
    settings: { client_idle_timeout: 1 },
    reused: true,
    leave: async (_f, a) => {
      expect(await a.waitClosed(8_000)).toBe(true);
    },
  },
  {
    name: "pgbun ends it: KILL_CLIENT from the admin console",
    settings: { admin_users: [ADMIN] },
    reused: true,
    leave: async (f, a) => {
      await settled(f);
      await admin(f, async (console) => {
        const rows = (await console.query("SHOW CLIENTS")).rows as Array<Record<string, string>>;
        const row = rows.find((x) => x.application_name === "leaver");
        if (!row) throw new Error(`no client "leaver" in ${JSON.stringify(rows)}`);
        await console.query(`KILL_CLIENT ${row.id}`);
      });
      expect(await a.waitClosed(5_000)).toBe(true);
    },
  },
];

// ---------------------------------------------------------------------------------------------------------------

describe("pinned session state never reaches the next client of the server (transaction mode, pool size 1)", () => {
  for (const leave of LEAVES) {
    for (const state of STATES) {
      test(`${state.name}, then A leaves (${leave.name}): B on ${leave.reused ? "the same backend" : "the server"} sees none of it`, async () => {
        await withPgbun(pg, { pgbun: tx(1, leave.settings) }, async (f) => {
          const { a, pidA } = await makeState(f, state, { application_name: "leaver" });
          await leave.leave(f, a);
          const b = await f.login();
          const pidB = await backendPid(b);
          if (leave.reused) expect(pidB).toBe(pidA);
          await state.gone(b);
          // and the server stays usable: B goes on, and a third client after B is served too
          expect(await value(b, "SELECT 'b goes on'")).toBe("b goes on");
          await b.close();
          const c = await f.login();
          expect(await value(c, "SELECT current_user::text")).toBe("postgres");
        });
      });
    }
  }

  test("B, already waiting for the pinned server, gets it once A has left, reset", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const { a, pidA } = await makeState(f, STATES[0]!);
      await settled(f);
      const b = await f.login();
      b.send(msg.query("SELECT pg_backend_pid()::text, (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())"));
      expect(await readyWithin(b, 500)).toBe("timeout");
      await a.close();
      const got = summarize(await b.readUntilReady(5_000));
      expect(got.errors).toEqual([]);
      expect(got.rows).toEqual([[pidA, "0"]]);
      expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
    });
  });

  test("the reset forgets what pgbun had applied to the server: B gets its own settings, not A's", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login({ options: "-c statement_timeout=7654" });
      await ok(a, "SET lock_timeout = '3s'");
      await ok(a, "CREATE TEMP TABLE leak_t (x int)");
      const pidA = await backendPid(a);
      expect(await value(a, "SHOW statement_timeout")).toBe("7654ms");
      await settled(f);
      await a.close();
      const b = await f.login();
      expect(await backendPid(b)).toBe(pidA);
      expect(await value(b, "SHOW statement_timeout")).toBe("0");
      expect(await value(b, "SHOW lock_timeout")).toBe("0");
      // a client that asks for the same setting again gets it applied (pgbun does not think the server still has it)
      await b.close();
      const c = await f.login({ options: "-c statement_timeout=7654" });
      expect(await backendPid(c)).toBe(pidA);
      expect(await value(c, "SHOW statement_timeout")).toBe("7654ms");
    });
  });
});

describe("a server its client left mid-transaction, mid-pipeline or mid-COPY never reaches the next client with A's state", () => {
  const aborts: Array<{ name: string; leave: (a: WireClient) => Promise<void> }> = [
    { name: "Terminate", leave: (a) => a.close() },
    { name: "socket closed", leave: async (a) => a.destroy() },
  ];
  for (const how of aborts) {
    test(`BEGIN; CREATE TEMP TABLE; SELECT pg_advisory_lock; then ${how.name}: B sees no temp table and holds no lock`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        expect((await a.query("BEGIN")).status).toBe("T");
        expect((await a.query("CREATE TEMP TABLE leak_t (x int)")).status).toBe("T");
        expect((await a.query("INSERT INTO leak_t VALUES (42)")).status).toBe("T");
        expect((await a.query("SELECT pg_advisory_lock(4343)")).status).toBe("T");
        await how.leave(a);
        const b = await f.login();
        expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
        expect(await value(b, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).toBe("0");
        expect((await b.query("SELECT 1")).status).toBe("I");
      });
    });

    test(`a pinned A sends Parse/Bind/Execute without Sync, then ${how.name}: B sees no temp table`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        await ok(a, "CREATE TEMP TABLE leak_t (x int)");
        await settled(f);
        a.send(extendedQuery("INSERT INTO leak_t VALUES (42)", [], false));
        await Bun.sleep(200);
        await how.leave(a);
        const b = await f.login();
        expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
        expect((await b.query("SELECT 1")).status).toBe("I");
      });
    });

    test(`an unpinned A creates a temp table in an unsynced pipeline, then ${how.name}: B sees no temp table`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        a.send(Buffer.concat([extendedQuery("CREATE TEMP TABLE leak_t AS SELECT 42 AS x", [], false), msg.flush()]));
        await a.readUntil((m) => m.type === "C", 5_000);
        await how.leave(a);
        const b = await f.login();
        expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
      });
    });

    test(`a pinned A starts COPY FROM STDIN into its temp table, sends a row, then ${how.name}: B sees none of it`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        await ok(a, "CREATE TEMP TABLE leak_t (x int)");
        await settled(f);
        a.send(msg.query("COPY leak_t FROM STDIN"));
        await a.readUntil((m) => m.type === "G", 5_000);
        a.send(msg.copyData("42\n"));
        await Bun.sleep(100);
        await how.leave(a);
        const b = await f.login();
        expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
        expect((await b.query("SELECT 1")).status).toBe("I");
      });
    });

    test(`an unpinned A is in COPY FROM STDIN into a regular table, then ${how.name}: no row of it is committed`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        a.send(msg.query("COPY leak_regular FROM STDIN"));
        await a.readUntil((m) => m.type === "G", 5_000);
        a.send(msg.copyData("7\n"));
        await Bun.sleep(100);
        await how.leave(a);
        const b = await f.login();
        expect(await value(b, "SELECT count(*) FROM leak_regular")).toBe("0");
      });
    });
  }
});

describe("pgbun ends a client whose server is busy or in a transaction: the server never reaches the next client", () => {
  test("idle_transaction_timeout ends A inside BEGIN; CREATE TEMP TABLE; pg_advisory_lock: B sees neither", async () => {
    await withPgbun(pg, { pgbun: tx(1, { idle_transaction_timeout: 1 }) }, async (f) => {
      const a = await f.login();
      expect((await a.query("BEGIN")).status).toBe("T");
      expect((await a.query("CREATE TEMP TABLE leak_t (x int)")).status).toBe("T");
      expect((await a.query("SELECT pg_advisory_lock(4444)")).status).toBe("T");
      expect(await a.waitClosed(8_000)).toBe(true);
      const b = await f.login();
      expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
      expect(await value(b, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).toBe("0");
    });
  });

  test("query_timeout ends a pinned A in the middle of a long query: B sees none of A's temp table", async () => {
    await withPgbun(pg, { pgbun: tx(1, { query_timeout: 1 }) }, async (f) => {
      const a = await f.login();
      await ok(a, "CREATE TEMP TABLE leak_t (x int)");
      await ok(a, "INSERT INTO leak_t VALUES (42)");
      a.send(msg.query("SELECT pg_sleep(10)"));
      expect(await a.waitClosed(8_000)).toBe(true);
      const b = await f.login();
      expect(await errorCodes(b, "SELECT x FROM leak_t")).toEqual(["42P01"]);
      expect((await b.query("SELECT 1")).status).toBe("I");
    });
  });
});

describe("the reset is only for servers that need it; when it cannot clean, the server is closed", () => {
  test("a plain client that leaves cleanly hands its server on as it is: same backend, no reset", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const pidA = await backendPid(a);
      await ok(a, "SELECT 1");
      await a.close();
      const b = await f.login();
      expect(await backendPid(b)).toBe(pidA);
      await Bun.sleep(200);
      expect(f.pb.logs()).not.toContain(RESET_LOG);
    });
  });

  test("a pinned client's server is reset with DISCARD ALL (logged) and reused", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const { a, pidA } = await makeState(f, STATES[1]!);
      await settled(f);
      await a.close();
      await expectLog(f.pb, RESET_LOG);
      const b = await f.login();
      expect(await backendPid(b)).toBe(pidA);
      await STATES[1]!.gone(b);
    });
  });

  test("a pinned client that leaves while pgbun's own state check still runs (right after a query, as pgbench -C does): the server is reset and reused once the check is done, not closed", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      await ok(a, "LISTEN leak_ch");
      const pidA = await backendPid(a);
      // A has its answer before pgbun's state check after that transaction is answered: A leaves in between
      await ok(a, "SELECT 1");
      a.send(msg.terminate());
      await a.close();
      const b = await f.login();
      expect(await backendPid(b)).toBe(pidA);
      await STATES[2]!.gone(b);
    });
  });

  for (const state of STATES) {
    test(`${state.name} as A's last statement, A leaving while pgbun's check of it still runs: B sees none of it`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        for (const sql of state.make.slice(0, -1)) expect((await a.query(sql)).errors).toEqual([]);
        // the last statement's answer reaches A before pgbun's check of it is answered: A leaves in between
        expect((await a.query(state.make[state.make.length - 1]!)).errors).toEqual([]);
        a.send(msg.terminate());
        await a.close();
        const b = await f.login();
        await state.gone(b);
        expect(await value(b, "SELECT current_user::text")).toBe("postgres");
      });
    });
  }

  /** Resets that cannot clean a pinned server: it must be closed, and B gets a fresh one without A's state. */
  const CANNOT_RESET: Array<{ name: string; reset: string; state: LeftState }> = [
    { name: 'server_reset_query = "" (reset disabled)', reset: "", state: STATES[0]! },
    { name: "a server_reset_query that fails", reset: "SELECT no_such_function_here()", state: STATES[0]! },
    // a reset that undoes nothing: the check after it finds what is left
    ...STATES.map((state) => ({ name: `a server_reset_query that does not undo ${state.name}`, reset: "SELECT 1", state })),
  ];
  for (const { name, reset, state } of CANNOT_RESET) {
    test(`${name}: the server a pinned client left is closed, B gets a fresh one`, async () => {
      await withPgbun(pg, { pgbun: tx(1, { server_reset_query: reset }) }, async (f) => {
        const { a, pidA } = await makeState(f, state);
        await settled(f);
        await a.close();
        const b = await f.login();
        expect(await backendPid(b)).not.toBe(pidA);
        await state.gone(b);
      });
    });
  }
});
