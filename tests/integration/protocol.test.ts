// Protocol-level integration tests: raw wire bytes through pgbun to a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startPostgres, type TestPostgres } from "../harness/postgres.ts";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import {
  commandTag,
  describe as show,
  errorFields,
  msg,
  negotiateProtocol,
  readyStatus,
  rows,
  sendCancel,
  sqlState,
  types,
  WireClient,
  type BackendMessage,
} from "../harness/wire.ts";

let pg: TestPostgres;

beforeAll(async () => {
  pg = await startPostgres();
  await pg.psql("CREATE TABLE copy_t (a int, b text)", "app");
}, 60_000);

afterAll(async () => {
  await pg?.stop();
});

/** One pgbun for one test, with the clients it made; everything is torn down by dispose(). */
class Fixture {
  readonly clients: WireClient[] = [];
  constructor(readonly pb: TestPgbun) {}

  async login(params: Record<string, string> = {}): Promise<WireClient> {
    const c = await WireClient.login({ host: this.pb.host, port: this.pb.port, params: { user: "postgres", database: "app", ...params } });
    this.clients.push(c);
    return c;
  }

  async connect(): Promise<WireClient> {
    const c = await WireClient.connect({ host: this.pb.host, port: this.pb.port });
    this.clients.push(c);
    return c;
  }

  async dispose(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await this.pb.stop("SIGTERM");
  }
}

async function withPgbun(settings: Record<string, unknown>, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const pb = await startPgbun({ config: { pgbun: { log_level: "debug", ...settings } }, pg });
  const f = new Fixture(pb);
  try {
    await fn(f);
  } catch (err) {
    const logs = pb.logs().split("\n").slice(-40).join("\n");
    console.error(`--- last pgbun log lines ---\n${logs}`);
    throw err;
  } finally {
    await f.dispose();
  }
}

const TX1 = { pool_mode: "transaction", default_pool_size: 1 };
const TX2 = { pool_mode: "transaction", default_pool_size: 2 };

function only(messages: BackendMessage[], type: string): BackendMessage[] {
  return messages.filter((m) => m.type === type);
}

/** Resolves with the messages up to ReadyForQuery, or "timeout" if none arrives within `ms`. */
async function readyWithin(c: WireClient, ms: number): Promise<BackendMessage[] | "timeout"> {
  try {
    return await c.readUntilReady(ms);
  } catch (err) {
    if (err instanceof Error && err.name === "WireTimeout" && !c.isClosed) return "timeout";
    throw err;
  }
}

async function backendPid(c: WireClient): Promise<string> {
  const r = await c.query("SELECT pg_backend_pid()");
  expect(r.errors).toEqual([]);
  return r.rows[0]![0]!;
}

describe("extended protocol in transaction mode", () => {
  test("a pipelined batch of three syncs in one write keeps response order around a failing Execute, and the server is reusable", async () => {
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX2, async (f) => {
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
    await withPgbun(TX2, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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
    await withPgbun(TX1, async (f) => {
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

describe("startup negotiation", () => {
  test("GSSENCRequest and SSLRequest are answered 'N' and the client then logs in", async () => {
    await withPgbun(TX2, async (f) => {
      for (const request of [msg.gssencRequest(), msg.sslRequest(), Buffer.concat([msg.gssencRequest()])]) {
        const c = await f.connect();
        c.send(request);
        expect(await c.readByte(3_000)).toBe("N");
        c.send(msg.startup({ user: "postgres", database: "app" }));
        const login = await c.readUntil((m) => m.type === "Z" || m.type === "E", 5_000);
        expect(only(login, "E")).toEqual([]);
        expect(login[0]!.type).toBe("R");
        expect((await c.query("SELECT 'in'")).rows).toEqual([["in"]]);
      }
      // GSSENCRequest refused, then SSLRequest refused, then startup: as libpq does with gssencmode=prefer
      const c = await f.connect();
      c.send(msg.gssencRequest());
      expect(await c.readByte(3_000)).toBe("N");
      c.send(msg.sslRequest());
      expect(await c.readByte(3_000)).toBe("N");
      c.send(msg.startup({ user: "postgres", database: "app" }));
      await c.readUntilReady(5_000);
      expect((await c.query("SELECT 'both'")).rows).toEqual([["both"]]);
    });
  }, 30_000);

  test("protocol 3.2 (and the 3.9999 grease version) gets NegotiateProtocolVersion with minor 0 and logs in", async () => {
    await withPgbun(TX2, async (f) => {
      for (const version of [196610, (3 << 16) | 9999]) {
        const c = await f.connect();
        c.send(msg.startup({ user: "postgres", database: "app" }, version));
        const login = await c.readUntil((m) => m.type === "Z" || m.type === "E", 5_000);
        expect(only(login, "E")).toEqual([]);
        expect(login[0]!.type).toBe("v");
        expect(negotiateProtocol(login[0]!)).toEqual({ minor: 0, unsupported: [] });
        expect(login[1]!.type).toBe("R");
        // a 3.0 session: the key has a 4-byte secret
        expect(c.key!.secret.length).toBe(4);
        expect((await c.query("SELECT 'v3.0'")).rows).toEqual([["v3.0"]]);
      }
    });
  }, 30_000);

  test("a _pq_.foo startup option is listed as unsupported in NegotiateProtocolVersion", async () => {
    await withPgbun(TX2, async (f) => {
      const c = await f.connect();
      c.send(msg.startup({ user: "postgres", database: "app", "_pq_.foo": "bar" }));
      const login = await c.readUntil((m) => m.type === "Z" || m.type === "E", 5_000);
      expect(only(login, "E")).toEqual([]);
      expect(login[0]!.type).toBe("v");
      expect(negotiateProtocol(login[0]!)).toEqual({ minor: 0, unsupported: ["_pq_.foo"] });
      expect((await c.query("SELECT 'pq'")).rows).toEqual([["pq"]]);
    });
  }, 30_000);

  test("a replication=database startup is refused with an ErrorResponse and the connection closes", async () => {
    await withPgbun(TX2, async (f) => {
      const c = await f.connect();
      c.send(msg.startup({ user: "postgres", database: "app", replication: "database" }));
      const { messages, closed } = await c.readUntilClosed(5_000);
      expect(types(messages)).toBe("E");
      expect(errorFields(messages[0]!).S).toBe("FATAL");
      expect(closed).toBe(true);
    });
  }, 30_000);
});

describe("malformed packets", () => {
  const settings = { pool_mode: "transaction", default_pool_size: 2, max_packet_size: 65536 };

  /** Expects a single ErrorResponse 08P01 and the connection closed. */
  async function expectProtocolViolation(c: WireClient): Promise<void> {
    const { messages, closed } = await c.readUntilClosed(5_000);
    const errors = only(messages, "E");
    expect(errors.length).toBe(1);
    expect(sqlState(errors[0]!)).toBe("08P01");
    expect(closed).toBe(true);
  }

  async function bystanderRound(bystander: WireClient, tag: string, send: () => Promise<void>): Promise<void> {
    bystander.send(msg.query(`SELECT '${tag}' FROM pg_sleep(0.3)`));
    await send();
    const r = await bystander.readUntilReady(5_000);
    expect(rows(r)).toEqual([[tag]]);
    expect((await bystander.query(`SELECT '${tag}-after'`)).rows).toEqual([[`${tag}-after`]]);
  }

  test("a typed message with length 2 gets 08P01 and a closed connection; a concurrent client is unaffected", async () => {
    await withPgbun(settings, async (f) => {
      const bystander = await f.login();
      await bystanderRound(bystander, "len2", async () => {
        const c = await f.login();
        c.send(Buffer.from([0x51, 0, 0, 0, 2]));
        await expectProtocolViolation(c);
      });
    });
  }, 30_000);

  test("a typed message longer than max_packet_size gets 08P01 and a closed connection; a concurrent client is unaffected", async () => {
    await withPgbun(settings, async (f) => {
      const bystander = await f.login();
      await bystanderRound(bystander, "toolong", async () => {
        const c = await f.login();
        const header = Buffer.alloc(5 + 100);
        header[0] = 0x51;
        header.writeUInt32BE(65536 + 100, 1);
        c.send(header);
        await expectProtocolViolation(c);
      });
      await bystanderRound(bystander, "hugelen", async () => {
        const c = await f.login();
        c.send(Buffer.from([0x50, 0xff, 0xff, 0xff, 0xff])); // would wrap a signed 32-bit length
        await expectProtocolViolation(c);
      });
    });
  }, 30_000);

  test("a startup packet of 20000 bytes gets 08P01 and a closed connection; a concurrent client is unaffected", async () => {
    await withPgbun(settings, async (f) => {
      const bystander = await f.login();
      await bystanderRound(bystander, "bigstartup", async () => {
        const c = await f.connect();
        const base = msg.startup({ user: "postgres", database: "app", application_name: "" }).length;
        const packet = msg.startup({ user: "postgres", database: "app", application_name: "x".repeat(20000 - base) });
        expect(packet.length).toBe(20000);
        c.send(packet);
        await expectProtocolViolation(c);
      });
    });
  }, 30_000);

  test("an unterminated startup packet gets 08P01 and a closed connection; a concurrent client is unaffected", async () => {
    await withPgbun(settings, async (f) => {
      const bystander = await f.login();
      await bystanderRound(bystander, "unterminated", async () => {
        const c = await f.connect();
        const body = Buffer.from("user\0postgres\0database\0app", "utf8"); // no NUL after "app", no final NUL
        const packet = Buffer.alloc(8 + body.length);
        packet.writeInt32BE(packet.length, 0);
        packet.writeInt32BE(196608, 4);
        body.copy(packet, 8);
        c.send(packet);
        await expectProtocolViolation(c);
      });
      await bystanderRound(bystander, "nofinal", async () => {
        const c = await f.connect();
        const body = Buffer.from("user\0postgres\0database\0app\0", "utf8"); // pairs complete, final NUL missing
        const packet = Buffer.alloc(8 + body.length);
        packet.writeInt32BE(packet.length, 0);
        packet.writeInt32BE(196608, 4);
        body.copy(packet, 8);
        c.send(packet);
        await expectProtocolViolation(c);
      });
    });
  }, 30_000);
});

describe("session mode", () => {
  test("Terminate returns the server to the pool and server_reset_query wipes the session before the next client", async () => {
    await withPgbun({ pool_mode: "session", default_pool_size: 1 }, async (f) => {
      const c1 = await f.login();
      const pid1 = await backendPid(c1);
      expect((await c1.query("SET application_name = 'client-one-app'")).errors).toEqual([]);
      expect((await c1.query("CREATE TEMP TABLE tmp_c1 (a int)")).errors).toEqual([]);
      expect((await c1.query("SELECT current_setting('application_name'), count(*) FROM pg_class WHERE relname = 'tmp_c1'")).rows).toEqual([
        ["client-one-app", "1"],
      ]);
      c1.send(msg.terminate());
      expect(await c1.waitClosed(3_000)).toBe(true);

      const c2 = await f.login();
      const r = await c2.query("SELECT pg_backend_pid(), current_setting('application_name'), (SELECT count(*) FROM pg_class WHERE relname = 'tmp_c1')");
      expect(r.errors).toEqual([]);
      const [pid2, app, temp] = r.rows[0]!;
      expect(pid2).toBe(pid1);
      expect(app).not.toBe("client-one-app");
      expect(temp).toBe("0");
    });
  }, 30_000);
});

describe("server connections ended by PostgreSQL", () => {
  test("pg_terminate_backend of a client's server gives the client PostgreSQL's own 57P01 ErrorResponse", async () => {
    await withPgbun(TX2, async (f) => {
      const c = await f.login();
      expect((await c.query("BEGIN")).status).toBe("T");
      const pid = await backendPid(c);
      expect(await pg.psql(`SELECT pg_terminate_backend(${pid})`)).toBe("t");
      const { messages, closed } = await c.readUntilClosed(5_000);
      const errors = only(messages, "E");
      expect(errors.length).toBe(1);
      const e = errorFields(errors[0]!);
      expect(e.C).toBe("57P01");
      expect(e.S).toBe("FATAL");
      expect(e.M).toBe("terminating connection due to administrator command");
      expect(closed).toBe(true);
      // a new client gets a working server
      const c2 = await f.login();
      const pid2 = await backendPid(c2);
      expect(pid2).not.toBe(pid);
    });
  }, 30_000);

  test("pg_terminate_backend of an idle pooled server: the next query runs on a fresh server", async () => {
    await withPgbun(TX1, async (f) => {
      const c = await f.login();
      const pid = await backendPid(c);
      expect(await pg.psql(`SELECT pg_terminate_backend(${pid})`)).toBe("t");
      await Bun.sleep(300);
      const r = await c.query("SELECT 'still here', pg_backend_pid()");
      expect(r.errors).toEqual([]);
      expect(r.rows[0]![0]).toBe("still here");
      expect(r.rows[0]![1]).not.toBe(pid);
    });
  }, 30_000);
});
