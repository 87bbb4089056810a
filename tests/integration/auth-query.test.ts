// Integration: auth_query through auth_user / auth_dbname against a real PostgreSQL: md5 and SCRAM roles found, a
// wrong password, an unknown user, a role past VALID UNTIL and a NOLOGIN role all get the same 28P01, a changed
// password counts at the next login, an unknown user never gets in as auth_user (CVE-2015-6817), and a client's
// search_path cannot pick which pg_authid the lookup reads (CVE-2025-12819).
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { pgConnect, usePostgres, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { authDir, jsLogin as jsLoginTo, passwordFailed as failed, pgLogin as pgLoginTo, psqlLogin as psqlLoginTo } from "../harness/auth.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("aq");
const authFile = join(dir, "userlist.txt");

/** The hostile schema: a table named pg_authid that says victim_aq's password is attacker-pw. */
const EVIL_SETUP = `
  CREATE SCHEMA evil;
  CREATE TABLE evil.pg_authid (rolname name, rolpassword text, rolvaliduntil timestamptz, rolcanlogin bool);
  INSERT INTO evil.pg_authid VALUES ('victim_aq', 'attacker-pw', NULL, true), ('ghost_aq', 'attacker-pw', NULL, true);
  GRANT USAGE ON SCHEMA evil TO PUBLIC;
  GRANT SELECT ON evil.pg_authid TO PUBLIC`;

beforeAll(async () => {
  await pg.psql(`SET password_encryption = 'md5'; CREATE ROLE aq_md5 LOGIN PASSWORD 'md5-pw'`);
  await pg.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE aq_scram LOGIN PASSWORD 'scram-pw'`);
  await pg.psql(`CREATE ROLE aq_expired LOGIN PASSWORD 'exp-pw' VALID UNTIL '2001-01-01'`);
  await pg.psql(`CREATE ROLE aq_future LOGIN PASSWORD 'fut-pw' VALID UNTIL '2999-01-01'`);
  await pg.psql(`CREATE ROLE aq_nologin NOLOGIN PASSWORD 'nl-pw'`);
  await pg.psql(`CREATE ROLE victim_aq LOGIN PASSWORD 'victim-pw'`);
  await pg.psql(`CREATE ROLE aq_changing LOGIN PASSWORD 'first-pw'`);
  await pg.psql(`CREATE ROLE aq_auth LOGIN SUPERUSER PASSWORD 'auth-pw'`);
  await pg.psql(EVIL_SETUP, "app");
  writeAuthFile("auth-pw");
});

/** auth_user (aq_auth) logs in with its auth_file password (the entry logs in as someone else); nobody else is in auth_file. */
function writeAuthFile(password: string): void {
  writeFileSync(authFile, `"aq_auth" "${password}"\n`);
}

/** Clients' server logins are the superuser's with the entry's password: what a client is let in with is pgbun's call. */
function config(authType: string, more: Record<string, unknown> = {}, databases: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pgbun: { auth_type: authType, auth_file: authFile, auth_user: "aq_auth", ...more },
    databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password }, ...databases },
  };
}

const pgLogin = (f: PgbunFixture, user: string, password: string, extra: Record<string, unknown> = {}) =>
  pgLoginTo(f.pb, { user, password, database: "app", ...extra });
const jsLogin = (f: PgbunFixture, user: string, password: string, connection: Record<string, string> = {}) => jsLoginTo(f.pb, { user, password, connection });
const psqlLogin = (f: PgbunFixture, user: string, password: string) =>
  psqlLoginTo(["-h", f.pb.host, "-p", String(f.pb.port), "-U", user, "-d", "app", "-Atc", "SELECT 1"], password);

describe("auth_query", () => {
  test("md5 and SCRAM roles not in auth_file log in with their PostgreSQL passwords; wrong and unknown are one 28P01", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      expect(await pgLogin(f, "aq_md5", "md5-pw")).toBe("ok");
      expect(await psqlLogin(f, "aq_md5", "md5-pw")).toBe("ok");
      expect(await jsLogin(f, "aq_scram", "scram-pw")).toBe("ok"); // a SCRAM secret runs SCRAM under md5
      expect(await pgLogin(f, "aq_future", "fut-pw")).toBe("ok");
      expect(await pgLogin(f, "aq_md5", "wrong")).toBe(failed("aq_md5"));
      expect(await pgLogin(f, "no_such_role", "md5-pw")).toBe(failed("no_such_role"));
      // auth_file's own users do not need the query
      expect(await pgLogin(f, "aq_auth", "auth-pw")).toBe("ok");
      expect(f.pb.logs()).not.toContain("md5-pw");
    });
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      expect(await pgLogin(f, "aq_scram", "scram-pw")).toBe("ok");
      expect(await jsLogin(f, "aq_scram", "wrong")).toBe(failed("aq_scram"));
      expect(await psqlLogin(f, "no_such_role", "x")).toContain('password authentication failed for user "no_such_role"');
    });
  });

  test("auth_type hba: each line's method runs against the secret auth_query found", async () => {
    const hba = join(dir, "pg_hba.conf");
    writeFileSync(hba, "host all aq_md5 127.0.0.1/32 md5\nhost all aq_scram 127.0.0.1/32 password\nhost all all 127.0.0.1/32 scram-sha-256\n");
    await withPgbun(pg, config("hba", { auth_hba_file: hba }), async (f) => {
      expect(await pgLogin(f, "aq_md5", "md5-pw")).toBe("ok");
      expect(await psqlLogin(f, "aq_scram", "scram-pw")).toBe("ok");
      expect(await jsLogin(f, "aq_future", "fut-pw")).toBe("ok");
      expect(await pgLogin(f, "aq_md5", "wrong")).toBe(failed("aq_md5"));
      expect(await jsLogin(f, "aq_expired", "exp-pw")).toBe(failed("aq_expired"));
      expect(await jsLogin(f, "no_such_role", "x")).toBe(failed("no_such_role"));
    });
  });

  test("user names are quoted: quotes and backslashes find their role, an injection attempt finds nothing", async () => {
    await pg.psql(`CREATE ROLE "o'ne\\il" LOGIN PASSWORD 'odd-pw'`);
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      expect(await jsLogin(f, "o'ne\\il", "odd-pw")).toBe("ok");
      // with the name pasted into the query unquoted, this would read every role
      expect(await jsLogin(f, "x' OR rolname <> '", "odd-pw")).toBe(failed("x' OR rolname <> '"));
      expect(await jsLogin(f, "x\\' OR true --", "odd-pw")).toBe(failed("x\\' OR true --"));
    });
  });

  test("a password past VALID UNTIL and a NOLOGIN role are refused as a wrong password (the default query honours them)", async () => {
    // PostgreSQL itself refuses them too
    expect(await pgConnect(pg, { user: "aq_expired", password: "exp-pw", database: "app" }).then((c) => c.end().then(() => "ok"), (e: { code?: string }) => e.code)).toBe("28P01");
    await withPgbun(pg, config("md5"), async (f) => {
      expect(await pgLogin(f, "aq_expired", "exp-pw")).toBe(failed("aq_expired"));
      expect(await jsLogin(f, "aq_expired", "exp-pw")).toBe(failed("aq_expired"));
      expect(await pgLogin(f, "aq_nologin", "nl-pw")).toBe(failed("aq_nologin"));
    });
  });

  test("a changed password counts at the next login (nothing is cached)", async () => {
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      expect(await pgLogin(f, "aq_changing", "first-pw")).toBe("ok");
      await pg.psql(`ALTER ROLE aq_changing PASSWORD 'second-pw'`);
      expect(await pgLogin(f, "aq_changing", "first-pw")).toBe(failed("aq_changing"));
      expect(await pgLogin(f, "aq_changing", "second-pw")).toBe("ok");
      await pg.psql(`ALTER ROLE aq_changing VALID UNTIL '2001-01-01'`);
      expect(await pgLogin(f, "aq_changing", "second-pw")).toBe(failed("aq_changing"));
    });
  });

  test("an unknown user never gets in as auth_user (CVE-2015-6817), whatever the method", async () => {
    for (const authType of ["md5", "scram-sha-256", "plain", "trust"]) {
      await withPgbun(pg, config(authType), async (f) => {
        // with auth_user's own password
        expect(await pgLogin(f, "ghost_user", "auth-pw")).toBe(failed("ghost_user"));
        expect(await jsLogin(f, "ghost_user", "auth-pw")).toBe(failed("ghost_user"));
      });
    }
  });

  test("a client's search_path does not reach the lookup: a hostile evil.pg_authid is never read (CVE-2025-12819)", async () => {
    // the attack is real: with that search_path, the default auth_query reads the hostile table
    const direct = new Client({ host: pg.host, port: pg.port, user: pg.superuser, password: pg.password, database: "app", options: "-c search_path=evil,pg_catalog" });
    await direct.connect();
    try {
      const r = await direct.query(`SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname = 'victim_aq' AND rolcanlogin`);
      expect(r.rows[0].rolpassword).toBe("attacker-pw");
    } finally {
      await direct.end();
    }
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      // search_path in the StartupMessage (postgres.js) and in options (node-postgres)
      expect(await jsLogin(f, "victim_aq", "attacker-pw", { search_path: "evil, pg_catalog" })).toBe(failed("victim_aq"));
      expect(await pgLogin(f, "victim_aq", "attacker-pw", { options: "-c search_path=evil,pg_catalog" })).toBe(failed("victim_aq"));
      // ghost_aq exists only in the hostile table
      expect(await jsLogin(f, "ghost_aq", "attacker-pw", { search_path: "evil, pg_catalog" })).toBe(failed("ghost_aq"));
      // the real password still works with the same startup packet
      expect(await jsLogin(f, "victim_aq", "victim-pw", { search_path: "evil, pg_catalog" })).toBe("ok");
    });
  });

  test("auth_dbname names the [databases] entry the lookup connects to; a lookup that cannot run is no login", async () => {
    const authdb = { host: pg.host, port: pg.port, dbname: "postgres" };
    await withPgbun(pg, config("md5", { auth_dbname: "authdb" }, { authdb }), async (f) => {
      expect(await pgLogin(f, "aq_md5", "md5-pw")).toBe("ok");
      expect(f.pb.logs()).toMatch(/"database":"postgres"/);
    });
    // auth_user cannot log in (a wrong password in auth_file): an error, not a login, and the same for every user
    writeAuthFile("not-the-password");
    try {
      await withPgbun(pg, config("md5"), async (f) => {
        expect(await pgLogin(f, "aq_md5", "md5-pw")).toBe("08006 authentication lookup failed: pgbun could not run auth_query");
        expect(await pgLogin(f, "no_such_role", "md5-pw")).toBe("08006 authentication lookup failed: pgbun could not run auth_query");
        expect(f.pb.logs()).toContain("auth_query lookup failed");
        expect(f.pb.logs()).not.toContain("not-the-password");
      });
    } finally {
      writeAuthFile("auth-pw");
    }
  });
});
