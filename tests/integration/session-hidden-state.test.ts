// Integration: session state created out of the texts' sight (issue 9 item 6). A function or DO block that runs
// SET ROLE, takes an advisory lock, creates a temp table or LISTENs, and a temporary function, are not seen by
// the default mode's screening, and the next client of that server shares the state (asserted as it is: the
// README's "What transaction mode cannot see"); session_state = "verify" asks the server after every transaction
// not proven harmless and pins.
// A fast-path FunctionCall has no text at all: it is checked in every mode.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { pgConnect, tx, usePostgres, waitFor, withPgbun, type PgbunFixture, queryOk as ok } from "../harness/fixtures.ts";
import { errorFields, extendedQuery, msg, readyWithin, rows, type BackendMessage, type WireClient } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(60_000);

// made directly on PostgreSQL: pgbun never sees these texts
const pg = usePostgres((db) =>
  db.psql(
    `CREATE ROLE hidden_role NOLOGIN;
     CREATE FUNCTION become_hidden() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'SET ROLE hidden_role'; END $$;
     CREATE FUNCTION make_scratch() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'CREATE TEMP TABLE scratch_rows (x int)'; END $$;
     CREATE FUNCTION hear(ch text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'LISTEN ' || quote_ident(ch); END $$;
     CREATE TABLE accounts (aid int PRIMARY KEY, abalance int NOT NULL);
     INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 10) g`,
    "app",
  ),
);

interface HiddenCase {
  name: string;
  /** A's statement: its text shows nothing of the state it creates. */
  create: string;
  /** What B asks the server it lands on, and the answer when it lands on A's server with the state. */
  probe: string;
  leaked: Array<Array<string | null>>;
  /** B's answer on a server without A's state. */
  clean: Array<Array<string | null>>;
  /** A undoes the state (its text is not screened either: verify mode's check unpins). */
  release: string;
}

const CASES: HiddenCase[] = [
  {
    name: "a function running EXECUTE 'SET ROLE hidden_role'",
    create: "SELECT become_hidden()",
    probe: "SELECT current_user",
    leaked: [["hidden_role"]],
    clean: [["postgres"]],
    release: "RESET ROLE",
  },
  {
    name: "a DO block taking pg_advisory_lock(7) through EXECUTE format(...)",
    create: "DO $$ BEGIN EXECUTE format('SELECT pg_%s(7)', 'advisory_lock'); END $$",
    probe: "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    leaked: [["1"]],
    clean: [["0"]],
    release: "DO $$ BEGIN EXECUTE format('SELECT pg_%s(7)', 'advisory_unlock'); END $$",
  },
  {
    name: "a function creating a temp table",
    create: "SELECT make_scratch()",
    probe: "SELECT to_regclass('scratch_rows') IS NOT NULL",
    leaked: [["t"]],
    clean: [["f"]],
    release: "DROP TABLE scratch_rows",
  },
  {
    name: "a function running EXECUTE 'LISTEN ...'",
    create: "SELECT hear('hidden_ch')",
    probe: "SELECT count(*) FROM pg_listening_channels()",
    leaked: [["1"]],
    clean: [["0"]],
    release: "UNLISTEN *",
  },
  {
    name: "CREATE FUNCTION pg_temp.own_fn() (a temporary function: no TEMP keyword where the screen looks)",
    create: "CREATE FUNCTION pg_temp.own_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    probe: "SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()",
    leaked: [["1"]],
    clean: [["0"]],
    release: "DROP FUNCTION pg_temp.own_fn()",
  },
];

/** How many state checks pgbun ran so far (a debug line each). */
function checks(f: PgbunFixture): number {
  return f.pb.logs().split("\n").filter((l) => l.includes("checking session state")).length;
}

describe('session_state = "verify" (transaction mode, pool size 1): state made out of the texts\' sight pins', () => {
  for (const c of CASES) {
    test(`${c.name}: A keeps its server and its state; B waits until A undoes it, then sees none of it`, async () => {
      await withPgbun(pg, { pgbun: tx(1, { session_state: "verify" }) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        await ok(a, c.create);
        const pidA = (await ok(a, "SELECT pg_backend_pid()"))[0]![0];
        expect(await ok(a, c.probe)).toEqual(c.leaked);
        b.send(msg.query(c.probe));
        expect(await readyWithin(b, 800)).toBe("timeout");
        expect(await ok(a, c.probe)).toEqual(c.leaked);
        expect((await ok(a, "SELECT pg_backend_pid()"))[0]![0]).toBe(pidA);
        await ok(a, c.release);
        const got = await b.readUntilReady();
        expect(got.filter((m) => m.type === "E").map((m) => errorFields(m).C)).toEqual([]);
        expect(rows(got)).toEqual(c.clean);
      });
    });
  }

  test("a function LISTENing: the NOTIFY sent while A is idle between transactions reaches A", async () => {
    await withPgbun(pg, { pgbun: tx(1, { session_state: "verify" }) }, async (f) => {
      const a = await f.login();
      await ok(a, "SELECT hear('hidden_notify')");
      await ok(a, "SELECT 1");
      await pg.psql("NOTIFY hidden_notify, 'seen'", "app");
      const got = await a.readUntil((m) => m.type === "A", 5_000);
      const n = got[got.length - 1]!;
      expect(n.body.subarray(4).toString("latin1").split("\u0000").slice(0, 2)).toEqual(["hidden_notify", "seen"]);
    });
  });

  test("postgres.js with cached statements (Bind only after the first run): B on the other server never runs as hidden_role", async () => {
    await withPgbun(pg, { pgbun: tx(2, { session_state: "verify" }) }, async (f) => {
      const sql = postgres(f.pb.url(), { max: 1, prepare: true, onnotice: () => undefined, connect_timeout: 10 });
      const b = await pgConnect(f.pb);
      try {
        for (let round = 0; round < 2; round++) {
          await sql`select become_hidden()`;
          expect((await sql`select current_user as u`)[0]!.u).toBe("hidden_role");
          for (let i = 0; i < 3; i++) expect((await b.query("SELECT current_user AS u")).rows[0].u).toBe("postgres");
          await sql`reset role`;
          expect((await sql`select current_user as u`)[0]!.u).toBe("postgres");
        }
      } finally {
        await sql.end({ timeout: 1 });
        await b.end().catch(() => undefined);
      }
    });
  });

  test("transactions proven harmless (BEGIN, SHOW, SELECT 1, COMMIT; simple or extended) are not checked; pgbench's statements are, each time", async () => {
    await withPgbun(pg, { pgbun: tx(1, { session_state: "verify" }) }, async (f) => {
      const a = await f.login();
      for (let i = 0; i < 5; i++) {
        await ok(a, "SELECT 1");
        await ok(a, "BEGIN; SHOW search_path; SELECT 'x' AS y, NULL; COMMIT");
        a.send(extendedQuery("SELECT 1"));
        expect(rows(await a.readUntilReady())).toEqual([["1"]]);
      }
      expect(checks(f)).toBe(0);
      for (let i = 0; i < 3; i++) {
        await ok(a, "SELECT abalance FROM accounts WHERE aid = 1");
        a.send(extendedQuery("UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", ["1", "2"]));
        expect((await a.readUntilReady()).filter((m) => m.type === "E")).toEqual([]);
      }
      await waitFor("a check per unproven transaction", () => checks(f) === 6);
    });
  });
});

describe('the default session_state = "pin" does not see inside functions (documented in the README): the next client shares that state', () => {
  for (const c of CASES) {
    test(`${c.name}: B is served at once on A's server and sees A's state`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        await ok(a, c.create);
        const pidA = (await ok(a, "SELECT pg_backend_pid()"))[0]![0];
        expect(await ok(b, "SELECT pg_backend_pid()")).toEqual([[pidA!]]);
        expect(await ok(b, c.probe)).toEqual(c.leaked);
        expect(f.pb.logs()).not.toContain("client pinned to its server");
      });
    });
  }

  test("pgbench's statements cost no check in the default mode", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      for (let i = 0; i < 3; i++) {
        await ok(a, "SELECT abalance FROM accounts WHERE aid = 1");
        a.send(extendedQuery("UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", ["1", "2"]));
        expect((await a.readUntilReady()).filter((m) => m.type === "E")).toEqual([]);
      }
      expect(checks(f)).toBe(0);
    });
  });
});

/** FunctionCall (fast path) of pg_advisory_lock(bigint), OID 2880, with a binary int8 argument. */
function functionCallAdvisoryLock(key: bigint): Buffer {
  const arg = Buffer.alloc(8);
  arg.writeBigInt64BE(key);
  const body = Buffer.alloc(4 + 2 + 2 + 2 + 4 + 8 + 2);
  let o = body.writeInt32BE(2880, 0);
  o = body.writeInt16BE(1, o); // one format code: binary
  o = body.writeInt16BE(1, o);
  o = body.writeInt16BE(1, o); // one argument
  o = body.writeInt32BE(8, o);
  o += arg.copy(body, o);
  body.writeInt16BE(0, o); // result as text
  const head = Buffer.alloc(5);
  head[0] = "F".charCodeAt(0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

describe("a fast-path FunctionCall has no text to screen: it is checked in every mode (pool size 1)", () => {
  for (const mode of ["pin", "verify"]) {
    test(`session_state = "${mode}": FunctionCall pg_advisory_lock(11) pins A; B waits until A unlocks`, async () => {
      await withPgbun(pg, { pgbun: tx(1, { session_state: mode }) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        a.send(functionCallAdvisoryLock(11n));
        const got: BackendMessage[] = await a.readUntilReady();
        expect(got.map((m) => m.type)).toEqual(["V", "Z"]);
        b.send(msg.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"));
        expect(await readyWithin(b, 800)).toBe("timeout");
        await ok(a, "SELECT pg_advisory_unlock(11)");
        expect(rows(await b.readUntilReady())).toEqual([["0"]]);
      });
    });
  }
});
