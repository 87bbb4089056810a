// Hostile clients: wrong message order at login, bad lengths, half-sent huge messages, silent logins and the client
// limits each end as PostgreSQL or PgBouncer would end them, with no crash and no client or server left behind.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { usePostgres, waitFor } from "../harness/fixtures.ts";
import { errorFields, loginApp, msg, WireClient, type BackendMessage } from "../harness/wire.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();
const poolers: TestPooler[] = [];
afterAll(async () => {
  for (const p of poolers) await p.stop();
});

async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 1, ...settings },
  });
  poolers.push(p);
  return p;
}

const errors = (ms: BackendMessage[]) => ms.filter((m) => m.type === "E").map(errorFields);

/** Sends `bytes` on a fresh connection; returns what came back until the pooler closed it. */
async function refused(p: TestPooler, bytes: Buffer): Promise<{ messages: BackendMessage[]; closed: boolean }> {
  const c = await WireClient.connect({ host: p.host, port: p.port });
  c.send(bytes);
  return c.readUntilClosed(5_000);
}

/** Everything is gone: no client is left in the core's list, and the pool's server serves a new client. */
async function nothingLeft(p: TestPooler): Promise<void> {
  await waitFor("no client left", () => p.core.clients.size === 0, 5_000);
  const c = await loginApp(p);
  expect((await c.query("SELECT 'still serving'")).rows).toEqual([["still serving"]]);
  c.destroy();
  await waitFor("the check client gone", () => p.core.clients.size === 0, 5_000);
}

describe("wrong message order during login gets PostgreSQL's 08P01 and the connection closes", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await pooler();
  });

  // PostgreSQL reads the first four bytes as the startup packet's length: a typed message's type byte makes it huge
  const cases: Array<[string, Buffer]> = [
    ["a Query before the StartupMessage", msg.query("SELECT 1")],
    ["a PasswordMessage before the StartupMessage", Buffer.from("p\0\0\0\x08abcd", "latin1")],
  ];
  for (const [label, bytes] of cases) {
    test(`${label}: "invalid length of startup packet"`, async () => {
      const r = await refused(p, bytes);
      expect(errors(r.messages).map((e) => [e.S, e.C, e.M])).toEqual([["FATAL", "08P01", "invalid length of startup packet"]]);
      expect(r.closed).toBe(true);
      await nothingLeft(p);
    });
  }

  test("a startup packet of 10,001 bytes is refused, one of 10,000 is read", async () => {
    const startup = (size: number) => {
      const base = msg.startup({ user: "postgres", database: "app", application_name: "" });
      // pad application_name's value so the packet is `size` bytes
      const pad = size - base.length;
      return msg.startup({ user: "postgres", database: "app", application_name: "a".repeat(pad) });
    };
    const big = await refused(p, startup(10_001));
    expect(errors(big.messages).map((e) => e.C)).toEqual(["08P01"]);
    expect(big.closed).toBe(true);
    const c = await WireClient.connect({ host: p.host, port: p.port });
    c.send(startup(10_000));
    const got = await c.readUntil((m) => m.type === "Z" || m.type === "E", 5_000);
    expect(got.at(-1)!.type).toBe("Z");
    c.destroy();
    await nothingLeft(p);
  });
});

describe("after login", () => {
  // PostgreSQL refuses a type it does not know at once, before reading the length the header announces
  const wrongTypes: Array<[string, Buffer, number]> = [
    // its length bytes 00 00 00 NN read as type 0 and a length of NN << 8: pgbun would wait for that many bytes
    ["a second StartupMessage", msg.startup({ user: "postgres", database: "app" }), 0],
    ["a PasswordMessage when no password was asked for", Buffer.from("p\0\0\0\x08abcd", "latin1"), 112],
    ["a backend message type (ReadyForQuery)", Buffer.from("Z\0\0\0\x05I", "latin1"), 90],
  ];
  for (const [label, bytes, type] of wrongTypes) {
    for (const inTransaction of [false, true]) {
      test(`${label}${inTransaction ? " inside a transaction (server linked)" : ""}: PostgreSQL's FATAL 08P01 "invalid frontend message type ${type}" at once`, async () => {
        const p = await pooler();
        const c = await loginApp(p);
        if (inTransaction) expect((await c.query("BEGIN")).status).toBe("T");
        c.send(bytes);
        const r = await c.readUntilClosed(2_000);
        expect(r.closed).toBe(true);
        expect(errors(r.messages).map((e) => [e.S, e.C, e.M])).toEqual([["FATAL", "08P01", `invalid frontend message type ${type}`]]);
        // the server of the open transaction is not handed on with it open (nothingLeft's query would fail on it)
        await nothingLeft(p);
      });
    }
  }

  for (const mode of ["transaction", "session"]) {
    test(`${mode} mode: a negative message length gets 08P01, the connection closes, the server serves the next client`, async () => {
      const p = await pooler({ pool_mode: mode });
      const c = await loginApp(p);
      expect((await c.query("SELECT 1")).rows).toEqual([["1"]]);
      c.send(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]));
      const r = await c.readUntilClosed(5_000);
      expect(r.closed).toBe(true);
      expect(errors(r.messages).map((e) => [e.S, e.C])).toEqual([["FATAL", "08P01"]]);
      await nothingLeft(p);
    });
  }

  test("a client that sends half of a 4 MB Query and goes away: its server, which got that half, is closed, not handed on", async () => {
    const p = await pooler();
    const c = await loginApp(p);
    const header = Buffer.alloc(5);
    header[0] = 0x51;
    header.writeUInt32BE(4 + 4_000_000, 1);
    c.send(Buffer.concat([header, Buffer.from("SELECT 1 /*"), Buffer.alloc(2_000_000, "h")]));
    // the half reached the server (it is streamed, not held back): the pool's only server is busy with it
    await waitFor("the server is reading the query", () => [...p.core.servers].some((s) => s.state === "active"), 5_000);
    c.destroy();
    // the next client's query would otherwise be read by that server as the rest of the comment
    await nothingLeft(p);
  });
});

describe("silent logins and client limits", () => {
  test("client_login_timeout ends a client that sends nothing, and one that sends half a StartupMessage", async () => {
    const p = await pooler({ client_login_timeout: 1 });
    const silent = await WireClient.connect({ host: p.host, port: p.port });
    const half = await WireClient.connect({ host: p.host, port: p.port });
    half.send(msg.startup({ user: "postgres", database: "app" }).subarray(0, 12));
    const started = Date.now();
    const [a, b] = await Promise.all([silent.readUntilClosed(6_000), half.readUntilClosed(6_000)]);
    expect([a.closed, b.closed]).toEqual([true, true]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    await nothingLeft(p);
  });

  test("max_db_client_connections = 2: a third client of the database gets 53300, another database's client is served, and a place freed is taken", async () => {
    const p = await pooler({ max_db_client_connections: 2 });
    const a1 = await loginApp(p);
    await loginApp(p);
    const third = await refused(p, msg.startup({ user: "postgres", database: "app" }));
    expect(errors(third.messages).map((e) => [e.C, e.M])).toEqual([["53300", "no more connections allowed (max_db_client_connections)"]]);
    expect(third.closed).toBe(true);
    const other = await loginApp(p, { database: "postgres" });
    expect((await other.query("SELECT current_database()")).rows).toEqual([["postgres"]]);
    a1.destroy();
    await waitFor("a1 gone", () => p.core.clients.size === 2, 5_000);
    const again = await loginApp(p);
    expect((await again.query("SELECT 'in'")).rows).toEqual([["in"]]);
  });

  test("max_user_client_connections = 2: a third client of the user gets 53300, another user's client is served, and a place freed is taken", async () => {
    const p = await pooler({ max_user_client_connections: 2 });
    const a1 = await loginApp(p);
    await loginApp(p, { database: "postgres" });
    const third = await refused(p, msg.startup({ user: "postgres", database: "app" }));
    expect(errors(third.messages).map((e) => [e.C, e.M])).toEqual([["53300", "no more connections allowed (max_user_client_connections)"]]);
    expect(third.closed).toBe(true);
    const other = await loginApp(p, { user: "trustuser" });
    expect((await other.query("SELECT current_user")).rows).toEqual([["trustuser"]]);
    a1.destroy();
    await waitFor("a1 gone", () => p.core.clients.size === 2, 5_000);
    const again = await loginApp(p);
    expect((await again.query("SELECT 'in'")).rows).toEqual([["in"]]);
  });
});

describe("a streamed message to the admin console", () => {
  test("a 4 MB query to the console is answered from its prefix, its rest is skipped, and the console goes on", async () => {
    const p = await pooler({ admin_users: ["postgres"] });
    const c = await loginApp(p, { database: "pgbouncer" });
    c.send(msg.query(`SHOW VERSION /*${"v".repeat(4_000_000)}*/`));
    const got = await c.readUntilReady(10_000);
    expect(got.some((m) => m.type === "E" || m.type === "D")).toBe(true);
    // the skipped rest was not read as messages: the next command is answered
    const r = await c.query("SHOW VERSION");
    expect(r.errors).toEqual([]);
    expect(r.rows.length).toBe(1);
    c.destroy();
    await nothingLeft(p);
  });
});

describe("invalid startup parameter values (deferred as PgBouncer defers them)", () => {
  // PostgreSQL refuses them at login (FATAL 22023). pgbun, like PgBouncer, answers the login from the pool's values
  // and applies the client's on the server it is given: the value's error comes with the first query, in
  // PostgreSQL's words, and the session ends there; the server is not handed on with the value half applied
  const cases: Array<[string, Record<string, string>, string]> = [
    ["DateStyle=bogus", { DateStyle: "bogus" }, 'invalid value for parameter "DateStyle": "bogus"'],
    ["options=-c work_mem=nonsense", { options: "-c work_mem=nonsense" }, 'invalid value for parameter "work_mem": "nonsense"'],
  ];
  for (const mode of ["transaction", "session"]) {
    for (const [label, params, message] of cases) {
      test(`${mode} mode, ${label}: the first query gets PostgreSQL's 22023 and the session ends; the next client is served`, async () => {
        const p = await pooler({ pool_mode: mode });
        const c = await loginApp(p, params);
        c.send(msg.query("SELECT 1"));
        const r = await c.readUntilClosed(5_000);
        expect(r.closed).toBe(true);
        expect(errors(r.messages).map((e) => [e.C, e.M])).toEqual([["22023", message]]);
        expect(r.messages.some((m) => m.type === "D")).toBe(false);
        await nothingLeft(p);
      });
    }
  }
});

describe("startup values that are no UTF-8 reach PostgreSQL as the bytes they are", () => {
  /** A StartupMessage whose values are given as latin1 strings: each char one byte, so any byte can be sent. */
  function rawStartup(params: Record<string, string>): Buffer {
    const body = Buffer.from(Object.entries({ user: "postgres", database: "app", ...params }).map(([k, v]) => `${k}\0${v}\0`).join("") + "\0", "latin1");
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + body.length, 0);
    head.writeInt32BE(196608, 4);
    return Buffer.concat([head, body]);
  }
  async function rawLogin(p: TestPooler, params: Record<string, string>): Promise<{ c: WireClient; login: BackendMessage[] }> {
    const c = await WireClient.connect({ host: p.host, port: p.port });
    c.send(rawStartup(params));
    const login = await c.readUntil((m) => m.type === "Z" || m.type === "E", 5_000);
    expect(login.at(-1)!.type).toBe("Z");
    return { c, login };
  }

  for (const mode of ["transaction", "session"]) {
    test(`${mode} mode: search_path=a\\xffb is set as those bytes: PostgreSQL refuses them (22021) at the first query, as it refuses them in any SET`, async () => {
      const p = await pooler({ pool_mode: mode });
      const { c } = await rawLogin(p, { search_path: "a\xffb" });
      c.send(msg.query("SELECT encode(convert_to(current_setting('search_path'), 'UTF8'), 'hex')"));
      const r = await c.readUntilClosed(5_000);
      // before, the value was set as a\uFFFDb (61efbfbd62) and the query answered: another value than the client's
      expect(errors(r.messages).map((e) => [e.C, e.M])).toEqual([["22021", 'invalid byte sequence for encoding "UTF8": 0xff']]);
      expect(r.closed).toBe(true);
      await nothingLeft(p);
    });

    test(`${mode} mode: valid UTF-8 (search_path=schéma) is set unchanged`, async () => {
      const p = await pooler({ pool_mode: mode });
      const { c } = await rawLogin(p, { search_path: Buffer.from("schéma", "utf8").toString("latin1") });
      const r = await c.query("SELECT encode(convert_to(current_setting('search_path'), 'UTF8'), 'hex')");
      expect(r.errors).toEqual([]);
      expect(r.rows).toEqual([[Buffer.from("schéma").toString("hex")]]);
      c.destroy();
    });
  }

  test("application_name=caf\\xe9 (latin1): its byte becomes '?', as PostgreSQL makes it; the login and queries work", async () => {
    const p = await pooler();
    const { c, login } = await rawLogin(p, { application_name: "caf\xe9" });
    const status = login.filter((m) => m.type === "S").map((m) => m.body.toString("latin1")).find((s) => s.startsWith("application_name\0"));
    expect(status).toBe("application_name\0caf?\0");
    const r = await c.query("SELECT current_setting('application_name')");
    expect(r.rows).toEqual([["caf?"]]);
    c.destroy();
  });
});
