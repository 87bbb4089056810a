// Integration: SCRAM and md5 end to end without plaintext (issue 11 item 2): auth_file holds PostgreSQL's own secrets,
// the [databases] entry no password, and pgbun logs in to PostgreSQL with the keys a client's SCRAM proof gave (or
// the md5 secret); PostgreSQL's log shows the method it checked. Where no usable credentials exist the client gets
// PgBouncer's "wrong password type", at once.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { firstValue, pgConnect, usePostgres, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { authDir, pgLogin as pgLoginTo, psql } from "../harness/auth.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("scram-pt");
const authFile = join(dir, "userlist.txt");
const aqFile = join(dir, "userlist-aq.txt");

const PW = "pt-secret-pw";
const secretOf = (role: string) => pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${role}'`);

beforeAll(async () => {
  // SCRAM roles (the harness's catch-all pg_hba line is scram-sha-256), md5 roles with an md5 line of their own
  const scram = ["pt_scram", "pt_psql", "pt_js", "pt_salt", "pt_salt_holder", "pt_nokeys", "pt_md5_on_scram"];
  for (const role of scram) await pg.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${role} LOGIN PASSWORD '${PW}'`);
  await pg.psql(`SET password_encryption = 'md5'; CREATE ROLE pt_md5 LOGIN PASSWORD '${PW}'`);
  // auth_query: only auth_user is in its auth_file; the others' secrets come from pg_authid at login
  await pg.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE pt_aq_scram LOGIN PASSWORD '${PW}'`);
  await pg.psql(`SET password_encryption = 'md5'; CREATE ROLE pt_aq_md5 LOGIN PASSWORD '${PW}'`);
  await pg.psql(`CREATE ROLE pt_aq_auth LOGIN SUPERUSER PASSWORD 'aq-auth-pw'`);
  writeFileSync(aqFile, `"pt_aq_auth" "aq-auth-pw"\n`);
  const hba = join(pg.dataDir, "pg_hba.conf");
  const rules = await readFile(hba, "utf8");
  await writeFile(hba, rules.replace(/^(local .*\n)/m, `$1host all pt_md5 127.0.0.1/32 md5\nhost all pt_aq_md5 127.0.0.1/32 md5\n`));
  await appendFile(join(pg.dataDir, "postgresql.conf"), "\nlog_connections = on\n");
  await pg.psql("SELECT pg_reload_conf()");
  await Bun.sleep(300); // the postmaster rereads its files asynchronously

  const lines = [];
  for (const role of ["pt_scram", "pt_psql", "pt_js", "pt_nokeys", "pt_md5"]) lines.push(`"${role}" "${await secretOf(role)}"`);
  // the same password under another salt: pgbun lets the client in, PostgreSQL's secret is not this one
  lines.push(`"pt_salt" "${await secretOf("pt_salt_holder")}"`);
  // an md5 secret for a role PostgreSQL checks with SCRAM
  lines.push(`"pt_md5_on_scram" "${await pg.psql(`SELECT 'md5' || md5('${PW}' || 'pt_md5_on_scram')`)}"`);
  writeFileSync(authFile, lines.join("\n") + "\n");
  expect(readFileSync(authFile, "utf8")).not.toContain(PW); // no plaintext anywhere pgbun reads
});

/** Every server login without a password: the client's own user, credentials from auth_file only. */
function config(authType: string): Record<string, unknown> {
  return { pgbun: { auth_type: authType, auth_file: authFile }, databases: { "*": { host: pg.host, port: pg.port } } };
}

/** PostgreSQL's log lines saying it authenticated `role` with `method` (log_connections). */
function authenticatedLines(role: string, method: string): number {
  const log = readFileSync(pg.logFile, "utf8");
  return log.split("\n").filter((l) => l.includes(`connection authenticated: identity="${role}" method=${method}`)).length;
}

const pgLogin = (f: PgbunFixture, user: string) =>
  pgLoginTo(f.pb, { user, password: PW }, async (c) => expect(await firstValue(c, "SELECT current_user")).toBe(user));

/** psql as `user`: the current_user it printed, or its error text. */
async function psqlLogin(f: PgbunFixture, user: string): Promise<string> {
  const r = await psql(["-h", f.pb.host, "-p", String(f.pb.port), "-U", user, "-d", "app", "-Atc", "SELECT current_user"], PW);
  return r.code === 0 ? r.out.trim() : r.err.trim();
}

async function jsLogin(f: PgbunFixture, user: string): Promise<string> {
  const sql = postgres({ host: f.pb.host, port: f.pb.port, user, password: PW, database: "app", max: 1, onnotice: () => undefined, connect_timeout: 10 });
  try {
    const [row] = await sql`SELECT current_user AS u`;
    return row!.u as string;
  } finally {
    await sql.end();
  }
}

describe("SCRAM secrets: pgbun logs in with the keys of the client's proof", () => {
  test("pg, psql and postgres.js each log in through an entry without a password; PostgreSQL checked SCRAM-SHA-256", async () => {
    for (const [role, login] of [
      ["pt_scram", pgLogin],
      ["pt_psql", async (f: PgbunFixture, u: string) => ((await psqlLogin(f, u)) === u ? "ok" : await psqlLogin(f, u))],
      ["pt_js", async (f: PgbunFixture, u: string) => ((await jsLogin(f, u)) === u ? "ok" : "wrong user")],
    ] as const) {
      const before = authenticatedLines(role, "scram-sha-256");
      // a pgbun of its own each: its first server login is made with this client's keys
      await withPgbun(pg, config("scram-sha-256"), async (f) => {
        expect(await login(f, role)).toBe("ok");
      });
      expect(authenticatedLines(role, "scram-sha-256")).toBeGreaterThan(before);
    }
  });

  test("auth_type md5 with a SCRAM secret runs SCRAM with the client, and the server login uses its keys", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      const before = authenticatedLines("pt_scram", "scram-sha-256");
      expect(await pgLogin(f, "pt_scram")).toBe("ok");
      expect(authenticatedLines("pt_scram", "scram-sha-256")).toBeGreaterThan(before);
    });
  });

  test("a new server login with no client login behind it uses the keys kept for the user", async () => {
    await withPgbun(pg, { ...config("scram-sha-256"), pgbun: { auth_type: "scram-sha-256", auth_file: authFile, pool_mode: "transaction" } }, async (f) => {
      const c = await pgConnect(f.pb, { user: "pt_scram", password: PW });
      try {
        const first = await firstValue(c, "SELECT pg_backend_pid()");
        const before = authenticatedLines("pt_scram", "scram-sha-256");
        // PostgreSQL ends that server: the client's next transaction needs a server pgbun must log in itself
        await pg.psql(`SELECT pg_terminate_backend(${first})`);
        await Bun.sleep(200);
        let second: unknown;
        for (let i = 0; i < 20 && (second === undefined || second === first); i++) {
          second = await firstValue(c, "SELECT pg_backend_pid()").catch(() => undefined);
          if (second === undefined) await Bun.sleep(100);
        }
        expect(second).toBeDefined();
        expect(second).not.toBe(first);
        expect(authenticatedLines("pt_scram", "scram-sha-256")).toBeGreaterThan(before);
      } finally {
        await c.end().catch(() => {});
      }
    });
  });

  test("a server secret with another salt: the client gets a clear error, not a hang, and pgbun goes on", async () => {
    await withPgbun(pg, config("scram-sha-256"), async (f) => {
      const t0 = Date.now();
      const got = await pgLogin(f, "pt_salt");
      expect(got).toContain("the server's SCRAM secret differs from the one pgbun holds (salt or iteration count)");
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(await pgLogin(f, "pt_scram")).toBe("ok");
    });
  });

  test("a SCRAM secret no client has proven (cleartext client auth): PgBouncer's wrong password type, at once", async () => {
    await withPgbun(pg, config("plain"), async (f) => {
      const t0 = Date.now();
      const got = await pgLogin(f, "pt_nokeys");
      expect(got).toContain("wrong password type: the server asks for SCRAM-SHA-256");
      expect(got).toContain("no client has logged in with SCRAM against it yet");
      expect(Date.now() - t0).toBeLessThan(5_000);
    });
  });
});

describe("md5 secrets: pgbun answers PostgreSQL's md5 challenge without the password", () => {
  test("pg and psql log in as an md5 role; PostgreSQL checked md5", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      const before = authenticatedLines("pt_md5", "md5");
      expect(await pgLogin(f, "pt_md5")).toBe("ok");
      expect(await psqlLogin(f, "pt_md5")).toBe("pt_md5");
      expect(await jsLogin(f, "pt_md5")).toBe("pt_md5");
      expect(authenticatedLines("pt_md5", "md5")).toBeGreaterThan(before);
    });
  });

  test("an md5 secret where PostgreSQL asks for SCRAM: wrong password type, at once", async () => {
    await withPgbun(pg, config("md5"), async (f) => {
      const got = await pgLogin(f, "pt_md5_on_scram");
      expect(got).toContain("wrong password type: the server asks for SCRAM-SHA-256");
      expect(got).toContain("only an md5 secret");
    });
  });
});

describe("auth_query secrets: the same, for users found through auth_user", () => {
  const aqConfig = (authType: string) => ({
    pgbun: { auth_type: authType, auth_file: aqFile, auth_user: "pt_aq_auth" },
    databases: { "*": { host: pg.host, port: pg.port } },
  });

  test("a SCRAM role pg_authid gives the secret of: pgbun logs in with the client's keys; PostgreSQL checked SCRAM-SHA-256", async () => {
    await withPgbun(pg, aqConfig("scram-sha-256"), async (f) => {
      const before = authenticatedLines("pt_aq_scram", "scram-sha-256");
      expect(await pgLogin(f, "pt_aq_scram")).toBe("ok");
      expect(authenticatedLines("pt_aq_scram", "scram-sha-256")).toBeGreaterThan(before);
    });
  });

  test("an md5 role: pgbun answers md5 with the secret auth_query found; PostgreSQL checked md5", async () => {
    await withPgbun(pg, aqConfig("md5"), async (f) => {
      const before = authenticatedLines("pt_aq_md5", "md5");
      expect(await pgLogin(f, "pt_aq_md5")).toBe("ok");
      expect(authenticatedLines("pt_aq_md5", "md5")).toBeGreaterThan(before);
    });
  });
});
