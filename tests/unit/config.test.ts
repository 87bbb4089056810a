// Unit tests for configuration loading: file formats, search, env and CLI overrides, validation errors, describeConfig.
import { test, expect, afterAll } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, describeConfig, loadConfig, validateConfig, withSetting } from "../../core/config/load.ts";
import { parseConnString } from "../../core/config/databases.ts";
import { SETTINGS, SETTING_NAMES, defaultSettings } from "../../core/config/settings.ts";

const dirs: string[] = [];
function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "pgbun-config-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const EXAMPLE_TOML = `
[pgbun]
listen_addr = "127.0.0.1"
listen_port = 6432
pool_mode = "transaction"
default_pool_size = 20
max_client_conn = 10000
auth_type = "trust"
admin_users = ["postgres"]
plugins = ["pgbun:pool", "./examples/audit-log.ts"]
[databases]
app = { host = "127.0.0.1", port = 5432, dbname = "app", pool_size = 10, pool_mode = "session" }
"*" = { host = "127.0.0.1", port = 5432 }
[users]
alice = { pool_mode = "session", max_user_connections = 5 }
`;

/** Run `fn`, expect a ConfigError, and return it. */
async function configError(fn: () => unknown): Promise<ConfigError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

test("no config file gives every default and a * database", async () => {
  const cwd = tempDir();
  const c = await loadConfig({ cwd, env: {} });
  expect(c.file).toBeNull();
  expect(c.dir).toBe(cwd);
  expect(c.plugins).toBeNull();
  expect(c.settings).toEqual(defaultSettings());
  expect(c.settings.listen_addr).toBe("127.0.0.1");
  expect(c.settings.listen_port).toBe(6432);
  expect(c.settings.auth_type).toBe("trust");
  // PgBouncer's defaults: a socket in /tmp, open to all
  expect(c.settings.unix_socket_dir).toBe("/tmp");
  expect(c.settings.unix_socket_mode).toBe(0o777);
  expect(c.settings.unix_socket_group).toBe("");
  expect(c.settings.server_check_query).toBe("");
  expect(c.settings.pool_mode).toBe("session");
  expect(c.settings.max_packet_size).toBe(2147483647);
  expect(c.settings.track_extra_parameters).toEqual(["IntervalStyle"]);
  expect(c.settings.workers).toBe(1);
  expect(c.settings.log_level).toBe("info");
  expect(c.settings.session_state).toBe("pin");
  expect(c.databases).toEqual({ "*": { name: "*", host: ["127.0.0.1"], port: 5432 } });
  expect(c.users).toEqual({});
});

test("every setting has a doc and a default of its kind", () => {
  for (const name of SETTING_NAMES) {
    expect(SETTINGS[name].doc.length).toBeGreaterThan(0);
    expect(SETTINGS[name].default).not.toBeUndefined();
  }
  expect(SETTING_NAMES.length).toBeGreaterThan(60);
});

test("the example TOML file loads", async () => {
  const cwd = tempDir({ "pgbun.toml": EXAMPLE_TOML });
  const c = await loadConfig({ configFile: "pgbun.toml", cwd, env: {} });
  expect(c.file).toBe(join(cwd, "pgbun.toml"));
  expect(c.dir).toBe(cwd);
  expect(c.settings.pool_mode).toBe("transaction");
  expect(c.settings.max_client_conn).toBe(10000);
  expect(c.settings.admin_users).toEqual(["postgres"]);
  expect(c.plugins).toEqual([
    { specifier: "pgbun:pool", options: {} },
    { specifier: "./examples/audit-log.ts", options: {} },
  ]);
  expect(c.databases.app).toEqual({
    name: "app",
    host: ["127.0.0.1"],
    port: 5432,
    dbname: "app",
    pool_size: 10,
    pool_mode: "session",
  });
  expect(c.databases["*"]).toEqual({ name: "*", host: ["127.0.0.1"], port: 5432 });
  expect(c.users.alice).toEqual({ name: "alice", pool_mode: "session", max_user_connections: 5 });
});

test("a TOML syntax error is reported as (syntax) without the offending line", async () => {
  const cwd = tempDir({ "bad.toml": `[databases]\napp = "host=x password=hunter2\n` });
  const err = await configError(() => loadConfig({ configFile: "bad.toml", cwd, env: {} }));
  expect(err.key).toBe("(syntax)");
  expect(err.file).toBe(join(cwd, "bad.toml"));
  expect(err.message).toContain("line 2");
  expect(err.message).not.toContain("hunter2");
});

test("a JS file exporting an object loads", async () => {
  const cwd = tempDir({
    "conf.mjs": `export default { pgbun: { listen_port: 7001, pool_mode: "statement" }, databases: { app: "host=db1 dbname=real" } };`,
  });
  const c = await loadConfig({ configFile: "conf.mjs", cwd, env: {} });
  expect(c.settings.listen_port).toBe(7001);
  expect(c.settings.pool_mode).toBe("statement");
  expect(c.databases.app).toEqual({ name: "app", host: ["db1"], port: 5432, dbname: "real" });
});

test("a TS file exporting an async function loads and sees env", async () => {
  const cwd = tempDir({
    "conf.ts": `export default async (ctx: { env: Record<string, string | undefined> }) => ({
      pgbun: { listen_port: Number(ctx.env.MY_PORT ?? 1), workers: "auto" },
    });`,
  });
  const c = await loadConfig({ configFile: "conf.ts", cwd, env: { MY_PORT: "7002" } });
  expect(c.settings.listen_port).toBe(7002);
  expect(c.settings.workers).toBe("auto");
});

test("a JS module without a default export uses its named exports", async () => {
  const cwd = tempDir({ "conf.js": `export const pgbun = { default_pool_size: 3 };` });
  const c = await loadConfig({ configFile: "conf.js", cwd, env: {} });
  expect(c.settings.default_pool_size).toBe(3);
});

test("a reload of a JS config sees the edited file", async () => {
  const cwd = tempDir({ "pgbun.config.mjs": `export default { pgbun: { listen_port: 7100 } };` });
  expect((await loadConfig({ cwd, env: {} })).settings.listen_port).toBe(7100);
  writeFileSync(join(cwd, "pgbun.config.mjs"), `export default { pgbun: { listen_port: 7101 } };`);
  expect((await loadConfig({ cwd, env: {} })).settings.listen_port).toBe(7101);
});

test(".pgbunrc (JSON) is found by searching the working directory", async () => {
  const cwd = tempDir({ ".pgbunrc": JSON.stringify({ pgbun: { listen_port: 7003, admin_users: "a, b" } }) });
  const c = await loadConfig({ cwd, env: {} });
  expect(c.file).toBe(join(cwd, ".pgbunrc"));
  expect(c.settings.listen_port).toBe(7003);
  expect(c.settings.admin_users).toEqual(["a", "b"]);
});

test(".pgbunrc may be YAML", async () => {
  const cwd = tempDir({ ".pgbunrc": "pgbun:\n  listen_port: 7006\ndatabases:\n  app: host=db\n" });
  const c = await loadConfig({ cwd, env: {} });
  expect(c.settings.listen_port).toBe(7006);
  expect(c.databases.app!.host).toEqual(["db"]);
});

test("a missing or broken config file is a ConfigError naming the file", async () => {
  const cwd = tempDir({ "broken.mjs": "export default {{", "broken.json": '{"pgbun": }' });
  const missing = await configError(() => loadConfig({ configFile: "missing.toml", cwd, env: {} }));
  expect(missing.file).toBe(join(cwd, "missing.toml"));
  expect(missing.key).toBe("(file)");
  const js = await configError(() => loadConfig({ configFile: "broken.mjs", cwd, env: {} }));
  expect(js.key).toBe("(syntax)");
  expect(js.reason).toContain("line 1");
  const json = await configError(() => loadConfig({ configFile: "broken.json", cwd, env: {} }));
  expect(json.key).toBe("(syntax)");
});

test("pgbun.config.toml is found by the search", async () => {
  const cwd = tempDir({ "pgbun.config.toml": `[pgbouncer]\nlisten_port = 7004\n` });
  const c = await loadConfig({ cwd, env: {} });
  expect(c.file).toBe(join(cwd, "pgbun.config.toml"));
  expect(c.settings.listen_port).toBe(7004);
});

test("the pgbun key of package.json is used", async () => {
  const cwd = tempDir({
    "package.json": JSON.stringify({ name: "x", pgbun: { pgbun: { pool_mode: "transaction" }, users: { bob: { pool_size: 2 } } } }),
  });
  const c = await loadConfig({ cwd, env: {} });
  expect(c.file).toBe(join(cwd, "package.json"));
  expect(c.settings.pool_mode).toBe("transaction");
  expect(c.users.bob).toEqual({ name: "bob", pool_size: 2 });
});

test("a package.json without a pgbun key is skipped", async () => {
  const cwd = tempDir({ "package.json": JSON.stringify({ name: "x" }) });
  const c = await loadConfig({ cwd, env: {} });
  expect(c.file).toBeNull();
});

test("the search does not walk up to parent directories", async () => {
  const parent = tempDir({ ".pgbunrc.json": JSON.stringify({ pgbun: { listen_port: 7005 } }) });
  const child = join(parent, "sub");
  mkdirSync(child);
  const c = await loadConfig({ cwd: child, env: {} });
  expect(c.file).toBeNull();
});

test("PGBUN_* environment variables override the file", async () => {
  const cwd = tempDir({ "pgbun.toml": EXAMPLE_TOML });
  const c = await loadConfig({
    configFile: "pgbun.toml",
    cwd,
    env: { PGBUN_LISTEN_PORT: "7000", PGBUN_POOL_MODE: "session", PGBUN_LOG_CONNECTIONS: "off", PGBUN_QUERY_TIMEOUT: "2.5" },
  });
  expect(c.settings.listen_port).toBe(7000);
  expect(c.settings.pool_mode).toBe("session");
  expect(c.settings.log_connections).toBe(false);
  expect(c.settings.query_timeout).toBe(2.5);
});

test("CLI overrides win over env, and errors name their source", async () => {
  const cwd = tempDir();
  const c = await loadConfig({ cwd, env: { PGBUN_LISTEN_PORT: "7000" }, overrides: { listen_port: "7777" } });
  expect(c.settings.listen_port).toBe(7777);

  const fromEnv = await configError(() => loadConfig({ cwd, env: { PGBUN_LISTEN_PORT: "abc" } }));
  expect(fromEnv.key).toBe("env PGBUN_LISTEN_PORT");
  const fromFlag = await configError(() => loadConfig({ cwd, env: {}, overrides: { listen_prot: "1" } }));
  expect(fromFlag.key).toBe("--set listen_prot");
  expect(fromFlag.reason).toContain('did you mean "listen_port"');
});

test("an unknown key names the file, the key and the closest known name", async () => {
  const cwd = tempDir({ "pgbun.toml": `[pgbun]\ndefault_pool_sise = 5\n` });
  const err = await configError(() => loadConfig({ configFile: "pgbun.toml", cwd, env: {} }));
  expect(err.file).toBe(join(cwd, "pgbun.toml"));
  expect(err.key).toBe("pgbun.default_pool_sise");
  expect(err.reason).toContain('did you mean "default_pool_size"');
  expect(err.message).toStartWith(`${join(cwd, "pgbun.toml")}: pgbun.default_pool_sise: `);

  const far = await configError(() => validateConfig({ pgbun: { completely_wrong: 1 } }, null, "/"));
  expect(far.reason).not.toContain("did you mean");
  expect(far.message).toStartWith("<defaults>: pgbun.completely_wrong: ");

  const section = await configError(() => validateConfig({ databses: {} }, "f.json", "/"));
  expect(section.key).toBe("databses");
  expect(section.reason).toContain('did you mean "databases"');

  const dbKey = await configError(() => validateConfig({ databases: { app: { hots: "x" } } }, "f.json", "/"));
  expect(dbKey.key).toBe("databases.app.hots");
  expect(dbKey.reason).toContain('"host"');
});

test("wrong types and impossible values are refused", async () => {
  const cases: [unknown, string][] = [
    [{ pgbun: { listen_port: "six" } }, "pgbun.listen_port"],
    [{ pgbun: { listen_port: 70000 } }, "pgbun.listen_port"],
    [{ pgbun: { listen_port: -1 } }, "pgbun.listen_port"],
    [{ pgbun: { default_pool_size: -1 } }, "pgbun.default_pool_size"],
    [{ pgbun: { default_pool_size: 1.5 } }, "pgbun.default_pool_size"],
    [{ pgbun: { max_packet_size: 100 } }, "pgbun.max_packet_size"],
    [{ pgbun: { server_lifetime: -3 } }, "pgbun.server_lifetime"],
    [{ pgbun: { log_connections: "maybe" } }, "pgbun.log_connections"],
    [{ pgbun: { listen_addr: 5 } }, "pgbun.listen_addr"],
    [{ pgbun: { admin_users: [1] } }, "pgbun.admin_users"],
    [{ pgbun: { workers: 0 } }, "pgbun.workers"],
    [{ pgbun: { min_pool_size: 30 } }, "pgbun.min_pool_size"],
    [{ databases: { app: { pool_size: 2, min_pool_size: 3 } } }, "databases.app.min_pool_size"],
    [{ databases: { app: { port: "x" } } }, "databases.app.port"],
    [{ databases: { app: 5 } }, "databases.app"],
    [{ users: { bob: { query_timeout: -1 } } }, "users.bob.query_timeout"],
    [{ pgbun: {}, pgbouncer: {} }, "pgbouncer"],
    [{ pgbun: { plugins: "x" } }, "pgbun.plugins"],
    [{ pgbun: { plugins: [["x", 5]] } }, "pgbun.plugins[0][1]"],
    [[1, 2], "(root)"],
  ];
  for (const [raw, key] of cases) {
    const err = await configError(() => validateConfig(raw, "f.toml", "/"));
    expect(err.key).toBe(key);
  }
});

test("booleans, numbers and lists accept their documented spellings", () => {
  const c = validateConfig(
    {
      pgbun: {
        so_reuseport: "yes",
        tcp_keepalive: 0,
        log_stats: "OFF",
        server_round_robin: "true",
        default_pool_size: "7",
        query_wait_timeout: 0.5,
        ignore_startup_parameters: "extra_float_digits, search_path",
        stats_users: ["s1", "s2"],
      },
    },
    null,
    "/",
  );
  expect(c.settings.so_reuseport).toBe(true);
  expect(c.settings.tcp_keepalive).toBe(false);
  expect(c.settings.log_stats).toBe(false);
  expect(c.settings.server_round_robin).toBe(true);
  expect(c.settings.default_pool_size).toBe(7);
  expect(c.settings.query_wait_timeout).toBe(0.5);
  expect(c.settings.ignore_startup_parameters).toEqual(["extra_float_digits", "search_path"]);
  expect(c.settings.stats_users).toEqual(["s1", "s2"]);
});

test("a bad enum value lists the allowed values; unimplemented auth types are refused", async () => {
  const err = await configError(() => validateConfig({ pgbun: { pool_mode: "txn" } }, "f.toml", "/"));
  expect(err.key).toBe("pgbun.pool_mode");
  expect(err.reason).toContain("session, transaction, statement");

  const auth = await configError(() => validateConfig({ pgbun: { auth_type: "pam" } }, "f.toml", "/"));
  expect(auth.key).toBe("pgbun.auth_type");
  expect(auth.reason).toBe("auth_type pam is not implemented yet; use trust");

  const authEnv = await configError(() => validateConfig({}, "f.toml", "/", { PGBUN_AUTH_TYPE: "pam" }));
  expect(authEnv.key).toBe("env PGBUN_AUTH_TYPE");

  expect(validateConfig({ pgbun: { auth_type: "any" } }, null, "/").settings.auth_type).toBe("any");
  for (const t of ["plain", "md5", "scram-sha-256"] as const) expect(validateConfig({ pgbun: { auth_type: t } }, null, "/").settings.auth_type).toBe(t);
});

test("database connection strings parse, with quotes and escapes", () => {
  expect(parseConnString(`host=a  port = 5433 password='it\\'s a secret' dbname=x\\ y`)).toEqual({
    host: "a",
    port: "5433",
    password: "it's a secret",
    dbname: "x y",
  });
  const c = validateConfig(
    {
      databases: {
        app: "host=10.0.0.1,10.0.0.2 port=6543 dbname=appdb user=u password='p\\'w d' pool_size=10 pool_mode=transaction connect_query='SELECT 1'",
      },
    },
    null,
    "/",
  );
  expect(c.databases.app).toEqual({
    name: "app",
    host: ["10.0.0.1", "10.0.0.2"],
    port: 6543,
    dbname: "appdb",
    user: "u",
    password: "p'w d",
    pool_size: 10,
    pool_mode: "transaction",
    connect_query: "SELECT 1",
  });
});

test("malformed connection strings are refused without echoing the password", async () => {
  const unterminated = await configError(() => validateConfig({ databases: { app: "host=a password='hunter2" } }, "f.toml", "/"));
  expect(unterminated.key).toBe("databases.app");
  expect(unterminated.reason).toContain("unterminated");
  expect(unterminated.message).not.toContain("hunter2");

  const noEquals = await configError(() => validateConfig({ databases: { app: "host a" } }, "f.toml", "/"));
  expect(noEquals.reason).toContain('missing "="');

  const badType = await configError(() => validateConfig({ databases: { app: { password: 12345678 } } }, "f.toml", "/"));
  expect(badType.key).toBe("databases.app.password");
  expect(badType.message).not.toContain("12345678");
});

test("the * entry is the fallback and keeps dbname undefined", () => {
  const c = validateConfig({ databases: { "*": "host=db port=5544", named: {} } }, null, "/");
  expect(c.databases["*"]).toEqual({ name: "*", host: ["db"], port: 5544 });
  expect(c.databases["*"]!.dbname).toBeUndefined();
  expect(c.databases.named).toEqual({ name: "named", host: ["127.0.0.1"], port: 5432, dbname: "named" });
  // A [databases] section without "*" has no fallback.
  expect(validateConfig({ databases: { only: {} } }, null, "/").databases["*"]).toBeUndefined();
});

test("plugins normalize to { specifier, options }; absent means null", () => {
  const c = validateConfig(
    { pgbun: { plugins: ["pgbun:pool", ["./audit.ts", { file: "audit.log" }], ["pkg"]] } },
    "/etc/pgbun/pgbun.json",
    "/etc/pgbun",
  );
  expect(c.plugins).toEqual([
    { specifier: "pgbun:pool", options: {} },
    { specifier: "./audit.ts", options: { file: "audit.log" } },
    { specifier: "pkg", options: {} },
  ]);
  expect(c.dir).toBe("/etc/pgbun");
  expect(validateConfig({ pgbun: { plugins: [] } }, null, "/").plugins).toEqual([]);
  expect(validateConfig({}, null, "/").plugins).toBeNull();
});

test("describeConfig shows the effective config and hides passwords", () => {
  const c = validateConfig(
    {
      pgbun: { listen_port: 7010, plugins: [["./p.ts", { token: "tok-secret", level: 2 }]] },
      databases: { app: { host: "db", password: "hunter2", user: "u" } },
      users: { alice: { pool_size: 3 } },
    },
    "/x/pgbun.toml",
    "/x",
  );
  const text = describeConfig(c);
  expect(text).not.toContain("hunter2");
  expect(text).not.toContain("tok-secret");
  expect(text).toContain("password=***");
  expect(text).toContain("listen_port = 7010  # default 6432");
  expect(text).toContain("pool_mode = \"session\"\n");
  expect(text).toContain("/x/pgbun.toml");
  expect(text).toContain('"alice" = "pool_size=3"');
});

test("[databases] and [users] are looked up by own names only: a client's database 'constructor' or user 'toString' is not an entry", () => {
  const config = validateConfig({ pgbun: {}, databases: { app: { host: "127.0.0.1" } }, users: { alice: { pool_mode: "session" } } }, null, process.cwd());
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    expect(config.databases[name]).toBeUndefined();
    expect(config.users[name]).toBeUndefined();
  }
  const defaults = validateConfig({ pgbun: {} }, null, process.cwd());
  expect(defaults.databases["constructor"]).toBeUndefined();
  expect(defaults.databases["*"]).toBeDefined();
});

test("every TLS mode is accepted; client TLS without a key and certificate is refused with the file and key, wherever it was set", async () => {
  for (const mode of ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]) {
    expect(validateConfig({ pgbun: { server_tls_sslmode: mode } }, null, "/").settings.server_tls_sslmode).toBe(mode as never);
    const c = validateConfig({ pgbun: { client_tls_sslmode: mode, client_tls_key_file: "k.pem", client_tls_cert_file: "c.pem" } }, null, "/");
    expect(c.settings.client_tls_sslmode).toBe(mode as never);
  }
  const err = await configError(() => validateConfig({ pgbun: { client_tls_sslmode: "require" } }, "/etc/pgbun.toml", "/"));
  expect([err.file, err.key]).toEqual(["/etc/pgbun.toml", "pgbun.client_tls_sslmode"]);
  expect(err.reason).toBe("client_tls_sslmode require needs client_tls_key_file and client_tls_cert_file");
  const env = await configError(() => validateConfig({}, "f.toml", "/", { PGBUN_CLIENT_TLS_SSLMODE: "verify-full" }));
  expect([env.file, env.key]).toEqual([null, "env PGBUN_CLIENT_TLS_SSLMODE"]);
  const cli = await configError(() => validateConfig({ pgbouncer: {} }, "f.ini", "/", {}, { client_tls_sslmode: "prefer" }));
  expect([cli.file, cli.key]).toEqual([null, "--set client_tls_sslmode"]);
});

test("describeConfig marks the settings pgbun does not act on", () => {
  const text = describeConfig(validateConfig({ pgbun: { pkt_buf: 8192 } }, null, "/"));
  expect(text).toContain("pkt_buf = 8192  # default 4096; not acted on\n");
  expect(text).toContain("tcp_user_timeout = 0  # not acted on\n");
  expect(text).toContain("tcp_keepalive = true\n"); // acted on: the sockets' keepalive
  expect(text).toContain("max_packet_size = 2147483647\n");
});

test("max_prepared_statements = 0 is refused with the reason: PgBouncer's 'off' would let clients' statements collide", async () => {
  // PgBouncer turns tracking off at 0; pgbun never does outside session mode (rule one), so 0 must not start as if it
  // meant something (before this test it was accepted, documented as "off" and run as no limit at all)
  const err = await configError(() => validateConfig({ pgbun: { max_prepared_statements: 0 } }, "f.toml", "/"));
  expect(err.key).toBe("pgbun.max_prepared_statements");
  expect(err.message).toContain("f.toml");
  expect(err.message).toMatch(/>= 1/);
  expect(err.message).toMatch(/collide/);
  expect(SETTINGS.max_prepared_statements.doc).not.toMatch(/0 = off/);
  const ok = validateConfig({ pgbun: { max_prepared_statements: 1 } }, "f.toml", "/");
  expect(ok.settings.max_prepared_statements).toBe(1);
  // the console's SET (and so RELOAD's file) is refused alike, with 22023 and the same reason
  const set = await configError(() => withSetting(ok, "max_prepared_statements", "0"));
  expect(set.code).toBe("22023");
  expect(set.message).toMatch(/collide/);
});
