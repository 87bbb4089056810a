// Protocol-level integration tests, raw wire bytes through pgbun to a real PostgreSQL: startup negotiation,
// malformed packets, session-mode reset, server connections ended by PostgreSQL. Queries in flight: protocol.test.ts.
import { describe, expect, test } from "bun:test";
import { backendPid, tx, usePostgres, withPgbun } from "../harness/fixtures.ts";
import { errorFields, msg, negotiateProtocol, only, rows, sqlState, types, WireClient } from "../harness/wire.ts";

const pg = usePostgres();

const TX1 = tx(1);
const TX2 = tx(2);

describe("startup negotiation", () => {
  test("GSSENCRequest and SSLRequest are answered 'N' and the client then logs in", async () => {
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
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
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
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
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
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
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
      const c = await f.connect();
      c.send(msg.startup({ user: "postgres", database: "app", replication: "database" }));
      const { messages, closed } = await c.readUntilClosed(5_000);
      expect(types(messages)).toBe("E");
      expect(errorFields(messages[0]!).S).toBe("FATAL");
      expect(closed).toBe(true);
    });
  }, 30_000);
});
describe("Terminate before the startup packet", () => {
  /** Connects to `to`, sends `before` (each answered 'N'), then a Terminate: expects the connection closed, nothing sent. */
  async function terminateQuietly(to: { host: string; port: number }, before: Buffer[]): Promise<void> {
    const c = await WireClient.connect(to);
    try {
      for (const request of before) {
        c.send(request);
        expect(await c.readByte(3_000)).toBe("N");
      }
      c.send(msg.terminate());
      const { messages, closed } = await c.readUntilClosed(3_000);
      expect(types(messages)).toBe("");
      expect(c.pendingBytes).toBe(0);
      expect(closed).toBe(true);
    } finally {
      c.destroy();
    }
  }

  // PostgreSQL itself is the reference where it answers 'N' too (this build accepts GSSENCRequest: 'G')
  const cases: Array<{ when: string; before: () => Buffer[]; direct: boolean }> = [
    { when: "right after connecting", before: () => [], direct: true },
    { when: "after a refused SSLRequest", before: () => [msg.sslRequest()], direct: true },
    { when: "after a refused GSSENCRequest", before: () => [msg.gssencRequest()], direct: false },
    { when: "after a refused GSSENCRequest and SSLRequest", before: () => [msg.gssencRequest(), msg.sslRequest()], direct: false },
  ];
  for (const { when, before, direct } of cases) {
    test(`${when}: the connection closes with no bytes sent, as PostgreSQL does`, async () => {
      if (direct) await terminateQuietly(pg, before());
      await withPgbun(pg, { pgbun: TX2 }, async (f) => {
        await terminateQuietly(f.pb, before());
        // pgbun goes on serving
        const c = await f.login();
        expect((await c.query("SELECT 'still serving'")).rows).toEqual([["still serving"]]);
      });
    }, 30_000);
  }
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
    await withPgbun(pg, { pgbun: settings }, async (f) => {
      const bystander = await f.login();
      await bystanderRound(bystander, "len2", async () => {
        const c = await f.login();
        c.send(Buffer.from([0x51, 0, 0, 0, 2]));
        await expectProtocolViolation(c);
      });
    });
  }, 30_000);

  test("a typed message longer than max_packet_size gets 08P01 and a closed connection; a concurrent client is unaffected", async () => {
    await withPgbun(pg, { pgbun: settings }, async (f) => {
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
    await withPgbun(pg, { pgbun: settings }, async (f) => {
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
    await withPgbun(pg, { pgbun: settings }, async (f) => {
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
    await withPgbun(pg, { pgbun: { pool_mode: "session", default_pool_size: 1 } }, async (f) => {
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
    await withPgbun(pg, { pgbun: TX2 }, async (f) => {
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
    await withPgbun(pg, { pgbun: TX1 }, async (f) => {
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
