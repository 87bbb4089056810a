// Integration: prepared statements through pgbun in transaction and statement mode: pgbench -M prepared, many
// drivers' named statements on a small pool, the protocol pitfalls of REFERENCE.md §2 (Describe without Parse,
// Close, failed Parse, name reuse, pipelines, LRU eviction; DDL is prepared-ddl.test.ts), SQL-level PREPARE/DEALLOCATE, DISCARD ALL, and
// statement mode refusing transaction blocks.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { SQL } from "bun";
import postgres from "postgres";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { backendPid, expectLog, initPgbench, pgConnect, runPgbench, tx, usePostgres, withPgbun } from "../harness/fixtures.ts";
import { commandTag, describe as show, errorFields, msg, readyStatus, readyWithin, rows, sqlState, types, WireClient, type BackendMessage } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(30_000);

const pg = usePostgres(async (db) => {
  await initPgbench(db, 25_000);
  await db.psql(
    `CREATE TABLE stmt_events (id serial PRIMARY KEY, tag text NOT NULL);
     CREATE TABLE ddl_t (a int NOT NULL);
     INSERT INTO ddl_t VALUES (1)`,
    "app",
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

/** Bind (text params) + Execute + Sync of a named statement, read to ReadyForQuery. */
async function runNamed(c: WireClient, name: string, params: Array<string | null> = []): Promise<BackendMessage[]> {
  c.send(Buffer.concat([msg.bind("", name, params), msg.execute(), msg.sync()]));
  return c.readUntilReady(10_000);
}

/** SQLSTATEs of the ErrorResponses among `messages`. */
function codes(messages: BackendMessage[]): string[] {
  return messages.filter((m) => m.type === "E").map(sqlState);
}

// ---------------------------------------------------------------------------------------------------------------

describe("pgbench -M prepared (-c 8 -j 2 -T 3, default_pool_size 3)", () => {
  const runs: Array<{ mode: "transaction" | "statement"; script: string[]; label: string }> = [
    { mode: "transaction", script: [], label: "TPC-B" },
    { mode: "transaction", script: ["-S"], label: "-S (select-only)" },
    // TPC-B uses BEGIN, which statement mode refuses
    { mode: "statement", script: ["-S"], label: "-S (select-only)" },
  ];
  for (const run of runs) {
    test(`${run.mode} mode: pgbench ${run.label} -M prepared finishes with 0 failed transactions`, async () => {
      const pb = await startPgbun({ config: { pgbun: { pool_mode: run.mode, default_pool_size: 3 } }, pg });
      try {
        const r = await runPgbench(pg, pb, ["-M", "prepared", "-c", "8", "-j", "2", "-T", "3", ...run.script], 25_000);
        if (r.code !== 0) throw new Error(`pgbench exited with ${r.code}:\n${r.output}\n--- pgbun logs ---\n${pb.logs().slice(-4000)}`);
        expect(r.output).toContain("number of failed transactions: 0 ");
        const processed = /number of transactions actually processed: (\d+)/.exec(r.output);
        expect(processed).not.toBeNull();
        expect(Number(processed![1])).toBeGreaterThan(0);
        expect(r.output).not.toMatch(/error|aborted/i);
      } finally {
        await pb.stop();
      }
    });
  }
});

describe("50 concurrent driver clients with prepared statements on default_pool_size 3 (transaction mode)", () => {
  const CLIENTS = 50;
  const ROUNDS = 5;
  let pb: TestPgbun;
  beforeAll(async () => {
    pb = await startPgbun({ config: { pgbun: { pool_mode: "transaction", default_pool_size: 3, max_client_conn: 200 } }, pg });
  });
  afterAll(async () => {
    await pb?.stop();
  });

  test("node-postgres named statements ({ name, text, values }) return each client's own values in every round", async () => {
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const c = await pgConnect(pb, {}, { ignoreErrors: false });
        try {
          const seen: string[] = [];
          for (let round = 1; round <= ROUNDS; round++) {
            const a = await c.query({ name: "mul", text: "SELECT $1::int * $2::int AS v, $3::text AS who", values: [i, round, `pg-${i}`] });
            expect(a.rows).toEqual([{ v: i * round, who: `pg-${i}` }]);
            // a second statement whose name other clients use for a different text
            const b = await c.query({ name: `per_client`, text: `SELECT $1::text || '-${i}' AS s`, values: [`r${round}`] });
            expect(b.rows).toEqual([{ s: `r${round}-${i}` }]);
            seen.push(`${a.rows[0].v}/${b.rows[0].s}`);
            await Bun.sleep(i % 5);
          }
          return seen;
        } finally {
          await c.end().catch(() => undefined);
        }
      }),
    );
    results.forEach((seen, i) => expect(seen).toEqual(Array.from({ length: ROUNDS }, (_, r) => `${i * (r + 1)}/r${r + 1}-${i}`)));
  });

  test("postgres.js with prepare: true returns each client's own values in every round", async () => {
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const sql = postgres(pb.url(), { max: 1, prepare: true, onnotice: () => undefined, connect_timeout: 10 });
        try {
          const seen: number[] = [];
          for (let round = 1; round <= ROUNDS; round++) {
            const [a] = await sql`SELECT ${i}::int * ${round}::int AS v, ${`js-${i}`}::text AS who`;
            expect(a).toEqual({ v: i * round, who: `js-${i}` });
            const [b] = await sql`SELECT count(*)::int AS n FROM generate_series(1, ${i + round}::int)`;
            expect(b!.n).toBe(i + round);
            seen.push(a!.v as number);
            await Bun.sleep(i % 5);
          }
          return seen;
        } finally {
          await sql.end({ timeout: 5 });
        }
      }),
    );
    results.forEach((seen, i) => expect(seen).toEqual(Array.from({ length: ROUNDS }, (_, r) => i * (r + 1))));
  });

  test("Bun.sql (default, prepared) returns each client's own values in every round", async () => {
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const sql = new SQL(pb.url(), { max: 1, connectionTimeout: 10 });
        try {
          const seen: number[] = [];
          for (let round = 1; round <= ROUNDS; round++) {
            const [a] = await sql`SELECT ${i}::int * ${round}::int AS v, ${`bun-${i}`}::text AS who`;
            expect(a).toEqual({ v: i * round, who: `bun-${i}` });
            const [b] = await sql`SELECT count(*)::int AS n FROM generate_series(1, ${i + round}::int)`;
            expect(b.n).toBe(i + round);
            seen.push(a.v as number);
            await Bun.sleep(i % 5);
          }
          return seen;
        } finally {
          await sql.close({ timeout: 5 });
        }
      }),
    );
    results.forEach((seen, i) => expect(seen).toEqual(Array.from({ length: ROUNDS }, (_, r) => i * (r + 1))));
  });
});

describe("protocol-level named statements: pitfalls (transaction mode)", () => {
  test("Describe (statement) of a named statement on a server other than the one it was parsed on returns ParameterDescription and RowDescription", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      a.send(Buffer.concat([msg.parse("s1", "SELECT $1::int + 1 AS next, pg_backend_pid() AS pid"), msg.bind("", "s1", ["41"]), msg.execute(), msg.sync()]));
      const first = await a.readUntilReady();
      expect(types(first)).toBe("12DCZ");
      const [next, pidParsed] = rows(first)[0]!;
      expect(next).toBe("42");
      // B takes the server s1 was prepared on and keeps it in a transaction: A must land on the other one
      expect((await b.query("BEGIN")).status).toBe("T");
      expect(await backendPid(b)).toBe(pidParsed!);
      a.send(
        Buffer.concat([msg.describe("S", "s1"), msg.parse("", "SELECT pg_backend_pid()"), msg.bind("", ""), msg.execute(), msg.sync()]),
      );
      const got = await a.readUntilReady();
      expect(show(got)).toMatch(/^t T 1 2 D\(\["\d+"\]\) C\(SELECT 1\) Z\(I\)$/);
      expect(rows(got)[0]![0]).not.toBe(pidParsed);
      // ParameterDescription: one parameter of type int4 (oid 23)
      const t = got[0]!;
      expect(t.body.readInt16BE(0)).toBe(1);
      expect(t.body.readInt32BE(2)).toBe(23);
      // RowDescription: the columns next and pid
      const rd = got[1]!;
      expect(rd.body.readInt16BE(0)).toBe(2);
      expect(rd.body.subarray(2, rd.body.indexOf(0, 2)).toString()).toBe("next");
      // and the statement runs there too
      expect(rows(await runNamed(a, "s1", ["9"]))[0]![0]).toBe("10");
      expect((await b.query("COMMIT")).status).toBe("I");
    });
  });

  test("Close of a named statement gets CloseComplete; a later Bind to the name fails with 26000 while another client with the same text keeps working", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const c = await f.login();
      const text = "SELECT $1::int * 3 AS v";
      for (const [client, value, want] of [
        [a, "2", "6"],
        [c, "5", "15"],
      ] as const) {
        client.send(Buffer.concat([msg.parse("shared", text), msg.bind("", "shared", [value]), msg.execute(), msg.sync()]));
        const got = await client.readUntilReady();
        expect(show(got)).toBe(`1 2 D(["${want}"]) C(SELECT 1) Z(I)`);
      }
      a.send(Buffer.concat([msg.close("S", "shared"), msg.sync()]));
      expect(types(await a.readUntilReady())).toBe("3Z");

      const gone = await runNamed(a, "shared", ["1"]);
      expect(types(gone)).toBe("EZ");
      expect(codes(gone)).toEqual(["26000"]);
      expect(errorFields(gone[0]!).M).toBe('prepared statement "shared" does not exist');
      expect(readyStatus(gone[1]!)).toBe("I");

      // the other client's statement of the same text is untouched
      expect(show(await runNamed(c, "shared", ["7"]))).toBe('2 D(["21"]) C(SELECT 1) Z(I)');
      // and A goes on
      expect((await a.query("SELECT 'a still here'")).rows).toEqual([["a still here"]]);
      expect(show(await runNamed(c, "shared", ["8"]))).toBe('2 D(["24"]) C(SELECT 1) Z(I)');
    });
  });

  test("a failed Parse (syntax error) followed by Close of that name and Sync gets ErrorResponse then ReadyForQuery, and the session continues", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      a.send(Buffer.concat([msg.parse("bad", "SELEC 1"), msg.close("S", "bad"), msg.sync()]));
      const got = await a.readUntilReady();
      expect(types(got)).toBe("EZ");
      expect(codes(got)).toEqual(["42601"]);
      expect(readyStatus(got[1]!)).toBe("I");
      expect(await a.readFor(300)).toEqual([]);
      // the session goes on, with the same name for a good statement
      a.send(Buffer.concat([msg.parse("bad", "SELECT 'fine'"), msg.bind("", "bad"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["fine"]) C(SELECT 1) Z(I)');
      expect((await a.query("SELECT 1")).rows).toEqual([["1"]]);
    });
  });

  test("a statement name reused after Close runs the new text (separate syncs and one pipelined write)", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      a.send(Buffer.concat([msg.parse("s1", "SELECT 'A' AS v"), msg.bind("", "s1"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["A"]) C(SELECT 1) Z(I)');
      a.send(Buffer.concat([msg.close("S", "s1"), msg.sync()]));
      expect(types(await a.readUntilReady())).toBe("3Z");
      a.send(Buffer.concat([msg.parse("s1", "SELECT 'B' AS v"), msg.bind("", "s1"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["B"]) C(SELECT 1) Z(I)');
      expect(show(await runNamed(a, "s1"))).toBe('2 D(["B"]) C(SELECT 1) Z(I)');

      // the same in one write
      a.send(
        Buffer.concat([
          msg.parse("s2", "SELECT 'C' AS v"),
          msg.bind("", "s2"),
          msg.execute(),
          msg.close("S", "s2"),
          msg.parse("s2", "SELECT 'D' AS v"),
          msg.bind("", "s2"),
          msg.execute(),
          msg.sync(),
        ]),
      );
      expect(show(await a.readUntilReady())).toBe('1 2 D(["C"]) C(SELECT 1) 3 1 2 D(["D"]) C(SELECT 1) Z(I)');
      expect(show(await runNamed(a, "s2"))).toBe('2 D(["D"]) C(SELECT 1) Z(I)');
    });
  });

  test("a client of simple Queries only (no statement state yet) that pipelines a Close behind a Query gets the CloseComplete after the Query's ReadyForQuery", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      // simple Queries only: pgbun:prepared-statements keeps nothing for this client (its fast path)
      expect((await a.query("SELECT 1")).rows).toEqual([["1"]]);
      // the first extended-protocol message arrives while a Query is still in flight: the answer pgbun owes for the
      // Close (it never reaches the server) must wait for that Query's ReadyForQuery, not jump ahead of its rows
      a.send(Buffer.concat([msg.query("SELECT pg_sleep(0.2), 'q' AS v"), msg.close("S", "never_prepared"), msg.sync()]));
      expect(types(await a.readUntilReady())).toBe("TDCZ");
      expect(types(await a.readUntilReady())).toBe("3Z");
      // two Queries in flight, then a Close and Parse/Bind/Execute/Sync: each answer in its place
      const b = await f.login();
      b.send(Buffer.concat([msg.query("SELECT pg_sleep(0.1)"), msg.query("SELECT 'second' AS v"), msg.close("S", "nope"), msg.parse("p1", "SELECT 'p' AS v"), msg.bind("", "p1"), msg.execute(), msg.sync()]));
      expect(types(await b.readUntilReady())).toBe("TDCZ");
      expect(show(await b.readUntilReady())).toBe('T D(["second"]) C(SELECT 1) Z(I)');
      expect(show(await b.readUntilReady())).toBe('3 1 2 D(["p"]) C(SELECT 1) Z(I)');
      expect(show(await runNamed(b, "p1"))).toBe('2 D(["p"]) C(SELECT 1) Z(I)');
    });
  });

  test("a Parse reusing a name that was not closed fails with 42P05 as on PostgreSQL, and the first text stays", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      a.send(Buffer.concat([msg.parse("dup", "SELECT 'first' AS v"), msg.bind("", "dup"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["first"]) C(SELECT 1) Z(I)');
      a.send(Buffer.concat([msg.parse("dup", "SELECT 'second' AS v"), msg.bind("", "dup"), msg.execute(), msg.sync()]));
      const got = await a.readUntilReady();
      expect(types(got)).toBe("EZ");
      expect(codes(got)).toEqual(["42P05"]);
      expect(errorFields(got[0]!).M).toBe('prepared statement "dup" already exists');
      expect(show(await runNamed(a, "dup"))).toBe('2 D(["first"]) C(SELECT 1) Z(I)');
    });
  });

  test("a pipeline of 20 × (named Parse, Bind, Execute) + one Sync in one write with a failing Execute in the middle: responses in order, the error before ReadyForQuery, the rest skipped", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const FAIL = 10;
      const parts: Buffer[] = [];
      for (let i = 0; i < 20; i++) {
        // volatile, so the division runs in Execute (not folded at Bind)
        const text = i === FAIL ? "SELECT 1 / g FROM generate_series(0, 0) g" : `SELECT ${i}::int AS n, $1::text AS p`;
        parts.push(msg.parse(`q${i}`, text), msg.bind("", `q${i}`, i === FAIL ? [] : [`p${i}`]), msg.execute());
      }
      parts.push(msg.sync());
      a.send(Buffer.concat(parts));
      const got = await a.readUntilReady();
      const expected: string[] = [];
      for (let i = 0; i < FAIL; i++) expected.push(`1 2 D(["${i}","p${i}"]) C(SELECT 1)`);
      expected.push("1 2 E(22012 division by zero) Z(I)");
      expect(show(got)).toBe(expected.join(" "));
      expect(await a.readFor(300)).toEqual([]);
      // the statements parsed before the error are there (prepared statements survive the failed transaction)
      expect(show(await runNamed(a, "q3", ["again"]))).toBe('2 D(["3","again"]) C(SELECT 1) Z(I)');
      expect((await a.query("SELECT 'after'")).rows).toEqual([["after"]]);
    });
  });

  test("named Parses skipped after an error in a pipeline create no statement: a later Bind to one fails with 26000, as on PostgreSQL", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      a.send(
        Buffer.concat([
          msg.parse("ok1", "SELECT 'ok1'"),
          msg.bind("", "ok1"),
          msg.execute(),
          msg.parse("", "SELECT 1 / g FROM generate_series(0, 0) g"),
          msg.bind("", ""),
          msg.execute(),
          msg.parse("skipped1", "SELECT 'skipped1'"),
          msg.bind("", "skipped1"),
          msg.execute(),
          msg.sync(),
        ]),
      );
      expect(show(await a.readUntilReady())).toBe('1 2 D(["ok1"]) C(SELECT 1) 1 2 E(22012 division by zero) Z(I)');
      const skipped = await runNamed(a, "skipped1");
      expect(types(skipped)).toBe("EZ");
      expect(codes(skipped)).toEqual(["26000"]);
      expect(show(await runNamed(a, "ok1"))).toBe('2 D(["ok1"]) C(SELECT 1) Z(I)');
    });
  });

  test("max_prepared_statements = 5: 20 distinct statements in rotation give correct results and no server ever holds more than 5 prepared statements", async () => {
    await withPgbun(pg, { pgbun: tx(2, { max_prepared_statements: 5 }) }, async (f) => {
      const clients = [await f.login(), await f.login()];
      const counts: number[] = [];
      const pids = new Set<string>();
      await Promise.all(
        clients.map(async (c, k) => {
          for (let round = 0; round < 3; round++) {
            for (let i = 0; i < 20; i++) {
              const parse = round === 0 ? [msg.parse(`r${i}`, `SELECT ${i}::int + $1::int AS v`)] : [];
              c.send(
                Buffer.concat([
                  ...parse,
                  msg.bind("", `r${i}`, [String(k * 1000 + round)]),
                  msg.execute(),
                  // in the same transaction, so on the same server
                  msg.parse("", "SELECT count(*), count(*) FILTER (WHERE name LIKE 'pgbun%'), pg_backend_pid() FROM pg_prepared_statements"),
                  msg.bind("", ""),
                  msg.execute(),
                  msg.sync(),
                ]),
              );
              const got = await c.readUntilReady();
              expect(codes(got)).toEqual([]);
              const [[v], [total, ours, pid]] = rows(got) as [[string], [string, string, string]];
              expect(v).toBe(String(i + k * 1000 + round));
              expect(Number(total)).toBe(Number(ours));
              counts.push(Number(total));
              pids.add(pid);
            }
          }
        }),
      );
      expect(counts.length).toBe(120);
      expect(Math.max(...counts)).toBeLessThanOrEqual(5);
      expect(Math.max(...counts)).toBe(5);
      expect(pids.size).toBeGreaterThanOrEqual(1);
    });
  });

});

describe("SQL-level PREPARE / DEALLOCATE and DISCARD ALL (transaction mode)", () => {
  test("PREPARE p pins the client: EXECUTE p keeps working across transactions on the same backend, and another client's EXECUTE p fails with 26000", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      const prep = await a.query("PREPARE p(int) AS SELECT $1 * 10, pg_backend_pid()");
      expect(prep.errors).toEqual([]);
      expect(prep.status).toBe("I");
      const pids = new Set<string>();
      for (let i = 1; i <= 5; i++) {
        const r = await a.query(`EXECUTE p(${i})`);
        expect(r.errors).toEqual([]);
        expect(r.rows[0]![0]).toBe(String(i * 10));
        pids.add(r.rows[0]![1]!);
        // B keeps working meanwhile, never on A's server, and never sees p
        const other = await b.query("EXECUTE p(1)");
        expect(other.errors.map((e) => e.C)).toEqual(["26000"]);
        expect(other.errors[0]!.M).toBe('prepared statement "p" does not exist');
        expect(other.status).toBe("I");
        expect(await backendPid(b)).not.toBe(r.rows[0]![1]!);
      }
      expect(pids.size).toBe(1);
      // an explicit transaction is on the same backend too
      expect((await a.query("BEGIN")).status).toBe("T");
      expect(await backendPid(a)).toBe([...pids][0]!);
      expect((await a.query("EXECUTE p(7)")).rows[0]![0]).toBe("70");
      expect((await a.query("COMMIT")).status).toBe("I");
      await expectLog(f.pb, "client pinned to its server");
    });
  });

  for (const release of ["DEALLOCATE p", "DEALLOCATE ALL"]) {
    test(`${release} releases the PREPARE pin: with pool size 1 a second client waits while A is pinned, then runs`, async () => {
      await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
        const a = await f.login();
        const b = await f.login();
        expect((await a.query("PREPARE p AS SELECT 'prepared'")).errors).toEqual([]);
        const pidA = await backendPid(a);
        b.send(msg.query("SELECT 'b', pg_backend_pid()"));
        expect(await readyWithin(b, 800)).toBe("timeout");
        expect((await a.query("EXECUTE p")).rows).toEqual([["prepared"]]);
        expect(await backendPid(a)).toBe(pidA);
        expect(await readyWithin(b, 300)).toBe("timeout");

        const dealloc = await a.query(release);
        expect(dealloc.errors).toEqual([]);
        expect(dealloc.messages.filter((m) => m.type === "C").map(commandTag)).toEqual([release === "DEALLOCATE p" ? "DEALLOCATE" : "DEALLOCATE ALL"]);
        const gotB = await b.readUntilReady(5_000);
        expect(rows(gotB)).toEqual([["b", pidA]]);
        // p is gone for A too, like on PostgreSQL
        const after = await a.query("EXECUTE p");
        expect(after.errors.map((e) => e.C)).toEqual(["26000"]);
        expect((await b.query("SELECT 'b again'")).rows).toEqual([["b again"]]);
      });
    });
  }

  test("DEALLOCATE ALL also drops the client's protocol-level named statements: a later Bind to one fails with 26000", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      a.send(Buffer.concat([msg.parse("n1", "SELECT 'n1'"), msg.bind("", "n1"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["n1"]) C(SELECT 1) Z(I)');
      expect((await a.query("DEALLOCATE ALL")).errors).toEqual([]);
      const gone = await runNamed(a, "n1");
      expect(types(gone)).toBe("EZ");
      expect(codes(gone)).toEqual(["26000"]);
    });
  });

  test("DISCARD ALL resets protocol-level named statements: a later Bind to an old name fails with 26000, as on PostgreSQL", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const c = await f.login();
      for (const client of [a, c]) {
        client.send(Buffer.concat([msg.parse("old", "SELECT 'old' AS v"), msg.bind("", "old"), msg.execute(), msg.sync()]));
        expect(show(await client.readUntilReady())).toBe('1 2 D(["old"]) C(SELECT 1) Z(I)');
      }
      const discard = await a.query("DISCARD ALL");
      expect(discard.errors).toEqual([]);
      expect(discard.status).toBe("I");
      const gone = await runNamed(a, "old");
      expect(types(gone)).toBe("EZ");
      expect(codes(gone)).toEqual(["26000"]);
      expect(errorFields(gone[0]!).M).toBe('prepared statement "old" does not exist');
      // the other client's statement of the same text still works, whichever server it lands on
      for (let i = 0; i < 3; i++) expect(show(await runNamed(c, "old"))).toBe('2 D(["old"]) C(SELECT 1) Z(I)');
      // A can prepare the name again
      a.send(Buffer.concat([msg.parse("old", "SELECT 'new' AS v"), msg.bind("", "old"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["new"]) C(SELECT 1) Z(I)');
    });
  });
});

describe("statement mode", () => {
  test("BEGIN is refused with 0A000, the session continues, and the next statement runs outside any transaction", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "statement", default_pool_size: 1 } }, async (f) => {
      const a = await f.login();
      const begin = await a.query("BEGIN");
      expect(begin.errors.map((e) => e.C)).toEqual(["0A000"]);
      expect(begin.errors[0]!.M).toBe("transaction blocks not allowed in statement pooling mode");
      expect(begin.status).toBe("I");

      // not in a transaction: the statement starts a transaction of its own
      const ts = await a.query("SELECT now() = statement_timestamp(), txid_current_if_assigned() IS NULL");
      expect(ts.errors).toEqual([]);
      expect(ts.rows).toEqual([["t", "t"]]);
      expect(ts.status).toBe("I");

      // an INSERT commits at once: PostgreSQL itself sees the row, and so does another client
      const ins = await a.query("INSERT INTO stmt_events (tag) VALUES ('statement-mode')");
      expect(ins.errors).toEqual([]);
      expect(ins.messages.filter((m) => m.type === "C").map(commandTag)).toEqual(["INSERT 0 1"]);
      expect(ins.status).toBe("I");
      expect(await pg.psql("SELECT count(*) FROM stmt_events WHERE tag = 'statement-mode'", "app")).toBe("1");
      const b = await f.login();
      expect((await b.query("SELECT count(*) FROM stmt_events WHERE tag = 'statement-mode'")).rows).toEqual([["1"]]);

      // a ROLLBACK now finds no transaction to undo (PostgreSQL warns 25P01)
      const rb = await a.query("ROLLBACK");
      expect(rb.errors).toEqual([]);
      expect(rb.messages.filter((m) => m.type === "N").map(sqlState)).toEqual(["25P01"]);
      expect(await pg.psql("SELECT count(*) FROM stmt_events WHERE tag = 'statement-mode'", "app")).toBe("1");
    });
  });
  test("BEGIN with statements pipelined behind it (one write): the client is told 0A000 FATAL, nothing it sent after BEGIN is committed, and the next client is served", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "statement", default_pool_size: 1 } }, async (f) => {
      const a = await f.login();
      a.send(Buffer.concat([msg.query("BEGIN"), msg.query("INSERT INTO stmt_events (tag) VALUES ('pipelined-after-begin')"), msg.query("SELECT 1")]));
      const { messages, closed } = await a.readUntilClosed(5_000);
      const errors = messages.filter((m) => m.type === "E").map(errorFields);
      expect(errors.map((e) => [e.S, e.C])).toEqual([["FATAL", "0A000"]]);
      expect(errors[0]!.M).toBe("transaction blocks not allowed in statement pooling mode");
      // BEGIN's own CommandComplete came before its ReadyForQuery showed the transaction; nothing after it was answered
      expect(messages.filter((m) => m.type === "C").map(commandTag)).toEqual(["BEGIN"]);
      expect(closed).toBe(true);
      expect(await pg.psql("SELECT count(*) FROM stmt_events WHERE tag = 'pipelined-after-begin'", "app")).toBe("0");
      const b = await f.login();
      const r = await b.query("SELECT txid_current_if_assigned() IS NULL");
      expect(r.errors).toEqual([]);
      expect(r.rows).toEqual([["t"]]);
      expect(r.status).toBe("I");
    });
  });
});
