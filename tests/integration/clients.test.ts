// Integration: real client libraries and tools (pg, postgres.js, Bun.sql, psql) through pgbun in session and
// transaction mode: simple/extended/named queries, errors and recovery, notices, COPY, transaction visibility.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { SQL } from "bun";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client, ClientConfig } from "pg";
import postgres from "postgres";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { findBinary, pgConnect, rejection, runClientProgram, usePostgres, type ProgramResult } from "../harness/fixtures.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(30_000);

type Mode = "session" | "transaction";
/** The fields of pg's notice event that the tests read. */
interface Notice {
  severity?: string;
  code?: string;
  message?: string;
}
const MODES: Mode[] = ["session", "transaction"];

const bouncers = {} as Record<Mode, TestPgbun>;
let scratch: string;
const PSQL = findBinary("psql");

const pg = usePostgres(
  async (db) => {
    await db.psql(
      `CREATE TABLE items (id serial PRIMARY KEY, tag text NOT NULL, n int NOT NULL, payload text);
       CREATE TABLE copy_target (n int NOT NULL, label text NOT NULL, tag text NOT NULL)`,
      "app",
    );
    for (const mode of MODES) {
      bouncers[mode] = await startPgbun({ config: { pgbun: { pool_mode: mode, default_pool_size: 4 } }, pg: db });
    }
    scratch = mkdtempSync(join(tmpdir(), "pgbun-clients-"));
  },
  async () => {
    for (const mode of MODES) await bouncers[mode]?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  },
);

/** A connected node-postgres client through the pgbun of `mode`, ended by the caller. */
function pgClient(mode: Mode, extra: ClientConfig = {}): Promise<Client> {
  return pgConnect(bouncers[mode], extra, { ignoreErrors: false });
}

/** Runs `fn` with a fresh pg client, always ending it. */
async function withClient<T>(mode: Mode, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await pgClient(mode);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Count of rows with this tag, read straight from PostgreSQL (not through pgbun). */
async function directCount(table: string, tag: string): Promise<number> {
  return Number(await pg.psql(`SELECT count(*) FROM ${table} WHERE tag = '${tag}'`, "app"));
}

/** Runs psql against pgbun (`-X -q -At`, ON_ERROR_STOP), with `args` appended and optional stdin. */
function psql(mode: Mode, args: string[], stdin?: string): Promise<ProgramResult> {
  const b = bouncers[mode];
  const argv = [PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", b.host, "-p", String(b.port), "-U", pg.superuser, "-d", "app", ...args];
  return runClientProgram(pg, argv, { stdin });
}

for (const mode of MODES) {
  describe(`${mode} mode`, () => {
    // ---- node-postgres ----

    test("pg simple queries return their rows, including every result of a multi-statement query", async () => {
      await withClient(mode, async (c) => {
        const r = await c.query("SELECT 1 AS one, 'two'::text AS two, NULL::int AS nothing");
        expect(r.rows).toEqual([{ one: 1, two: "two", nothing: null }]);
        const many = await c.query("SELECT generate_series(1, 500) AS n");
        expect(many.rowCount).toBe(500);
        expect(many.rows.at(-1)).toEqual({ n: 500 });
        const multi = (await c.query("SELECT 'a' AS x; SELECT 'b' AS y, 2 AS z")) as unknown as Array<{ rows: unknown[] }>;
        expect(Array.isArray(multi)).toBe(true);
        expect(multi.map((m) => m.rows)).toEqual([[{ x: "a" }], [{ y: "b", z: 2 }]]);
      });
    });

    test("pg extended (parameterized) queries bind their values and return the right rows", async () => {
      await withClient(mode, async (c) => {
        const sum = await c.query("SELECT $1::int + $2::int AS sum, $3::text AS label, $4::int IS NULL AS isnull", [2, 40, "héllo ✓", null]);
        expect(sum.rows).toEqual([{ sum: 42, label: "héllo ✓", isnull: true }]);
        const tag = `pg-ext-${mode}`;
        for (let i = 1; i <= 20; i++) await c.query("INSERT INTO items (tag, n, payload) VALUES ($1, $2, $3)", [tag, i, `p${i}`]);
        const back = await c.query("SELECT n, payload FROM items WHERE tag = $1 AND n > $2 ORDER BY n", [tag, 15]);
        expect(back.rows).toEqual([16, 17, 18, 19, 20].map((n) => ({ n, payload: `p${n}` })));
        expect(await directCount("items", tag)).toBe(20);
      });
    });

    test("pipelined extended queries on one connection (postgres.js, max 1) come back in order", async () => {
      // postgres.js writes queries without waiting for earlier answers: several Parse/Bind/Execute/Sync in flight
      const sql = postgres(bouncers[mode].url(), { max: 1, prepare: mode === "session", onnotice: () => undefined, connect_timeout: 10 });
      try {
        const pending = Array.from({ length: 100 }, (_, i) => sql`SELECT ${i}::int AS i, repeat('x', ${i}::int) AS pad, pg_backend_pid() AS pid`);
        const results = await Promise.all(pending);
        results.forEach((rows, i) => expect(rows[0]).toMatchObject({ i, pad: "x".repeat(i) }));
        // one in the middle fails: the others before and after it still get their own answers
        const mixed = await Promise.allSettled(
          Array.from({ length: 30 }, (_, i) => (i === 15 ? sql`SELECT 1 / ${0}::int AS i` : sql`SELECT ${i}::int AS i`)),
        );
        mixed.forEach((r, i) => {
          if (i === 15) expect(r.status === "rejected" && (r.reason as { code?: string }).code).toBe("22012");
          else expect(r.status === "fulfilled" && r.value[0]!.i).toBe(i);
        });
        const [after] = await sql`SELECT 'after' AS v`;
        expect(after!.v).toBe("after");
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

    if (mode === "session") {
      test("pg named statements are parsed once and re-executed on the same server", async () => {
        await withClient(mode, async (c) => {
          const stmt = { name: "add_two", text: "SELECT $1::int + $2::int AS s" };
          expect((await c.query({ ...stmt, values: [1, 2] })).rows).toEqual([{ s: 3 }]);
          expect((await c.query({ ...stmt, values: [10, 20] })).rows).toEqual([{ s: 30 }]);
          expect((await c.query({ ...stmt, values: [-5, 5] })).rows).toEqual([{ s: 0 }]);
          const prepared = await c.query("SELECT name, statement FROM pg_prepared_statements WHERE name = 'add_two'");
          expect(prepared.rows).toEqual([{ name: "add_two", statement: stmt.text }]);
          const other = { name: "tag_count", text: "SELECT count(*)::int AS c FROM items WHERE tag = $1" };
          expect((await c.query({ ...other, values: ["no-such-tag"] })).rows).toEqual([{ c: 0 }]);
          expect((await c.query({ ...stmt, values: [7, 8] })).rows).toEqual([{ s: 15 }]);
        });
      });
    }

    // ---- postgres.js ----

    test(`postgres.js (${mode === "transaction" ? "prepare: false" : "default, prepared"}) runs queries and transactions`, async () => {
      const b = bouncers[mode];
      const sql = postgres(b.url(), { max: 3, prepare: mode === "session", onnotice: () => undefined, connect_timeout: 10 });
      try {
        const [row] = await sql`SELECT ${20}::int + ${22}::int AS sum, ${"text ✓"}::text AS t`;
        expect(row).toEqual({ sum: 42, t: "text ✓" });
        // the same query text again (with prepare on, the statement is reused)
        const [again] = await sql`SELECT ${1}::int + ${2}::int AS sum, ${"again"}::text AS t`;
        expect(again).toEqual({ sum: 3, t: "again" });
        const tag = `pgjs-${mode}`;
        await sql.begin(async (tx) => {
          for (let i = 1; i <= 5; i++) await tx`INSERT INTO items (tag, n) VALUES (${tag}, ${i})`;
          const [inside] = await tx`SELECT count(*)::int AS c FROM items WHERE tag = ${tag}`;
          expect(inside!.c).toBe(5);
        });
        const concurrent = await Promise.all(Array.from({ length: 12 }, (_, i) => sql`SELECT ${i}::int AS i`));
        concurrent.forEach((rows, i) => expect(rows[0]!.i).toBe(i));
        const [after] = await sql`SELECT count(*)::int AS c, sum(n)::int AS s FROM items WHERE tag = ${tag}`;
        expect(after).toEqual({ c: 5, s: 15 });
        const err = await sql`SELECT 1 / ${0}::int`.then(
          () => null,
          (e: { code?: string }) => e,
        );
        expect(err?.code).toBe("22012");
        const [ok] = await sql`SELECT 'still fine' AS s`;
        expect(ok!.s).toBe("still fine");
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

    // ---- Bun.sql ----

    test(`Bun.sql (${mode === "transaction" ? "prepare: false" : "default"}) runs queries and transactions`, async () => {
      const b = bouncers[mode];
      const sql = new SQL(b.url(), { max: 3, prepare: mode === "session", connectionTimeout: 10 });
      try {
        const [row] = await sql`SELECT ${20}::int + ${22}::int AS sum, ${"bun ✓"}::text AS t`;
        expect(row).toEqual({ sum: 42, t: "bun ✓" });
        const tag = `bunsql-${mode}`;
        await sql.begin(async (tx) => {
          for (let i = 1; i <= 4; i++) await tx`INSERT INTO items (tag, n) VALUES (${tag}, ${i})`;
          const [inside] = await tx`SELECT count(*)::int AS c FROM items WHERE tag = ${tag}`;
          expect(inside.c).toBe(4);
        });
        const concurrent = await Promise.all(Array.from({ length: 12 }, (_, i) => sql`SELECT ${i}::int AS i`));
        concurrent.forEach((rows, i) => expect(rows[0].i).toBe(i));
        const [after] = await sql`SELECT count(*)::int AS c, sum(n)::int AS s FROM items WHERE tag = ${tag}`;
        expect(after).toEqual({ c: 4, s: 10 });
        const simple = await sql.unsafe("SELECT 7 AS seven");
        expect(simple[0].seven).toBe(7);
        const err = await sql`SELECT * FROM no_such_table_bunsql`.then(
          () => null,
          (e: { errno?: string; code?: string }) => e,
        );
        expect(err?.errno).toBe("42P01");
        const [ok] = await sql`SELECT 'still fine' AS s`;
        expect(ok.s).toBe("still fine");
      } finally {
        await sql.close({ timeout: 5 });
      }
    });

    // ---- psql ----

    test("psql -c runs a query and a multi-statement -c returns every result", async () => {
      const one = await psql(mode, ["-c", "SELECT 40 + 2"]);
      expect(one.stderr).toBe("");
      expect(one.code).toBe(0);
      expect(one.stdout).toBe("42\n");
      const tag = `psql-multi-${mode}`;
      const multi = await psql(mode, [
        "-c",
        `INSERT INTO items (tag, n) VALUES ('${tag}', 1); INSERT INTO items (tag, n) VALUES ('${tag}', 2); SELECT count(*) FROM items WHERE tag = '${tag}'; SELECT 'done'`,
      ]);
      expect(multi.stderr).toBe("");
      expect(multi.code).toBe(0);
      expect(multi.stdout).toBe("2\ndone\n");
      expect(await directCount("items", tag)).toBe(2);
    });

    test("psql with several -c in one session keeps an explicit transaction across them", async () => {
      const tag = `psql-tx-${mode}`;
      const r = await psql(mode, [
        "-c",
        "BEGIN",
        "-c",
        `INSERT INTO items (tag, n) VALUES ('${tag}', 1)`,
        "-c",
        "SELECT pg_backend_pid()",
        "-c",
        `INSERT INTO items (tag, n) VALUES ('${tag}', 2)`,
        "-c",
        "SELECT pg_backend_pid()",
        "-c",
        "COMMIT",
        "-c",
        `SELECT count(*) FROM items WHERE tag = '${tag}'`,
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const [pid1, pid2, count] = r.stdout.trim().split("\n");
      expect(pid1).toBe(pid2!); // one server for the whole transaction
      expect(count).toBe("2");
      expect(await directCount("items", tag)).toBe(2);
    });

    test("psql \\copy FROM a file and TO a file move every row", async () => {
      const tag = `copy-file-${mode}`;
      const rows = 20_000;
      const input = join(scratch, `in-${mode}.csv`);
      const output = join(scratch, `out-${mode}.csv`);
      let csv = "";
      for (let i = 1; i <= rows; i++) csv += `${i},label ${i} ${"z".repeat(i % 50)},${tag}\n`; // nothing CSV would quote: the dump must match byte for byte
      writeFileSync(input, csv);
      const load = await psql(mode, ["-c", `\\copy copy_target (n, label, tag) FROM '${input}' WITH (FORMAT csv)`]);
      expect(load.stderr).toBe("");
      expect(load.code).toBe(0);
      expect(await directCount("copy_target", tag)).toBe(rows);
      expect(await pg.psql(`SELECT sum(n) FROM copy_target WHERE tag = '${tag}'`, "app")).toBe(String((rows * (rows + 1)) / 2));

      const dump = await psql(mode, [
        "-c",
        `\\copy (SELECT n, label, tag FROM copy_target WHERE tag = '${tag}' ORDER BY n) TO '${output}' WITH (FORMAT csv)`,
        "-c",
        "SELECT 'after copy'",
      ]);
      expect(dump.stderr).toBe("");
      expect(dump.code).toBe(0);
      expect(dump.stdout).toBe("after copy\n");
      expect(readFileSync(output, "utf8")).toBe(csv);
    });

    test("psql COPY FROM STDIN and COPY TO STDOUT stream the rows", async () => {
      const tag = `copy-stdio-${mode}`;
      const rows = 5_000;
      let text = "";
      for (let i = 1; i <= rows; i++) text += `${i}\tline ${i}\t${tag}\n`;
      const load = await psql(mode, ["-c", "COPY copy_target (n, label, tag) FROM STDIN"], text);
      expect(load.stderr).toBe("");
      expect(load.code).toBe(0);
      expect(await directCount("copy_target", tag)).toBe(rows);
      const dump = await psql(mode, ["-c", `COPY (SELECT n, label, tag FROM copy_target WHERE tag = '${tag}' ORDER BY n) TO STDOUT`, "-c", "SELECT 'after'"]);
      expect(dump.stderr).toBe("");
      expect(dump.code).toBe(0);
      expect(dump.stdout).toBe(`${text}after\n`);
    });

    test("a failing psql statement reports its error and SQLSTATE and exits non-zero", async () => {
      const r = await psql(mode, ["-v", "VERBOSITY=verbose", "-c", "SELECT * FROM no_such_table"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("42P01");
      expect(r.stderr).toContain('relation "no_such_table" does not exist');
    });

    // ---- raw pg COPY ----

    test("pg COPY TO STDOUT completes with its row count and the session continues", async () => {
      await withClient(mode, async (c) => {
        const r = await c.query("COPY (SELECT g, md5(g::text) FROM generate_series(1, 3000) g) TO STDOUT");
        expect(r.command).toBe("COPY");
        expect(r.rowCount).toBe(3000);
        expect((await c.query("SELECT 'next' AS v")).rows).toEqual([{ v: "next" }]);
      });
    });

    test("pg COPY FROM STDIN without a stream is refused by CopyFail (57014) and the session continues", async () => {
      await withClient(mode, async (c) => {
        const err = await rejection(c.query("COPY copy_target FROM STDIN"));
        expect(err.code).toBe("57014");
        expect(err.message).toContain("No source stream defined");
        expect((await c.query("SELECT 'next' AS v")).rows).toEqual([{ v: "next" }]);
        // and inside a transaction: the CopyFail aborts it, ROLLBACK recovers
        await c.query("BEGIN");
        expect((await rejection(c.query("COPY copy_target FROM STDIN"))).code).toBe("57014");
        expect((await rejection(c.query("SELECT 1"))).code).toBe("25P02");
        await c.query("ROLLBACK");
        expect((await c.query("SELECT 'recovered' AS v")).rows).toEqual([{ v: "recovered" }]);
      });
    });

    // ---- errors ----

    test("errors outside a transaction carry their SQLSTATE and the session continues", async () => {
      await withClient(mode, async (c) => {
        expect((await rejection(c.query("SELECT 1/0"))).code).toBe("22012");
        expect((await c.query("SELECT 1 AS v")).rows).toEqual([{ v: 1 }]);
        expect((await rejection(c.query("SELECT * FROM no_such_table"))).code).toBe("42P01");
        expect((await rejection(c.query("SELEC 1"))).code).toBe("42601");
        // extended protocol: errors at parse, bind and execute
        expect((await rejection(c.query("SELEC $1", [1]))).code).toBe("42601");
        expect((await rejection(c.query("SELECT $1::int", ["not a number"]))).code).toBe("22P02");
        expect((await rejection(c.query("SELECT 10 / $1::int", [0]))).code).toBe("22012");
        expect((await c.query("SELECT $1::text AS v", ["alive"])).rows).toEqual([{ v: "alive" }]);
        // a server-side error with a custom SQLSTATE
        const custom = await rejection(c.query("DO $$BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = 'P0042'; END$$"));
        expect(custom.code).toBe("P0042");
        expect(custom.message).toBe("custom failure");
        expect((await c.query("SELECT 2 AS v")).rows).toEqual([{ v: 2 }]);
      });
    });

    test("an error inside a transaction aborts it (25P02) until ROLLBACK, which discards its writes", async () => {
      const tag = `failed-tx-${mode}`;
      await withClient(mode, async (c) => {
        await c.query("BEGIN");
        await c.query("INSERT INTO items (tag, n) VALUES ($1, 1)", [tag]);
        expect((await rejection(c.query("SELECT 1/0"))).code).toBe("22012");
        expect((await rejection(c.query("SELECT 1"))).code).toBe("25P02");
        expect((await rejection(c.query("SELECT $1::int", [1]))).code).toBe("25P02");
        const rb = await c.query("ROLLBACK");
        expect(rb.command).toBe("ROLLBACK");
        expect((await c.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 0 }]);
        // the same with an extended-protocol error and a COMMIT (which turns into ROLLBACK)
        await c.query("BEGIN");
        await c.query("INSERT INTO items (tag, n) VALUES ($1, 2)", [tag]);
        expect((await rejection(c.query("SELECT 1 / $1::int", [0]))).code).toBe("22012");
        const commit = await c.query("COMMIT");
        expect(commit.command).toBe("ROLLBACK");
        expect((await c.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 0 }]);
      });
      expect(await directCount("items", tag)).toBe(0);
    });

    // ---- notices ----

    test("RAISE NOTICE reaches the pg client's notice event, in and out of a transaction", async () => {
      await withClient(mode, async (c) => {
        const notices: Notice[] = [];
        c.on("notice", (n) => notices.push(n));
        await c.query("DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$");
        await c.query("BEGIN");
        await c.query("DO $$BEGIN RAISE NOTICE 'in tx'; RAISE WARNING 'careful'; END$$");
        await c.query("COMMIT");
        expect(notices.map((n) => [n.severity, n.message])).toEqual([
          ["NOTICE", "hello 42"],
          ["NOTICE", "in tx"],
          ["WARNING", "careful"],
        ]);
        expect(notices[0]!.code).toBe("00000");
      });
    });

    // ---- transactions ----

    test("uncommitted rows are visible to their own transaction only, committed rows to everyone", async () => {
      const tag = `visibility-${mode}`;
      const a = await pgClient(mode);
      const b = await pgClient(mode);
      try {
        await a.query("BEGIN");
        const pid = (await a.query("SELECT pg_backend_pid() AS p")).rows[0].p as number;
        await a.query("INSERT INTO items (tag, n) VALUES ($1, 1), ($1, 2)", [tag]);
        await a.query("SET LOCAL work_mem = '1234kB'");
        expect((await a.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 2 }]);
        expect((await b.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 0 }]);
        expect(await directCount("items", tag)).toBe(0);
        const inside = await a.query("SELECT pg_backend_pid() AS p, current_setting('work_mem') AS wm");
        expect(inside.rows).toEqual([{ p: pid, wm: "1234kB" }]);
        await a.query("COMMIT");
        expect((await b.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 2 }]);
        expect(await directCount("items", tag)).toBe(2);

        await b.query("BEGIN");
        await b.query("DELETE FROM items WHERE tag = $1", [tag]);
        expect((await b.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 0 }]);
        expect((await a.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 2 }]);
        await b.query("ROLLBACK");
        expect((await a.query("SELECT count(*)::int AS c FROM items WHERE tag = $1", [tag])).rows).toEqual([{ c: 2 }]);
      } finally {
        await a.end().catch(() => undefined);
        await b.end().catch(() => undefined);
      }
    });
  });
}
