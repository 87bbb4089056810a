// Integration: the unnamed statement through pgbun:prepared-statements in transaction mode (its fast path: nothing
// renamed, nothing answered by pgbun) and the cases where that path must not be taken: another client's unnamed
// statement left on the server, a client gone mid-pipeline, named statements and errors in the same pipeline.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { backendPid, pgConnect, tx, usePostgres, withPgbun } from "../harness/fixtures.ts";
import { describe as show, errorFields, msg, sqlState, type WireClient } from "../harness/wire.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();

/** Parse, Bind, Describe (portal), Execute, Sync of the unnamed statement: what pgbench -M extended sends. */
function unnamedRound(sql: string): Buffer {
  return Buffer.concat([msg.parse("", sql), msg.bind("", ""), msg.describe("P", ""), msg.execute(), msg.sync()]);
}

/** Bind, Execute, Sync of the unnamed statement, without a Parse of it. */
async function bindOnly(c: WireClient): Promise<string> {
  c.send(Buffer.concat([msg.bind("", ""), msg.execute(), msg.sync()]));
  const got = await c.readUntilReady();
  return show(got);
}

const GONE = "E(26000 unnamed prepared statement does not exist) Z(I)";

describe("the unnamed statement in transaction mode", () => {
  test("each client runs its own; a Bind of it on a server where another client left one fails as on PostgreSQL", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      for (let round = 0; round < 3; round++) {
        a.send(unnamedRound(`SELECT 'a${round}' AS v`));
        expect(show(await a.readUntilReady())).toBe(`1 2 T D(["a${round}"]) C(SELECT 1) Z(I)`);
        // the same server (pool size 1), A's unnamed statement on it: B must not run it
        expect(await bindOnly(b)).toBe(GONE);
        b.send(unnamedRound(`SELECT 'b${round}' AS v`));
        expect(show(await b.readUntilReady())).toBe(`1 2 T D(["b${round}"]) C(SELECT 1) Z(I)`);
        expect(await bindOnly(a)).toBe(GONE);
      }
      // within a transaction block the server stays the client's: its own unnamed statement binds again
      expect((await a.query("BEGIN")).status).toBe("T");
      a.send(Buffer.concat([msg.parse("", "SELECT 'mine' AS v"), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe("1 Z(T)");
      a.send(Buffer.concat([msg.bind("", ""), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('2 D(["mine"]) C(SELECT 1) Z(T)');
      expect((await a.query("COMMIT")).status).toBe("I");
      // and after it, on the same server, it is not taken for the client's any more (another may have replaced it)
      expect(await bindOnly(a)).toBe(GONE);
    });
  });

  test("clients that leave: the next client on that server does not run the unnamed statement left there, nor see answers", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      // one leaves idle after its round: its server, unnamed statement and all, goes to the next client
      const a = await f.login();
      const pidA = await backendPid(a);
      a.send(unnamedRound("SELECT 'a' AS v"));
      expect(show(await a.readUntilReady())).toBe('1 2 T D(["a"]) C(SELECT 1) Z(I)');
      a.destroy();
      const b = await f.login();
      expect(await bindOnly(b)).toBe(GONE);
      expect(await backendPid(b)).toBe(pidA);
      b.send(unnamedRound("SELECT 'b' AS v"));
      expect(show(await b.readUntilReady())).toBe('1 2 T D(["b"]) C(SELECT 1) Z(I)');
      // one leaves mid-pipeline (no Sync): the next client's answers are its own only
      b.send(Buffer.concat([msg.parse("", "SELECT 'b2' AS v"), msg.bind("", ""), msg.execute(), msg.flush()]));
      expect(show(await b.readUntil((m) => m.type === "C"))).toBe('1 2 D(["b2"]) C(SELECT 1)');
      b.destroy();
      const c = await f.login();
      expect(await bindOnly(c)).toBe(GONE);
      c.send(unnamedRound("SELECT 'c' AS v"));
      expect(show(await c.readUntilReady())).toBe('1 2 T D(["c"]) C(SELECT 1) Z(I)');
      c.send(Buffer.concat([msg.parse("s1", "SELECT $1::text AS v"), msg.bind("", "s1", ["named"]), msg.execute(), msg.sync()]));
      expect(show(await c.readUntilReady())).toBe('1 2 D(["named"]) C(SELECT 1) Z(I)');
      expect(await c.readFor(200)).toEqual([]);
    });
  });

  test("unnamed, named, unnamed in one write: every answer in order, pgbun's own Describe answers not among them", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      a.send(
        Buffer.concat([
          msg.parse("", "SELECT 1 AS one"),
          msg.bind("", ""),
          msg.describe("P", ""),
          msg.execute(),
          msg.parse("s1", "SELECT $1::int * 2 AS twice"),
          msg.bind("", "s1", ["21"]),
          msg.describe("P", ""),
          msg.execute(),
          msg.parse("", "SELECT 3 AS three"),
          msg.bind("", ""),
          msg.describe("S", ""),
          msg.execute(),
          msg.sync(),
        ]),
      );
      expect(show(await a.readUntilReady())).toBe('1 2 T D(["1"]) C(SELECT 1) 1 2 T D(["42"]) C(SELECT 1) 1 2 t T D(["3"]) C(SELECT 1) Z(I)');
      expect(await a.readFor(200)).toEqual([]);
      // the named statement is there for the next transaction
      a.send(Buffer.concat([msg.bind("", "s1", ["5"]), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('2 D(["10"]) C(SELECT 1) Z(I)');
    });
  });

  test("an error at a named Parse between unnamed ones skips to the Sync; the name is not created, the session goes on", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      a.send(
        Buffer.concat([
          msg.parse("", "SELECT 1 AS one"),
          msg.bind("", ""),
          msg.execute(),
          msg.parse("bad", "SELEC 2"),
          msg.bind("", "bad"),
          msg.execute(),
          msg.parse("", "SELECT 3 AS three"),
          msg.bind("", ""),
          msg.execute(),
          msg.sync(),
        ]),
      );
      const got = await a.readUntilReady();
      expect(show(got).replace(/E\(42601 [^)]*\)/, "E(42601)")).toBe('1 2 D(["1"]) C(SELECT 1) E(42601) Z(I)');
      expect(await a.readFor(200)).toEqual([]);
      a.send(Buffer.concat([msg.bind("", "bad"), msg.execute(), msg.sync()]));
      const gone = await a.readUntilReady();
      expect(sqlState(gone[0]!)).toBe("26000");
      expect(errorFields(gone[0]!).M).toBe('prepared statement "bad" does not exist');
      a.send(unnamedRound("SELECT 'after' AS v"));
      expect(show(await a.readUntilReady())).toBe('1 2 T D(["after"]) C(SELECT 1) Z(I)');
    });
  });

  test("node-postgres unprepared queries of four clients on one server each get their own values", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const clients = await Promise.all([0, 1, 2, 3].map(() => pgConnect(f.pb)));
      try {
        for (let round = 0; round < 5; round++) {
          const got = await Promise.all(clients.map((c, i) => c.query({ text: "SELECT $1::text AS v", values: [`c${i}r${round}`], rowMode: "array" })));
          expect(got.map((r) => r.rows[0]![0])).toEqual(clients.map((_, i) => `c${i}r${round}`));
        }
      } finally {
        await Promise.all(clients.map((c) => c.end()));
      }
    });
  });
});
