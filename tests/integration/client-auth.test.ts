// Integration: client authentication by pgbun:auth with real clients (pg, postgres.js, psql) in front of a real
// PostgreSQL: each auth_type's success, wrong password and unknown user (one answer for both), md5 and SCRAM secrets
// taken from PostgreSQL itself, the admin console needing the password, reload of auth_file, hostile login messages.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { firstValue, pgConnect, usePostgres, waitFor, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { authDir, jsLogin as jsLoginTo, passwordFailed as failed, pgLogin as pgLoginTo, psqlLogin as psqlLoginTo } from "../harness/auth.ts";
import { TEST_ROLES } from "../harness/postgres.ts";
import { errorFields, msg, WireClient, type BackendMessage } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("auth");
const authFile = join(dir, "userlist.txt");

/** Secrets as PostgreSQL stores them (password_encryption md5 and scram-sha-256), so they are not pgbun's own. */
let md5Secret = "";
let scramSecret = "";
beforeAll(async () => {
  await pg.psql(`SET password_encryption = 'md5'; CREATE ROLE md5_holder PASSWORD 'md5-pw'`);
  await pg.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_holder PASSWORD 'scram-pw'`);
  md5Secret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = 'md5_holder'`);
  scramSecret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_holder'`);
  expect(md5Secret).toMatch(/^md5[0-9a-f]{32}$/);
  expect(scramSecret).toStartWith("SCRAM-SHA-256$");
  // an md5 secret is md5(password + user name): the holder's, renamed, would not match; compute it for md5_user
  md5Secret = await pg.psql(`SELECT 'md5' || md5('md5-pw' || 'md5_user')`);
  writeAuthFile();
});

/**
 * Clients log in to pgbun as these users; every server login is as the superuser with the [databases] password,
 * so what a client is let in with is decided by pgbun alone. `plain_user`'s pgbun password differs from the server's.
 */
function writeAuthFile(extra = ""): void {
  writeFileSync(
    authFile,
    [
      `;; userlist.txt as PgBouncer reads it`,
      `"plain_user" "plain-pw"`,
      `"md5_user" "${md5Secret}"`,
      `"scram_user" "${scramSecret}"`,
      `"postgres" "console-pw"`,
      `"quo""ted" "q-pw"`,
      extra,
    ].join("\n"),
  );
}

function config(authType: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pgbun: { auth_type: authType, auth_file: authFile, admin_users: ["postgres"], ...more },
    databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } },
  };
}

/** Logs in with node-postgres and runs a query (current_user, or nothing on the console): "ok" or SQLSTATE and message. */
const pgLogin = (f: PgbunFixture, user: string, password: string, database = "app") =>
  pgLoginTo(f.pb, { user, password, database }, async (c) => {
    const v = database === "app" ? await firstValue(c, "SELECT current_user") : "console";
    expect(v).toBe(database === "app" ? pg.superuser : "console");
  });

/** Logs in with postgres.js and runs a query: "ok" or SQLSTATE and message. */
const jsLogin = (f: PgbunFixture, user: string, password: string) =>
  jsLoginTo(f.pb, { user, password }, async (sql) => {
    const [row] = await sql`SELECT 1 AS one`;
    expect(row!.one).toBe(1);
  });

/** psql -c with PGPASSWORD: "ok" or psql's error text. */
const psqlLogin = (f: PgbunFixture, user: string, password: string, database = "app", sql = "SELECT 1") =>
  psqlLoginTo(["-h", f.pb.host, "-p", String(f.pb.port), "-U", user, "-d", database, "-Atc", sql], password);

describe("auth_type plain (cleartext password)", () => {
  test("each kind of secret lets its password in; a wrong password and an unknown user get the same 28P01", async () => {
    await withPgbun(pg, config("plain"), async (f) => {
      expect(await pgLogin(f, "plain_user", "plain-pw")).toBe("ok");
      expect(await pgLogin(f, "md5_user", "md5-pw")).toBe("ok");
      expect(await pgLogin(f, "scram_user", "scram-pw")).toBe("ok");
      expect(await pgLogin(f, 'quo"ted', "q-pw")).toBe("ok");
      expect(await jsLogin(f, "plain_user", "plain-pw")).toBe("ok");
      // the server's password is not pgbun's: pgbun decides
      expect(await pgLogin(f, "plain_user", pg.password)).toBe(failed("plain_user"));
      expect(await pgLogin(f, "scram_user", "scram-pw!")).toBe(failed("scram_user"));
      expect(await pgLogin(f, "nobody", "plain-pw")).toBe(failed("nobody"));
      expect(await pgLogin(f, "plain_user", "")).toMatch(/^(28P01 password authentication failed for user "plain_user"|undefined .*)$/);
      expect(f.pb.logs()).not.toContain("plain-pw");
    });
  });
});

describe("auth_type md5", () => {
  test("plaintext and md5 secrets with pg, postgres.js and psql; wrong password, unknown user alike", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      expect(await pgLogin(f, "plain_user", "plain-pw")).toBe("ok");
      expect(await pgLogin(f, "md5_user", "md5-pw")).toBe("ok");
      expect(await jsLogin(f, "md5_user", "md5-pw")).toBe("ok");
      expect(await psqlLogin(f, "md5_user", "md5-pw")).toBe("ok");
      expect(await pgLogin(f, "md5_user", "md5-pw2")).toBe(failed("md5_user"));
      expect(await jsLogin(f, "md5_user", "wrong")).toBe(failed("md5_user"));
      expect(await pgLogin(f, "nobody", "md5-pw")).toBe(failed("nobody"));
      expect(await psqlLogin(f, "nobody", "x")).toContain('password authentication failed for user "nobody"');
    });
  });

  test("a SCRAM secret is served with SCRAM, as PgBouncer does", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      expect(await pgLogin(f, "scram_user", "scram-pw")).toBe("ok");
      expect(await pgLogin(f, "scram_user", "nope")).toBe(failed("scram_user"));
    });
  });
});

describe("auth_type scram-sha-256", () => {
  test("plaintext and SCRAM secrets with pg, postgres.js and psql; wrong password, unknown user (mock exchange) alike", async () => {
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      for (const [user, password] of [["scram_user", "scram-pw"], ["plain_user", "plain-pw"]] as const) {
        expect(await pgLogin(f, user, password)).toBe("ok");
        expect(await jsLogin(f, user, password)).toBe("ok");
        expect(await psqlLogin(f, user, password)).toBe("ok");
        expect(await pgLogin(f, user, password + "x")).toBe(failed(user));
        expect(await jsLogin(f, user, "x")).toBe(failed(user));
      }
      expect(await pgLogin(f, "nobody", "scram-pw")).toBe(failed("nobody"));
      expect(await jsLogin(f, "nobody", "scram-pw")).toBe(failed("nobody"));
      expect(await psqlLogin(f, "nobody", "x")).toContain('password authentication failed for user "nobody"');
      // an md5 secret cannot serve SCRAM: refused like a wrong password
      expect(await pgLogin(f, "md5_user", "md5-pw")).toBe(failed("md5_user"));
    });
  });

  test("an unknown user's exchange looks like a known one's: same salt each time, same messages, fails only at the proof", async () => {
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      const first = async (user: string) => {
        const c = await f.connect();
        c.send(msg.startup({ user, database: "app" }));
        const [sasl] = await c.readUntil((m) => m.type === "R");
        expect(sasl!.body.readInt32BE(0)).toBe(10); // AuthenticationSASL
        expect(sasl!.body.subarray(4).toString()).toBe("SCRAM-SHA-256\0\0");
        c.send(saslInitial("n,,n=,r=abcdefghijklmnop"));
        const [cont] = await c.readUntil((m) => m.type === "R");
        expect(cont!.body.readInt32BE(0)).toBe(11); // AuthenticationSASLContinue
        const attrs = cont!.body.subarray(4).toString();
        expect(attrs).toMatch(/^r=abcdefghijklmnop[A-Za-z0-9+/=]+,s=[A-Za-z0-9+/=]+,i=\d+$/);
        c.destroy();
        return attrs.replace(/^r=[^,]*,/, "");
      };
      const unknown = await first("nobody");
      expect(await first("nobody")).toBe(unknown); // a random salt per try would tell it apart
      expect(unknown).toEndWith(",i=4096");
      expect(await first("scram_user")).toEndWith(`,i=${scramSecret.split("$")[1]!.split(":")[0]}`);
    });
  });
});

describe("auth_type trust and any", () => {
  test("trust asks no password but lets only auth_file's users in; any lets anyone in", async () => {
    await withPgbun(pg, config("trust"), async (f) => {
      expect(await pgLogin(f, "plain_user", "whatever")).toBe("ok");
      expect(await pgLogin(f, "nobody", "whatever")).toBe(failed("nobody"));
    });
    await withPgbun(pg, config("any"), async (f) => {
      expect(await pgLogin(f, "nobody", "whatever")).toBe("ok");
    });
  });
});

describe("the admin console", () => {
  test("admin_users log in to the console with their auth_file password only", async () => {
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      expect(await psqlLogin(f, "postgres", "console-pw", "pgbouncer", "SHOW VERSION")).toBe("ok");
      expect(await psqlLogin(f, "postgres", pg.password, "pgbouncer", "SHOW VERSION")).toContain('password authentication failed for user "postgres"');
      expect(await pgLogin(f, "postgres", "wrong", "pgbouncer")).toBe(failed("postgres"));
    });
  });
});

describe("reload", () => {
  test("SIGHUP reads auth_file again: a user added to it gets in", async () => {
    try {
      await withPgbun(pg, config("md5"), async (f) => {
        expect(await pgLogin(f, "late_user", "late-pw")).toBe(failed("late_user"));
        writeAuthFile(`"late_user" "late-pw"`);
        f.pb.proc.kill("SIGHUP");
        await waitFor("the new user is accepted", async () => (await pgLogin(f, "late_user", "late-pw")) === "ok", 10_000, 200);
      });
    } finally {
      writeAuthFile();
    }
  });
});

describe("server login with the client's credentials", () => {
  test("an entry without a password logs in to PostgreSQL as the client's user with its auth_file password (plaintext)", async () => {
    const { md5, password } = TEST_ROLES;
    writeAuthFile(`"${md5.user}" "${md5.password}"\n"${password.user}" "${password.password}"`);
    try {
      const cfg = { pgbun: { auth_type: "scram-sha-256", auth_file: authFile }, databases: { "*": { host: pg.host, port: pg.port } } };
      await withPgbun(pg, cfg, async (f) => {
        for (const role of [md5, password]) {
          const c = await pgConnect(f.pb, { user: role.user, password: role.password });
          try {
            expect(await firstValue(c, "SELECT current_user")).toBe(role.user);
          } finally {
            await c.end();
          }
        }
        // a SCRAM secret is no password pgbun can log in with (that needs the client's keys): PostgreSQL's own refusal
        expect(await pgLogin(f, "scram_user", "scram-pw")).not.toBe("ok");
      });
    } finally {
      writeAuthFile();
    }
  });
});

/** A SASLInitialResponse choosing SCRAM-SHA-256 with `data`. */
function saslInitial(data: string, mechanism = "SCRAM-SHA-256"): Buffer {
  const mech = Buffer.from(mechanism + "\0");
  const d = Buffer.from(data);
  const b = Buffer.alloc(1 + 4 + mech.length + 4 + d.length);
  b[0] = 0x70;
  b.writeInt32BE(b.length - 1, 1);
  mech.copy(b, 5);
  b.writeInt32BE(d.length, 5 + mech.length);
  d.copy(b, 9 + mech.length);
  return b;
}

/** A 'p' message with `body`. */
function passwordMessage(body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = 0x70;
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

describe("hostile login messages", () => {
  async function refusal(f: PgbunFixture, user: string, send: (c: WireClient, request: BackendMessage) => void | Promise<void>): Promise<string> {
    const c = await f.connect();
    c.send(msg.startup({ user, database: "app" }));
    const [request] = await c.readUntil((m) => m.type === "R");
    await send(c, request!);
    const got = await c.readUntil((m) => m.type === "E" || m.type === "Z", 10_000).catch((err) => (err as { received?: BackendMessage[] }).received ?? []);
    const e = got.find((m) => m.type === "E");
    if (!e) return `no error: ${got.map((m) => m.type).join("")}`;
    const fields = errorFields(e);
    return `${fields.C} ${fields.M}`;
  }

  test("malformed SCRAM, a wrong mechanism, the wrong message type, a huge length, an unterminated password: 08P01, and pgbun goes on", async () => {
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      expect(await refusal(f, "scram_user", (c) => c.send(saslInitial("garbage")))).toBe("08P01 malformed SCRAM message");
      expect(await refusal(f, "nobody", (c) => c.send(saslInitial("p=tls-server-end-point,,n=,r=x")))).toBe("08P01 malformed SCRAM message");
      expect(await refusal(f, "scram_user", (c) => c.send(saslInitial("n,,n=,r=x", "SCRAM-SHA-1")))).toBe(
        "08P01 client selected an invalid SASL authentication mechanism",
      );
      expect(await refusal(f, "scram_user", (c) => c.send(passwordMessage(Buffer.from("SCRAM"))))).toBe("08P01 malformed SCRAM message");
      expect(await refusal(f, "scram_user", (c) => c.send(msg.query("SELECT 1")))).toBe("08P01 expected password response, got message type 81");
      const huge = Buffer.alloc(5);
      huge[0] = 0x70;
      huge.writeInt32BE(0x7fffffff, 1);
      expect(await refusal(f, "scram_user", (c) => c.send(huge))).toBe("08P01 invalid message length");
      // a client-final with a nonce of its own
      expect(
        await refusal(f, "scram_user", async (c) => {
          c.send(saslInitial("n,,n=,r=abc"));
          await c.readUntil((m) => m.type === "R");
          c.send(passwordMessage(Buffer.from("c=biws,r=other,p=AAAA")));
        }),
      ).toBe("08P01 SCRAM nonce mismatch");
      expect(await pgLogin(f, "scram_user", "scram-pw")).toBe("ok");
      expect(f.pb.logs()).not.toContain("failed during login");
    });
  });

  test("a client that pipelines more than a login may buffer behind its StartupMessage is paused, then served in full", async () => {
    await withPgbun(pg, config("trust"), async (f) => {
      const c = await f.connect();
      const queries = Array.from({ length: 100 }, (_, i) => msg.query(`SELECT ${i}, '${"x".repeat(1000)}'`));
      c.send(Buffer.concat([msg.startup({ user: "plain_user", database: "app" }), ...queries])); // ~100 KB
      const got = await c.readUntil((m) => m.type === "Z" && c.history.filter((h) => h.type === "Z").length === 101, 20_000);
      expect(got.filter((m) => m.type === "E")).toEqual([]);
      expect(got.filter((m) => m.type === "C").length).toBe(100);
      // its socket reads again: a query sent now is answered
      c.send(msg.query("SELECT 'after'"));
      expect((await c.readUntil((m) => m.type === "Z", 3_000)).some((m) => m.type === "D")).toBe(true);
    });
  });

  test("an unterminated PasswordMessage is 08P01", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      expect(await refusal(f, "md5_user", (c) => c.send(passwordMessage(Buffer.from("md5abc"))))).toBe("08P01 invalid password packet");
    });
  });

  test("a client that goes away while asked for its password is no plugin fault; client_login_timeout ends a silent one", async () => {
    await withPgbun(pg, config("md5", { client_login_timeout: 1 }), async (f) => {
      const gone = await f.connect();
      gone.send(msg.startup({ user: "md5_user", database: "app" }));
      await gone.readUntil((m) => m.type === "R");
      gone.destroy();
      const silent = await f.connect();
      silent.send(msg.startup({ user: "md5_user", database: "app" }));
      await silent.readUntil((m) => m.type === "R");
      await waitFor("the silent client is closed", () => silent.isClosed, 5_000);
      expect(await pgLogin(f, "md5_user", "md5-pw")).toBe("ok");
      expect(f.pb.logs()).not.toContain("failed during login");
    });
  });
});

test("a wrong password does not log the password or the secret", async () => {
  await withPgbun(pg, config("plain"), async (f) => {
    expect(await pgLogin(f, "md5_user", "typo-secret-123")).toBe(failed("md5_user"));
    await waitFor("the failure is logged", () => f.pb.logs().includes("client authentication failed"));
    expect(f.pb.logs()).not.toContain("typo-secret-123");
    expect(f.pb.logs()).not.toContain(md5Secret);
  });
});
