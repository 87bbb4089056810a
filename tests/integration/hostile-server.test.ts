// Integration: a server pgbun must distrust. A tiny fake PostgreSQL (Bun.listen, just enough protocol) behind a
// [databases] entry answers pgbun's login with a hostile SCRAM exchange (oversized nonce or message, huge iteration
// count, a nonce not extending pgbun's, bad base64, a wrong or missing server signature), an ErrorResponse without
// SQLSTATE (CVE-2026-6666 class), garbage NoticeResponses and bad lengths, before and after login. Each time the
// client gets a clear error, the fake server's connection is closed, and pgbun serves the next client.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { firstValue, pgConnect, usePostgres, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();

// ---- the fake server's messages ----

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

const auth = (code: number, data: Buffer = Buffer.alloc(0)) => message("R", Buffer.concat([int32(code), data]));
const SASL = auth(10, Buffer.from("SCRAM-SHA-256\0\0"));
const saslContinue = (text: string | Buffer) => auth(11, Buffer.from(text));
const saslFinal = (text: string) => auth(12, Buffer.from(text));
const AUTH_OK = auth(0);
const READY = message("Z", Buffer.from("I"));
const WELCOME = Buffer.concat([AUTH_OK, message("S", Buffer.from("server_version\x0016.0\0")), message("K", Buffer.concat([int32(4242), int32(7)])), READY]);
/** An ErrorResponse with only these fields (no SQLSTATE unless given). */
const error = (fields: Record<string, string>) =>
  message("E", Buffer.concat([...Object.entries(fields).map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]));
/** A NoticeResponse of bytes that are no fields at all: no terminators, a high byte, a field type of 0xff. */
const GARBAGE_NOTICE = message("N", Buffer.from([0xff, 0x41, 0x42, 0xc3, 0x28, 0x53]));

// ---- the fake server ----

/** What one connection of the fake server does: called with each whole message pgbun sends after its StartupMessage. */
type Script = (sock: Socket<Conn>, type: string, body: Buffer, step: number) => void;
interface Conn {
  buf: Buffer;
  started: boolean;
  step: number;
}

class FakeServer {
  listener!: TCPSocketListener<Conn>;
  script: Script = () => {};
  opened = 0;
  closed = 0;

  start(): void {
    const self = this;
    this.listener = Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(sock) {
          sock.data = { buf: Buffer.alloc(0), started: false, step: 0 };
          self.opened++;
        },
        data(sock, chunk) {
          const c = sock.data;
          c.buf = Buffer.concat([c.buf, chunk]);
          for (;;) {
            if (!c.started) {
              if (c.buf.length < 4 || c.buf.length < c.buf.readInt32BE(0)) return;
              const sslRequest = c.buf.readInt32BE(0) === 8 && c.buf.readInt32BE(4) === 80877103;
              c.buf = c.buf.subarray(c.buf.readInt32BE(0));
              if (sslRequest) {
                sock.write("N"); // no TLS here: the StartupMessage follows
                continue;
              }
              c.started = true;
              self.script(sock, "startup", Buffer.alloc(0), c.step++);
              continue;
            }
            if (c.buf.length < 5 || c.buf.length < 1 + c.buf.readInt32BE(1)) return;
            const len = c.buf.readInt32BE(1);
            const type = String.fromCharCode(c.buf[0]!);
            const body = c.buf.subarray(5, 1 + len);
            c.buf = c.buf.subarray(1 + len);
            if (type === "X") return;
            self.script(sock, type, body, c.step++);
          }
        },
        close() {
          self.closed++;
        },
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }
}

const fake = new FakeServer();
beforeAll(() => fake.start());
afterAll(() => fake.listener.stop(true));

/** pgbun in front of the fake server as database "hostile" (a password, so pgbun logs in with SCRAM or md5). */
function config(): Record<string, unknown> {
  return {
    // waiters get a transient login failure by query_wait_timeout at the latest (pgbun:backoff retries meanwhile)
    pgbun: { auth_type: "any", query_wait_timeout: 1, client_login_timeout: 20, server_connect_timeout: 30 },
    databases: {
      hostile: { host: "127.0.0.1", port: fake.port, user: "victim", password: "pw", dbname: "hostile" },
      app: { host: pg.host, port: pg.port, password: pg.password },
    },
  };
}

/** The client nonce of a SASLInitialResponse body (mechanism, length, "n,,n=*,r=<nonce>"). */
function clientNonce(body: Buffer): string {
  const nul = body.indexOf(0);
  const text = body.subarray(nul + 5).toString();
  return /r=([^,]*)/.exec(text)![1]!;
}

/** A SCRAM server that answers pgbun's client-first-message with `serverFirst(nonce)`. */
function scram(serverFirst: (nonce: string) => string | Buffer, after?: (sock: Socket<Conn>) => void): Script {
  return (sock, type, body, step) => {
    if (type === "startup") sock.write(SASL);
    else if (step === 1) sock.write(saslContinue(serverFirst(clientNonce(body))));
    else after?.(sock);
  };
}

/** Logs in through pgbun to the fake server: "ok" or the client's error ("SQLSTATE message"), and how long it took. */
async function attempt(f: PgbunFixture): Promise<{ got: string; ms: number }> {
  const t0 = Date.now();
  try {
    const c = await pgConnect(f.pb, { user: "victim", password: "x", database: "hostile" });
    try {
      await c.query("SELECT 1");
    } finally {
      await c.end().catch(() => {});
    }
    return { got: "ok", ms: Date.now() - t0 };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { got: `${e.code} ${e.message}`, ms: Date.now() - t0 };
  }
}

/** Runs `script` on the fake server: the client's error contains `expected`, the fake's connections are all closed, and pgbun serves PostgreSQL next. */
async function expectRefused(script: Script, expected: string): Promise<void> {
  fake.script = script;
  await withPgbun(pg, config(), async (f) => {
    const { got, ms } = await attempt(f);
    expect(got).toContain(expected);
    expect(ms).toBeLessThan(10_000);
    for (let i = 0; i < 100 && fake.closed < fake.opened; i++) await Bun.sleep(20);
    expect(fake.closed).toBe(fake.opened);
    // pgbun is alive and well: a client of a real PostgreSQL is served
    const c = await pgConnect(f.pb);
    try {
      expect(await firstValue(c, "SELECT 1")).toBe(1);
    } finally {
      await c.end();
    }
    expect(f.pb.logs()).not.toMatch(/uncaught|TypeError|RangeError/);
  });
}

const SALT = Buffer.from("0123456789abcdef").toString("base64");

describe("a hostile server's SCRAM exchange is refused with a clear error", () => {
  test("an oversized nonce (CVE-2026-6665 class)", async () => {
    await expectRefused(scram((n) => `r=${n}${"x".repeat(20_000)},s=${SALT},i=4096`), "SCRAM server-first-message too long");
  });

  test("a SCRAM message larger than any login message (1 MB): refused by its length, not buffered", async () => {
    await expectRefused(scram((n) => Buffer.alloc(1_000_000, `r=${n}`)), "exceeds");
  });

  test("an iteration count above the bound", async () => {
    await expectRefused(scram((n) => `r=${n}srv,s=${SALT},i=2000000000`), "SCRAM iteration count 2000000000 from the server is above pgbun's limit of 1000000");
  });

  test("a negative, zero or non-numeric iteration count", async () => {
    for (const i of ["-1", "0", "4096x", ""]) await expectRefused(scram((n) => `r=${n}srv,s=${SALT},i=${i}`), "invalid iteration count");
  });

  test("a nonce that does not extend pgbun's", async () => {
    await expectRefused(scram(() => `r=someoneelses,s=${SALT},i=4096`), "nonce mismatch");
    await expectRefused(scram((n) => `r=${n},s=${SALT},i=4096`), "nonce mismatch"); // nothing of the server's own
  });

  test("a salt that is not base64, or empty; attributes missing, out of order or extra", async () => {
    await expectRefused(scram((n) => `r=${n}srv,s=!!!,i=4096`), "invalid salt");
    await expectRefused(scram((n) => `r=${n}srv,s=,i=4096`), "invalid salt");
    await expectRefused(scram((n) => `s=${SALT},r=${n}srv,i=4096`), "malformed SCRAM message");
    await expectRefused(scram((n) => `r=${n}srv,s=${SALT}`), "malformed SCRAM message");
    await expectRefused(scram((n) => `r=${n}srv,s=${SALT},i=4096,x=1`), "garbage at end of server-first-message");
  });

  test("a wrong server signature, a SCRAM error, and AuthenticationOk without the server's proof", async () => {
    const first = (n: string) => `r=${n}srv,s=${SALT},i=4096`;
    await expectRefused(scram(first, (s) => s.write(saslFinal(`v=${Buffer.alloc(32).toString("base64")}`))), "invalid server signature");
    await expectRefused(scram(first, (s) => s.write(saslFinal("e=other-error"))), "SCRAM error from the server: other-error");
    await expectRefused(scram(first, (s) => s.write(WELCOME)), "in the middle of the SCRAM exchange");
  });

  test("a server that skips authentication: ReadyForQuery, ParameterStatus or BackendKeyData before AuthenticationOk", async () => {
    await expectRefused((s, type) => type === "startup" && s.write(READY), "expected authentication request from server, but received 'Z'");
    await expectRefused((s, type) => type === "startup" && s.write(WELCOME.subarray(AUTH_OK.length)), "expected authentication request from server, but received 'S'");
    // mid-SCRAM: the session's messages without the server's proof
    const first = (n: string) => `r=${n}srv,s=${SALT},i=4096`;
    await expectRefused(scram(first, (s) => s.write(WELCOME.subarray(AUTH_OK.length))), "expected authentication request from server, but received 'S'");
    await expectRefused((s, type) => type === "startup" && s.write(Buffer.concat([AUTH_OK, auth(3)])), "authentication request 3 from server after AuthenticationOk");
  });

  test("SASL messages out of order: SASLContinue or SASLFinal first, SASL twice", async () => {
    await expectRefused((s, type) => type === "startup" && s.write(saslContinue("r=x,s=y,i=1")), "AuthenticationSASLContinue without prior AuthenticationSASL");
    await expectRefused((s, type) => type === "startup" && s.write(saslFinal("v=AAAA")), "AuthenticationSASLFinal without prior AuthenticationSASLContinue");
    await expectRefused((s, type) => void (type === "startup" ? s.write(SASL) : s.write(SASL)), "in the middle of the SCRAM exchange");
  });
});

test("a high iteration count within the bound is computed off the event loop, and the exchange goes on", async () => {
  let clientFinal = "";
  fake.script = scram(
    (n) => `r=${n}srv,s=${SALT},i=200000`,
    (s) => s.write(error({ S: "FATAL", C: "28P01", M: 'password authentication failed for user "victim"' })),
  );
  const script = fake.script;
  fake.script = (s, type, body, step) => {
    if (step === 2) clientFinal = body.toString();
    script(s, type, body, step);
  };
  await withPgbun(pg, config(), async (f) => {
    // while PBKDF2 runs (a few hundred ms), pgbun serves a client of a real PostgreSQL
    const hostile = attempt(f);
    const t0 = Date.now();
    const c = await pgConnect(f.pb);
    expect(await firstValue(c, "SELECT 1")).toBe(1);
    await c.end();
    const servedIn = Date.now() - t0;
    expect((await hostile).got).toBe('28P01 password authentication failed for user "victim"');
    expect(clientFinal).toMatch(/^c=biws,r=[^,]+srv,p=[A-Za-z0-9+/]{43}=$/);
    expect(servedIn).toBeLessThan(5_000);
  });
});

describe("ErrorResponse without SQLSTATE, garbage notices and bad lengths", () => {
  test("during login, an ErrorResponse without SQLSTATE (CVE-2026-6666 class): the client gets XX000 and the server's text", async () => {
    fake.script = (s, type) => type === "startup" && s.write(error({ S: "FATAL", M: "no code here" }));
    await withPgbun(pg, config(), async (f) => {
      const { got } = await attempt(f);
      expect(got).toBe("XX000 server sent an error without SQLSTATE: no code here");
    });
    await expectRefused((s, type) => type === "startup" && s.write(error({})), "XX000 server sent an error without SQLSTATE: (no message)");
  });

  test("during login, garbage NoticeResponses are passed over: the login completes", async () => {
    fake.script = (s, type) => {
      if (type === "startup") s.write(Buffer.concat([GARBAGE_NOTICE, message("N", Buffer.alloc(0)), WELCOME]));
      else if (type === "Q") s.write(Buffer.concat([GARBAGE_NOTICE, message("C", Buffer.from("SELECT 0\0")), READY]));
    };
    await withPgbun(pg, config(), async (f) => {
      const c = await pgConnect(f.pb, { user: "victim", database: "hostile" });
      c.on("notice", () => {});
      try {
        await c.query("SELECT 1");
      } finally {
        await c.end();
      }
    });
  });

  test("during login, a message length below 4: the client gets the reason (not a bare timeout at server_connect_timeout)", async () => {
    const bad = Buffer.from([0x52, 0, 0, 0, 2]);
    await expectRefused((s, type) => type === "startup" && s.write(bad), "invalid message length");
  });

  test("after login, an ErrorResponse without SQLSTATE and a garbage notice: the client gets XX000, the server is not used again", async () => {
    fake.script = (s, type, body) => {
      if (type === "startup") s.write(WELCOME);
      // pgbun's own statements (parameter sync, reset) succeed; the client's query gets the hostile answer
      else if (type === "Q" && body.toString().startsWith("SELECT 1")) s.write(Buffer.concat([GARBAGE_NOTICE, error({ S: "ERROR", M: "codeless" }), READY]));
      else if (type === "Q") s.write(Buffer.concat([message("C", Buffer.from("SET\0")), READY]));
    };
    const cfg = config();
    await withPgbun(pg, { ...cfg, pgbun: { ...(cfg.pgbun as object), pool_mode: "transaction" } }, async (f) => {
      const closedBefore = fake.closed;
      const c = await pgConnect(f.pb, { user: "victim", database: "hostile" });
      c.on("notice", () => {});
      try {
        const e = await c.query("SELECT 1").then(
          () => null,
          (err: Error & { code?: string }) => err,
        );
        expect(`${e?.code} ${e?.message}`).toBe("XX000 server sent an error without SQLSTATE: codeless");
        // released after its ReadyForQuery, that server is closed instead of going back to the pool
        for (let i = 0; i < 100 && fake.closed === closedBefore; i++) await Bun.sleep(20);
        expect(fake.closed).toBe(closedBefore + 1);
        // the session goes on, on a new server
        const again = await c.query("SELECT 1").then(
          () => "ok",
          (err: Error & { code?: string }) => `${err.code}`,
        );
        expect(again).toBe("XX000");
      } finally {
        await c.end().catch(() => {});
      }
      const ok = await pgConnect(f.pb);
      expect(await firstValue(ok, "SELECT 1")).toBe(1);
      await ok.end();
    });
  });
});
