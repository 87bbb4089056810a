// Protocol-level integration tests, raw wire bytes through pgbun to a real PostgreSQL: extended-protocol pipelines,
// cancel requests, clients vanishing mid-query, COPY (transaction mode). Startup and connections: protocol-connections.test.ts.
import { describe, expect, test } from "bun:test";
import { backendPid, tx, usePostgres, withPgbun } from "../harness/fixtures.ts";
import {
  commandTag,
  describe as show,
  errorFields,
  msg,
  only,
  readyStatus,
  readyWithin,
  rows,
  sendCancel,
  sqlState,
  types,
  type BackendMessage,
} from "../harness/wire.ts";

const pg = usePostgres((db) => db.psql("CREATE TABLE copy_t (a int, b text)", "app"));

const TX1 = tx(1);
const TX2 = tx(2);

describe("extended protocol in transaction mode", () => {
  test("a pipelined batch of three syncs in one write keeps response order around a failing Execute, and the server is reusable", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const batch = Buffer.concat([
        msg.parse("", "SELECT 1"),
        msg.bind("", ""),
        msg.execute(),
        msg.sync(),
        // volatile, so the division runs in Execute (not folded at Bind)
        msg.parse("", "SELECT 1 / g FROM generate_series(0, 0) g"),
        msg.bind("", ""),
        msg.execute(),
        msg.sync(),
        msg.parse("", "SELECT pg_backend_pid()"),
        msg.bind("", ""),
        msg.execute(),
        msg.sync(),
      ]);
      c1.send(batch);
      const got = await c1.readReadyN(3, 10_000);
      expect(show(got)).toMatch(/^1 2 D\(\["1"\]\) C\(SELECT 1\) Z\(I\) 1 2 E\(22012 division by zero\) Z\(I\) 1 2 D\(\["\d+"\]\) C\(SELECT 1\) Z\(I\)$/);
      expect(types(got)).toBe("12DCZ12EZ12DCZ");
      const pid1 = rows(got)[1]![0]!;
      // nothing else follows
      expect(await c1.readFor(300)).toEqual([]);

      const c2 = await f.login();
      const r = await c2.query("SELECT 42, pg_backend_pid()");
      expect(r.errors).toEqual([]);
      expect(r.rows).toEqual([["42", pid1]]);
      expect(r.status).toBe("I");
      // and the first client still works too
      expect((await c1.query("SELECT 'again'")).rows).toEqual([["again"]]);
    });
  }, 30_000);

  test("an error mid-pipeline under one Sync skips the rest until Sync, and the server is released only after its ReadyForQuery", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      c1.send(
        Buffer.concat([
          msg.parse("", "SELECT 'first'"),
          msg.bind("", ""),
          msg.execute(),
          msg.parse("", "SELECT 1 / g FROM generate_series(0, 0) g"),
          msg.bind("", ""),
          msg.execute(),
          msg.parse("", "SELECT 'skipped'"),
          msg.bind("", ""),
          msg.execute(),
        ]),
      );
      // the error arrives only at Sync/Flush; until then client 1 keeps the server
      await Bun.sleep(150); // client 1's batch reaches pgbun first, so client 1 holds the only server
      c2.send(msg.query("SELECT 'c2'"));
      expect(await readyWithin(c2, 600)).toBe("timeout");
      c1.send(msg.sync());
      const got = await c1.readUntilReady(5_000);
      expect(show(got)).toBe('1 2 D(["first"]) C(SELECT 1) 1 2 E(22012 division by zero) Z(I)');
      expect(rows(await c2.readUntilReady(5_000))).toEqual([["c2"]]);
      expect((await c1.query("SELECT 'c1 again'")).rows).toEqual([["c1 again"]]);
    });
  }, 30_000);

  test("an extended sequence without Sync, split over delayed writes, keeps its server until the Sync", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      c1.send(msg.parse("", "SELECT 'c1', pg_backend_pid()"));
      await Bun.sleep(200);
      c1.send(msg.bind("", ""));
      await Bun.sleep(200);
      c1.send(Buffer.concat([msg.execute(), msg.flush()]));
      const partial = await c1.readUntil((m) => m.type === "C", 5_000);
      expect(types(partial)).toBe("12DC");
      const pid1 = rows(partial)[0]![1]!;

      // client 2 wants the only server: it must wait while client 1 has not sent Sync
      c2.send(msg.query("SELECT 'c2', pg_backend_pid()"));
      expect(await readyWithin(c2, 800)).toBe("timeout");
      c1.send(msg.describe("S", "")); // still mid-sequence
      await Bun.sleep(200);
      expect(await readyWithin(c2, 300)).toBe("timeout");

      c1.send(msg.sync());
      const rest = await c1.readUntilReady(5_000);
      expect(types(rest)).toBe("tTZ");
      expect(readyStatus(rest[rest.length - 1]!)).toBe("I");

      const r2 = await c2.readUntilReady(5_000);
      expect(rows(r2)).toEqual([["c2", pid1]]);
      expect(only(r2, "E")).toEqual([]);
    });
  }, 30_000);

  test("an error inside an explicit transaction gives ReadyForQuery 'E' and the server stays with the client until ROLLBACK", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      const begin = await c1.query("BEGIN");
      expect(begin.status).toBe("T");
      const pid1 = await backendPid(c1);

      const bad = await c1.query("SELECT no_such_column_xyz");
      expect(bad.errors.map((e) => e.C)).toEqual(["42703"]);
      expect(bad.status).toBe("E");

      c2.send(msg.query("SELECT 'c2', pg_backend_pid()"));
      expect(await readyWithin(c2, 800)).toBe("timeout");

      // still the same failed transaction on the same server
      const aborted = await c1.query("SELECT 1");
      expect(aborted.errors.map((e) => e.C)).toEqual(["25P02"]);
      expect(aborted.status).toBe("E");
      // extended protocol in the failed transaction: error then ReadyForQuery 'E'
      c1.send(Buffer.concat([msg.parse("", "SELECT 2"), msg.bind("", ""), msg.execute(), msg.sync()]));
      const ext = await c1.readUntilReady(5_000);
      expect(types(ext)).toBe("EZ");
      expect(sqlState(ext[0]!)).toBe("25P02");
      expect(readyStatus(ext[1]!)).toBe("E");
      expect(await readyWithin(c2, 300)).toBe("timeout");

      const rb = await c1.query("ROLLBACK");
      expect(rb.messages.map((m) => (m.type === "C" ? commandTag(m) : m.type))).toEqual(["ROLLBACK", "Z"]);
      expect(rb.status).toBe("I");

      const r2 = await c2.readUntilReady(5_000);
      expect(rows(r2)).toEqual([["c2", pid1]]);
      expect(readyStatus(r2[r2.length - 1]!)).toBe("I");
    });
  }, 30_000);
});
describe("cancel requests", () => {
  test("a CancelRequest with the client's BackendKeyData cancels its running query with 57014 within 2 s", async () => {
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
      const c = await f.login();
      expect(c.key).not.toBeNull();
      expect(c.key!.secret.length).toBe(4);
      c.send(msg.query("SELECT pg_sleep(10)"));
      await Bun.sleep(300);
      const t0 = Date.now();
      await sendCancel(f.pb.host, f.pb.port, c.key!.pid, c.key!.secret);
      const got = await c.readUntilReady(5_000);
      const elapsed = Date.now() - t0;
      const errors = only(got, "E");
      expect(errors.length).toBe(1);
      expect(sqlState(errors[0]!)).toBe("57014");
      expect(errorFields(errors[0]!).M).toBe("canceling statement due to user request");
      expect(elapsed).toBeLessThan(2_000);
      expect(readyStatus(got[got.length - 1]!)).toBe("I");
      // the session goes on
      expect((await c.query("SELECT 'after cancel'")).rows).toEqual([["after cancel"]]);
    });
  }, 30_000);

  test("a CancelRequest with a wrong secret or unknown pid does nothing", async () => {
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
      const c = await f.login();
      const key = c.key!;
      c.send(msg.query("SELECT pg_sleep(1.5), 'finished'"));
      await Bun.sleep(300);
      const wrong = Buffer.from(key.secret);
      wrong[3] = wrong[3]! ^ 0x01;
      await sendCancel(f.pb.host, f.pb.port, key.pid, wrong);
      await sendCancel(f.pb.host, f.pb.port, key.pid ^ 0x40000000, key.secret);
      const got = await c.readUntilReady(5_000);
      expect(only(got, "E")).toEqual([]);
      expect(rows(got)).toEqual([["", "finished"]]);
    });
  }, 30_000);

  test("a late cancel after the server went to another client does not cancel that client's query", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      const pidA = await backendPid(a); // finished: the server is back in the pool
      b.send(msg.query("SELECT pg_sleep(1), pg_backend_pid(), 'b done'"));
      await Bun.sleep(300);
      await sendCancel(f.pb.host, f.pb.port, a.key!.pid, a.key!.secret);
      const got = await b.readUntilReady(5_000);
      expect(only(got, "E").map((m) => errorFields(m))).toEqual([]);
      expect(rows(got)).toEqual([["", pidA, "b done"]]);
      // A's own key still works for A afterwards, B is unaffected
      expect((await a.query("SELECT 'a ok'")).rows).toEqual([["a ok"]]);
    });
  }, 30_000);
});
describe("clients that vanish mid-query", () => {
  test("a client closing abruptly during pg_sleep: the waiting client sees only its own results", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      c1.send(msg.query("SELECT 'late-from-client-1' FROM pg_sleep(2)"));
      await Bun.sleep(300);
      c2.send(msg.query("SELECT 'client-2-first'"));
      await Bun.sleep(100);
      c1.destroy();
      const first = await c2.readUntilReady(8_000);
      expect(only(first, "E")).toEqual([]);
      expect(rows(first)).toEqual([["client-2-first"]]);
      expect(types(first)).toBe("TDCZ");
      const second = await c2.query("SELECT 'client-2-second'");
      expect(second.rows).toEqual([["client-2-second"]]);
      expect(types(second.messages)).toBe("TDCZ");
      // wait past the end of client 1's sleep: nothing late shows up
      expect(show(await c2.readFor(2_200))).toBe("");
      expect((await c2.query("SELECT 'client-2-third'")).rows).toEqual([["client-2-third"]]);
    });
  }, 30_000);

  test("a client closing abruptly while a large result streams: the next client sees only its own rows", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      c1.send(msg.query("SELECT g FROM generate_series(1, 3000000) g"));
      await c1.readUntil((m) => m.type === "D", 5_000);
      c2.send(msg.query("SELECT -1 AS marker"));
      c1.destroy();
      const got = await c2.readUntilReady(15_000);
      expect(show(got)).toBe('T D(["-1"]) C(SELECT 1) Z(I)');
      expect((await c2.query("SELECT -2")).rows).toEqual([["-2"]]);
      expect(show(await c2.readFor(500))).toBe("");
    });
  }, 40_000);
  test("a client vanishing inside an open transaction: the next client is not in it and does not see its writes", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      await pg.psql("TRUNCATE copy_t", "app");
      const c1 = await f.login();
      const c2 = await f.login();
      expect((await c1.query("BEGIN")).status).toBe("T");
      expect((await c1.query("INSERT INTO copy_t VALUES (99, 'uncommitted')")).status).toBe("T");
      c2.send(msg.query("SELECT count(*) FROM copy_t"));
      expect(await readyWithin(c2, 500)).toBe("timeout");
      c1.destroy();
      const got = await c2.readUntilReady(5_000);
      expect(show(got)).toBe('T D(["0"]) C(SELECT 1) Z(I)');
      expect((await c2.query("SELECT 'x'")).status).toBe("I");
    });
  }, 30_000);

  test("a client vanishing with a half-sent message on its server: the next client's query is not swallowed", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      // a stray CopyData (PostgreSQL ignores it outside COPY) takes the server, then half of a second one follows
      const half = Buffer.alloc(5 + 20);
      half[0] = 0x64;
      half.writeUInt32BE(4 + 100, 1);
      c1.send(Buffer.concat([msg.copyData("stray"), half]));
      await Bun.sleep(300);
      c1.destroy();
      await Bun.sleep(200);
      c2.send(msg.query("SELECT 'client-2'"));
      const got = await readyWithin(c2, 3_000);
      expect(got).not.toBe("timeout");
      expect(show(got as BackendMessage[])).toBe('T D(["client-2"]) C(SELECT 1) Z(I)');
    });
  }, 30_000);
});
describe("COPY", () => {
  test("COPY FROM STDIN via the simple protocol, with a Sync during copy-in, then queries on the same and another client", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      await pg.psql("TRUNCATE copy_t", "app");
      const c1 = await f.login();
      const c2 = await f.login();
      c1.send(msg.query("COPY copy_t (a, b) FROM STDIN"));
      const start = await c1.readUntil((m) => m.type === "G", 5_000);
      expect(types(start)).toBe("G");
      c1.send(msg.copyData("1\tone\n"));
      c1.send(Buffer.concat([msg.copyData("2\ttwo\n"), msg.sync()])); // ignored by the server during copy-in
      await Bun.sleep(100);
      c1.send(Buffer.concat([msg.copyData("3\tthree\n"), msg.copyDone()]));
      const done = await c1.readUntilReady(5_000);
      expect(show(done)).toBe("C(COPY 3) Z(I)");
      // the Sync got no ReadyForQuery of its own
      expect(await c1.readFor(300)).toEqual([]);

      const same = await c1.query("SELECT string_agg(b, ',' ORDER BY a) FROM copy_t");
      expect(same.rows).toEqual([["one,two,three"]]);
      expect(same.status).toBe("I");

      // pool size 1: the other client gets the server only if it was released after the copy
      c2.send(msg.query("SELECT sum(a) FROM copy_t"));
      const other = await readyWithin(c2, 3_000);
      expect(other).not.toBe("timeout");
      expect(rows(other as BackendMessage[])).toEqual([["6"]]);
    });
  }, 30_000);
  test("a COPY sent in one write with a Sync among its CopyData releases the server after CopyDone", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      await pg.psql("TRUNCATE copy_t", "app");
      const c1 = await f.login();
      const c2 = await f.login();
      // the Sync arrives before pgbun has seen CopyInResponse; PostgreSQL ignores it (copy-in) and answers one ReadyForQuery
      c1.send(Buffer.concat([msg.query("COPY copy_t (a, b) FROM STDIN"), msg.copyData("10\tten\n"), msg.sync(), msg.copyData("20\ttwenty\n"), msg.copyDone()]));
      const done = await c1.readUntilReady(5_000);
      expect(show(done)).toBe("G C(COPY 2) Z(I)");
      expect(await c1.readFor(300)).toEqual([]);

      c2.send(msg.query("SELECT sum(a) FROM copy_t"));
      const other = await readyWithin(c2, 3_000);
      expect(other).not.toBe("timeout");
      expect(rows(other as BackendMessage[])).toEqual([["30"]]);
    });
  }, 30_000);

  test("an extended-protocol COPY FROM STDIN whose Sync precedes CopyInResponse releases the server after the final Sync", async () => {
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
      await pg.psql("TRUNCATE copy_t", "app");
      const c1 = await f.login();
      const c2 = await f.login();
      // as drivers pipeline it: Parse/Bind/Execute/Sync in one write; the server is in copy-in when the Sync arrives
      c1.send(Buffer.concat([msg.parse("", "COPY copy_t (a, b) FROM STDIN"), msg.bind("", ""), msg.execute(), msg.sync()]));
      const start = await c1.readUntil((m) => m.type === "G", 5_000);
      expect(types(start)).toBe("12G");
      c1.send(Buffer.concat([msg.copyData("7\tseven\n"), msg.copyDone(), msg.sync()]));
      const done = await c1.readUntilReady(5_000);
      expect(show(done)).toBe("C(COPY 1) Z(I)");
      expect(await c1.readFor(300)).toEqual([]);

      c2.send(msg.query("SELECT sum(a) FROM copy_t"));
      const other = await readyWithin(c2, 3_000);
      expect(other).not.toBe("timeout");
      expect(rows(other as BackendMessage[])).toEqual([["7"]]);
    });
  }, 30_000);
});
