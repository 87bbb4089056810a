// Integration: auth_type hba (auth_hba_file) with real clients (pg, postgres.js, psql) in front of a real PostgreSQL:
// each method and line type picks the exchange it names, first match wins, local lines for the Unix socket only,
// reject and no entry as PostgreSQL words them (28000), start-up refuses a broken file, reload re-reads it (a broken
// one keeps the old rules).
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expectLog, firstValue, usePostgres, waitFor, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { authDir, jsLogin as jsLoginTo, passwordFailed as failed, pgLogin as pgLoginTo, psqlLogin as psqlLoginTo } from "../harness/auth.ts";
import { startPgbun } from "../harness/pgbun.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { errorFields, msg } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("hba");
const authFile = join(dir, "userlist.txt");
const hbaFile = join(dir, "pg_hba.conf");

/** The rules most tests use; line numbers matter to "first match wins". */
const RULES = [
  "# TYPE    DATABASE  USER                      ADDRESS        METHOD",
  "local     all       all                                      trust",
  "host      all       rejected_user             127.0.0.1/32   reject",
  "host      all       md5_user,nobody           127.0.0.1/32   md5",
  "host      all       scram_user                127.0.0.1/32   scram-sha-256",
  "host      all       plain_user                127.0.0.1/32   password",
  "host      trustdb   all                       127.0.0.1/32   trust",
  "hostssl   all       ssl_user                  0.0.0.0/0      md5",
  "hostnossl all       nossl_user                127.0.0.1 255.255.255.255 password",
  "host      all       md5_user                  127.0.0.1/32   trust", // never reached: line 4 wins
  "host      pgbouncer postgres                  127.0.0.1/32   md5",
].join("\n");

let md5Secret = "";
let scramSecret = "";
beforeAll(async () => {
  await pg.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_holder PASSWORD 'scram-pw'`);
  scramSecret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_holder'`);
  md5Secret = await pg.psql(`SELECT 'md5' || md5('md5-pw' || 'md5_user')`);
  writeFileSync(
    authFile,
    [`"md5_user" "${md5Secret}"`, `"scram_user" "${scramSecret}"`, `"plain_user" "plain-pw"`, `"rejected_user" "r-pw"`, `"ssl_user" "s-pw"`, `"nossl_user" "n-pw"`, `"postgres" "console-pw"`, `"local_user" "l-pw"`].join("\n"),
  );
  writeFileSync(hbaFile, RULES);
});

function config(more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pgbun: { auth_type: "hba", auth_hba_file: hbaFile, auth_file: authFile, admin_users: ["postgres"], ...more },
    databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password, dbname: "app" } },
  };
}

/** node-postgres login and a query (none on the console): "ok" or the error's SQLSTATE and message. */
const pgLogin = (to: { host: string; port: number }, user: string, password: string, database = "app") =>
  pgLoginTo(to, { user, password, database }, async (c) => {
    if (database !== "pgbouncer") expect(await firstValue(c, "SELECT 1")).toBe(1);
  });

const jsLogin = (f: PgbunFixture, user: string, password: string) => jsLoginTo(f.pb, { user, password });

/** psql with PGPASSWORD to a host (an address or a socket directory): "ok" or psql's error text. */
const psqlLogin = (host: string, port: number, user: string, password: string, database = "app") =>
  psqlLoginTo(["-h", host, "-p", String(port), "-U", user, "-d", database, "-Atc", "SELECT 1"], password);

/** The Authentication request pgbun answers a StartupMessage with (3 cleartext, 5 md5, 10 SASL, 0 ok), or the error. */
async function firstAnswer(f: PgbunFixture, user: string, database = "app"): Promise<number | string> {
  const c = await f.connect();
  c.send(msg.startup({ user, database }));
  const [m] = await c.readUntil((x) => x.type === "R" || x.type === "E");
  c.destroy();
  if (m!.type === "E") return `${errorFields(m!).C} ${errorFields(m!).M}`;
  return m!.body.readInt32BE(0);
}

const noEntry = (user: string, database = "app", host = "127.0.0.1") => `28000 no pg_hba.conf entry for host "${host}", user "${user}", database "${database}", no encryption`;

describe("auth_type hba", () => {
  test("each method asks for the exchange its line names; right passwords in, wrong ones and unknown users 28P01", async () => {
    await withPgbun(pg, config(), async (f) => {
      expect(await firstAnswer(f, "md5_user")).toBe(5);
      expect(await firstAnswer(f, "nobody")).toBe(5); // unknown users get the line's exchange too
      expect(await firstAnswer(f, "scram_user")).toBe(10);
      expect(await firstAnswer(f, "plain_user")).toBe(3);
      expect(await firstAnswer(f, "nossl_user")).toBe(3);
      expect(await firstAnswer(f, "local_user", "trustdb")).toBe(0);

      expect(await pgLogin(f.pb, "md5_user", "md5-pw")).toBe("ok");
      expect(await jsLogin(f, "scram_user", "scram-pw")).toBe("ok");
      expect(await psqlLogin(f.pb.host, f.pb.port, "plain_user", "plain-pw")).toBe("ok");
      expect(await pgLogin(f.pb, "nossl_user", "n-pw")).toBe("ok");
      expect(await pgLogin(f.pb, "md5_user", "wrong")).toBe(failed("md5_user"));
      expect(await jsLogin(f, "scram_user", "wrong")).toBe(failed("scram_user"));
      expect(await psqlLogin(f.pb.host, f.pb.port, "plain_user", "wrong")).toContain('password authentication failed for user "plain_user"');
      expect(await pgLogin(f.pb, "nobody", "md5-pw")).toBe(failed("nobody"));
      // trust: no password, but only auth_file's users (as auth_type trust)
      expect(await pgLogin(f.pb, "local_user", "", "trustdb")).toBe("ok");
      expect(await pgLogin(f.pb, "stranger", "", "trustdb")).toBe(failed("stranger"));
      // the admin console goes through the same rules
      expect(await pgLogin(f.pb, "postgres", "console-pw", "pgbouncer")).toBe("ok");
      expect(f.pb.logs()).not.toContain("md5-pw");
    });
  });

  test("reject and no matching line are 28000 worded as PostgreSQL's own (checked against it); hostssl needs TLS; a later line never wins", async () => {
    // PostgreSQL itself, given the same reject line, is the reference for the wording
    const pgHba = join(pg.dataDir, "pg_hba.conf");
    const original = await Bun.file(pgHba).text();
    // reject for one user, no line at all for others (the superuser keeps its line, for pg.psql)
    await Bun.write(pgHba, `host all rejected_user 127.0.0.1/32 reject\nhost all ${pg.superuser} 127.0.0.1/32 scram-sha-256\nlocal all all trust\n`);
    await pg.psql("SELECT pg_reload_conf()");
    await pg.psql("CREATE ROLE rejected_user LOGIN PASSWORD 'r-pw'; CREATE ROLE unlisted LOGIN PASSWORD 'x'");
    let fromPostgres: string;
    let noEntryFromPostgres: string;
    try {
      await Bun.sleep(200);
      fromPostgres = await pgLogin(pg, "rejected_user", "r-pw");
      noEntryFromPostgres = await pgLogin(pg, "unlisted", "x");
    } finally {
      await Bun.write(pgHba, original);
      await pg.psql("SELECT pg_reload_conf()");
    }
    expect(fromPostgres).toBe(`28000 pg_hba.conf rejects connection for host "127.0.0.1", user "rejected_user", database "app", no encryption`);
    expect(noEntryFromPostgres).toBe(noEntry("unlisted"));

    await withPgbun(pg, config(), async (f) => {
      expect(await pgLogin(f.pb, "rejected_user", "r-pw")).toBe(fromPostgres);
      expect(await jsLogin(f, "rejected_user", "r-pw")).toBe(fromPostgres);
      // no line for this user: the same answer whether or not it is a known one
      expect(await pgLogin(f.pb, "ssl_user", "s-pw")).toBe(noEntry("ssl_user"));
      expect(await pgLogin(f.pb, "unlisted", "x")).toBe(noEntryFromPostgres);
      expect(await psqlLogin(f.pb.host, f.pb.port, "unlisted", "x", "other")).toContain('no pg_hba.conf entry for host "127.0.0.1", user "unlisted", database "other", no encryption');
      // md5_user matches line 4 (md5) before line 10 (trust): a password is still asked
      expect(await firstAnswer(f, "md5_user")).toBe(5);
      expect(await pgLogin(f.pb, "md5_user", "")).not.toBe("ok");
      // refused without an exchange: no password was asked, so nothing is slowed or counted as a guess
      expect(await firstAnswer(f, "rejected_user")).toBe(`28000 pg_hba.conf rejects connection for host "127.0.0.1", user "rejected_user", database "app", no encryption`);
    });
  });

  test("local lines apply to Unix-socket clients, and only to them", async () => {
    const sock = await harnessTempDir("hba-unix");
    await withPgbun(pg, config({ unix_socket_dir: sock }), async (f) => {
      await expectLog(f.pb, "pgbun listening");
      await waitFor("socket", () => existsSync(join(sock, `.s.PGSQL.${f.pb.port}`)));
      // line 1 (local trust): no password over the socket, for a known user; an unknown one is refused
      expect(await psqlLogin(sock, f.pb.port, "md5_user", "")).toBe("ok");
      expect(await pgLogin({ host: sock, port: f.pb.port }, "local_user", "")).toBe("ok");
      expect(await pgLogin({ host: sock, port: f.pb.port }, "stranger", "")).toBe(failed("stranger"));
      // over TCP the local line is skipped: local_user has no host line
      expect(await pgLogin(f.pb, "local_user", "l-pw")).toBe(noEntry("local_user"));
    });
    // and a Unix-socket client no local line matches is told it came from [local]
    writeFileSync(join(dir, "tcp-only.conf"), "host all all 0.0.0.0/0 md5\n");
    await withPgbun(pg, config({ unix_socket_dir: sock, auth_hba_file: join(dir, "tcp-only.conf") }), async (f) => {
      await expectLog(f.pb, "pgbun listening");
      await waitFor("socket", () => existsSync(join(sock, `.s.PGSQL.${f.pb.port}`)));
      expect(await pgLogin({ host: sock, port: f.pb.port }, "md5_user", "md5-pw")).toBe(noEntry("md5_user", "app", "[local]"));
      expect(await pgLogin(f.pb, "md5_user", "md5-pw")).toBe("ok");
    });
  });

  test("start-up refuses a file it cannot take, with the file, line number and reason", async () => {
    const cases: Array<[string, RegExp]> = [
      ["host all all 127.0.0.1/32 md5\nlocal all all peer\n", /pg_hba\.bad\.conf:2: peer needs the Unix socket peer's credentials \(SO_PEERCRED\), which Bun cannot read/],
      ["host all all samenet md5\n", /pg_hba\.bad\.conf:1: samenet is not supported/],
      ["\n\nhost all +staff 127.0.0.1/32 md5\n", /pg_hba\.bad\.conf:3: group membership \(\+staff\) is not supported/],
    ];
    const bad = join(dir, "pg_hba.bad.conf");
    for (const [text, expected] of cases) {
      writeFileSync(bad, text);
      const err = await startPgbun({ config: config({ auth_hba_file: bad }), pg, timeoutMs: 15_000 }).then(
        async (pb) => {
          await pb.stop();
          return new Error("started");
        },
        (e: Error) => e,
      );
      expect(err.message).toMatch(expected);
    }
    const err = await startPgbun({ config: config({ auth_hba_file: "" }), pg, timeoutMs: 15_000 }).then(
      async (pb) => {
        await pb.stop();
        return new Error("started");
      },
      (e: Error) => e,
    );
    expect(err.message).toContain("auth_type hba needs auth_hba_file");
  });

  test("SIGHUP reads the file again; a broken file is logged with its line and the old rules stay", async () => {
    const file = join(dir, "reloaded.conf");
    writeFileSync(file, "host all all 127.0.0.1/32 md5\n");
    await withPgbun(pg, config({ auth_hba_file: file }), async (f) => {
      expect(await pgLogin(f.pb, "md5_user", "md5-pw")).toBe("ok");
      writeFileSync(file, "host all md5_user 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 md5\n");
      f.pb.proc.kill("SIGHUP");
      await waitFor("md5_user is rejected", async () => (await pgLogin(f.pb, "md5_user", "md5-pw")).startsWith("28000 pg_hba.conf rejects"), 10_000, 200);
      expect(await pgLogin(f.pb, "plain_user", "plain-pw")).toBe("ok");

      writeFileSync(file, "host all all 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 ident\n");
      f.pb.proc.kill("SIGHUP");
      await expectLog(f.pb, "auth_hba_file could not be loaded; the previous rules stay");
      expect(f.pb.logs()).toContain('"line":2');
      expect(f.pb.logs()).toContain("ident is not supported");
      // the previous rules: md5_user is still rejected
      expect(await pgLogin(f.pb, "md5_user", "md5-pw")).toStartWith("28000 pg_hba.conf rejects");

      writeFileSync(file, "host all all 127.0.0.1/32 password\n");
      f.pb.proc.kill("SIGHUP");
      await waitFor("md5_user is let in again", async () => (await pgLogin(f.pb, "md5_user", "md5-pw")) === "ok", 10_000, 200);
    });
  });
});
