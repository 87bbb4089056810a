// No setting accepted and ignored: each setting is acted on by the code or listed as ignored (start-up warns or refuses).
import { test, expect, afterAll } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { IGNORED_SETTINGS, SETTING_NAMES, defaultSettings, ignoredSettings, type SettingName } from "../../core/config/settings.ts";
import { DATABASE_KEYS, USER_KEYS } from "../../core/config/databases.ts";

const REPO = resolve(import.meta.dir, "..", "..");

/** Settings the code acts on, by hand: each must appear in code outside the settings table (checked below). */
const ACTED_ON: readonly SettingName[] = [
  "listen_addr", "listen_port", "so_reuseport", "pool_mode", "max_client_conn", "default_pool_size", "min_pool_size",
  "reserve_pool_size", "reserve_pool_timeout", "max_db_connections", "max_user_connections", "max_db_client_connections",
  "max_user_client_connections", "server_round_robin", "admin_users", "stats_users", "server_reset_query",
  "server_reset_query_always", "server_lifetime", "server_idle_timeout", "autodb_idle_timeout", "server_connect_timeout",
  "client_login_timeout", "query_timeout", "query_wait_timeout", "cancel_wait_timeout", "client_idle_timeout",
  "idle_transaction_timeout", "max_prepared_statements", "track_extra_parameters", "ignore_startup_parameters",
  "application_name_add_host", "max_packet_size", "stats_period", "log_connections", "log_disconnections", "log_stats",
  "workers", "log_level", "log_format", "session_state", "stats_listen_addr", "stats_listen_port",
  "server_login_retry", "server_check_query", "server_check_delay", "transaction_timeout", "query_wait_notify",
  "client_tls_sslmode", "client_tls_key_file", "client_tls_cert_file", "client_tls_ca_file", "client_tls_protocols",
  "client_tls_ciphers", "server_tls_sslmode", "server_tls_ca_file", "server_tls_cert_file", "server_tls_key_file",
  "server_tls_protocols", "server_tls_ciphers", "tcp_keepalive",
];

/**
 * Settings other work owns: client authentication is pgbun:auth's (auth_type values it cannot serve are refused by
 * IMPLEMENTED_AUTH_TYPES), the Unix socket is the core listener's. Not required to appear in code yet.
 */
const OWNED_ELSEWHERE: Readonly<Record<string, string>> = {
  auth_type: "pgbun:auth",
  auth_file: "pgbun:auth",
  auth_hba_file: "pgbun:auth",
  auth_user: "pgbun:auth",
  auth_dbname: "pgbun:auth",
  auth_query: "pgbun:auth",
  auth_failure_delay: "pgbun:auth",
  scram_iterations: "pgbun:auth",
  unix_socket_dir: "the Unix listener",
  unix_socket_mode: "the Unix listener",
  unix_socket_group: "the Unix listener",
};

/**
 * The code that could act on a setting, comments removed: everything but the settings table and its types, and
 * SHOW CONFIG, which lists every setting without acting on any.
 */
function actingCode(): string {
  const skip = (path: string) =>
    path.startsWith("core/config/") || path === "plugin-sdk/settings.ts" || path === "plugin-sdk/config.ts" || path === "plugins/admin/show-config.ts";
  const parts: string[] = [];
  for (const dir of ["core", "plugins", "plugin-sdk", "bin"]) {
    for (const rel of new Bun.Glob("**/*.ts").scanSync({ cwd: join(REPO, dir) })) {
      const path = `${dir}/${rel}`;
      if (skip(path)) continue;
      const text = readFileSync(join(REPO, path), "utf8");
      parts.push(text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1"));
    }
  }
  return parts.join("\n");
}

const CODE = actingCode();
// "#peer_id" is a console column spec (plugins/admin/table.ts: # marks a number column), not a setting read
const inCode = (name: string) => new RegExp(`(?<![#\\w])${name}\\b`).test(CODE);

test("every setting is acted on, owned elsewhere, or in the ignored table, and in one of them only", () => {
  const ignored = Object.keys(IGNORED_SETTINGS);
  const unaccounted: string[] = [];
  const twice: string[] = [];
  for (const name of SETTING_NAMES) {
    const places = [ACTED_ON.includes(name), name in OWNED_ELSEWHERE, ignored.includes(name)].filter(Boolean).length;
    if (places === 0) unaccounted.push(name);
    if (places > 1) twice.push(name);
  }
  // a new setting must be acted on (and added to ACTED_ON) or listed in IGNORED_SETTINGS with a verdict
  expect(unaccounted).toEqual([]);
  expect(twice).toEqual([]);
  for (const name of [...ACTED_ON, ...ignored]) expect(SETTING_NAMES).toContain(name as SettingName);
});

test("each acted-on setting appears in the code, and no ignored one does", () => {
  expect(ACTED_ON.filter((n) => !inCode(n))).toEqual([]);
  // a setting the code starts to read leaves IGNORED_SETTINGS, or start-up would warn about a setting it acts on
  expect(Object.keys(IGNORED_SETTINGS).filter(inCode)).toEqual([]);
});

test("the code scan finds a name only where code reads it", () => {
  // proves the scan can fail: a name only the settings table, a comment or a console column mentions is not found
  expect(inCode("pkt_buf")).toBe(false);
  expect(/\bpkt_buf\b/.test(readFileSync(join(REPO, "plugin-sdk/settings.ts"), "utf8"))).toBe(true);
  expect(inCode("peer_id")).toBe(false);
  expect(/"#peer_id"/.test(readFileSync(join(REPO, "plugins/admin/show-internals.ts"), "utf8"))).toBe(true);
  expect(inCode("max_packet_size")).toBe(true);
});

test("the defaults find nothing ignored; a changed harmless setting is found with its verdict, an acted-on one is not", () => {
  expect(ignoredSettings(defaultSettings())).toEqual([]);
  // TLS is acted on (core/net/tls-*.ts): no verdict for it
  // TLS and tcp_keepalive are acted on (core/net/tls-*.ts; the sockets' keepalive): no verdict for them
  const s = { ...defaultSettings(), tcp_keepalive: false, tcp_user_timeout: 5000, server_tls_sslmode: "verify-full" as const, client_tls_sslmode: "require" as const };
  expect(ignoredSettings(s).map((f) => [f.name, f.verdict])).toEqual([["tcp_user_timeout", "harmless"]]);
});

// ---- [databases] and [users] keys ----

/** Where each [databases] entry key is acted on, by hand: the key must appear in that file's code (checked below). */
const DATABASE_KEY_USERS: Readonly<Record<string, string>> = {
  host: "core/pgbun.ts",
  port: "core/pgbun.ts",
  dbname: "core/pgbun.ts",
  user: "core/pgbun.ts",
  password: "core/pgbun.ts",
  connect_query: "core/pgbun.ts",
  client_encoding: "core/server-login.ts",
  datestyle: "core/server-login.ts",
  timezone: "core/server-login.ts",
  application_name: "core/server-login.ts",
  pool_size: "plugins/pool/sizes.ts",
  pool_mode: "core/client-startup.ts",
  min_pool_size: "plugins/pool/sizes.ts",
  reserve_pool_size: "plugins/pool/sizes.ts",
  max_db_connections: "plugins/pool/index.ts",
  target_session_attrs: "plugins/routing/index.ts",
  load_balance_hosts: "plugins/routing/index.ts",
};

/** The same for [users] entry keys. */
const USER_KEY_USERS: Readonly<Record<string, string>> = {
  pool_mode: "core/client-startup.ts",
  pool_size: "plugins/pool/sizes.ts",
  reserve_pool_size: "plugins/pool/sizes.ts",
  max_user_connections: "plugins/pool/index.ts",
  query_timeout: "core/janitor.ts",
  idle_transaction_timeout: "core/janitor.ts",
  client_idle_timeout: "core/janitor.ts",
  transaction_timeout: "plugins/transaction-timeout/index.ts",
};

/** A file's code with its comments removed. */
function codeOf(path: string): string {
  return readFileSync(join(REPO, path), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

test("every [databases] and [users] key is acted on where the table says (parsed and unused is a defect)", () => {
  for (const [keys, users] of [[DATABASE_KEYS, DATABASE_KEY_USERS], [USER_KEYS, USER_KEY_USERS]] as const) {
    // a new entry key must be acted on, and listed with the file that does
    expect(keys.filter((k) => !(k in users))).toEqual([]);
    expect(Object.keys(users).filter((k) => !keys.includes(k))).toEqual([]);
    const missing = Object.entries(users).filter(([key, path]) => !new RegExp(`(?<![#\\w])${key}\\b`).test(codeOf(path)));
    expect(missing).toEqual([]);
  }
});

// ---- start-up and `pgbun check`, as a user runs them ----

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configFile(settings: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "pgbun-ignored-"));
  dirs.push(dir);
  const file = join(dir, "pgbun.config.json");
  // no server is contacted: the * database only has to be valid
  const config = { pgbun: { listen_addr: "127.0.0.1", listen_port: 0, log_format: "json", unix_socket_dir: "", ...settings }, databases: { "*": { host: "127.0.0.1", port: 1 } } };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function run(args: string[]) {
  return Bun.spawn([process.execPath, "bin/pgbun.ts", ...args], {
    cwd: REPO,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PGBUN_"))) as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

/**
 * Starts pgbun with `settings`, waits until it listens or exits, runs `whileUp` (given the config file and the
 * output so far) if it listens, stops it; its exit code (null: it was listening) and output.
 */
async function startUp(
  settings: Record<string, unknown>,
  whileUp?: (file: string, proc: ReturnType<typeof run>, out: () => string) => Promise<void>,
): Promise<{ code: number | null; out: string }> {
  const file = configFile(settings);
  const proc = run(["start", "--config", file]);
  let out = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) out += new TextDecoder().decode(chunk);
  };
  const reading = Promise.all([read(proc.stdout), read(proc.stderr)]);
  const deadline = Date.now() + 20_000;
  while (!out.includes("pgbun listening") && proc.exitCode === null && Date.now() < deadline) await Bun.sleep(25);
  const exited = proc.exitCode;
  if (exited === null && whileUp !== undefined) await whileUp(file, proc, () => out);
  if (exited === null) proc.kill("SIGTERM");
  await proc.exited;
  await Promise.race([reading, Bun.sleep(1_000)]);
  return { code: exited, out };
}

test("a harmless ignored setting starts with one warning naming it; the defaults start with none", async () => {
  const changed = await startUp({ tcp_user_timeout: 5000, pkt_buf: 8192 });
  expect(changed.out).toContain("pgbun listening");
  const warnings = changed.out.split("\n").filter((l) => l.includes("not acted on"));
  expect(warnings.length).toBe(2);
  expect(warnings[0]).toContain('"level":40');
  expect(warnings[0]).toContain("tcp_user_timeout is accepted for PgBouncer compatibility and not acted on");
  expect(warnings[1]).toContain("pkt_buf is accepted for PgBouncer compatibility and not acted on");

  const defaults = await startUp({});
  expect(defaults.out).toContain("pgbun listening");
  expect(defaults.out).not.toContain("not acted on");
  expect(defaults.out).not.toContain('"level":40');
}, 60_000);

test("a reload warns about the ignored settings it changes, not again about the running ones, and refuses a TLS setting it cannot serve", async () => {
  const r = await startUp({ tcp_user_timeout: 5000 }, async (file, proc, out) => {
    const config = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...config, pgbun: { ...config.pgbun, pkt_buf: 8192 } }));
    proc.kill("SIGHUP");
    const deadline = Date.now() + 10_000;
    while (!out().includes("configuration reloaded") && Date.now() < deadline) await Bun.sleep(25);
    writeFileSync(file, JSON.stringify({ ...config, pgbun: { ...config.pgbun, server_tls_sslmode: "verify-full" } })); // no server_tls_ca_file
    proc.kill("SIGHUP");
    while (!out().includes("reload failed") && Date.now() < deadline) await Bun.sleep(25);
  });
  const lines = r.out.split("\n");
  const reloaded = lines.findIndex((l) => l.includes("configuration reloaded"));
  expect(reloaded).toBeGreaterThan(0);
  const warned = (name: string) => lines.flatMap((l, i) => (l.includes(`${name} is accepted for PgBouncer compatibility`) ? [i] : []));
  expect(warned("tcp_user_timeout")).toHaveLength(1);
  const listening = lines.findIndex((l) => l.includes("pgbun listening"));
  expect(warned("tcp_user_timeout")[0]!).toBeLessThan(listening);
  expect(warned("pkt_buf")).toHaveLength(1);
  expect(warned("pkt_buf")[0]!).toBeGreaterThan(listening);
  expect(warned("pkt_buf")[0]!).toBeLessThan(reloaded);
  expect(r.out).toMatch(/reload failed, keeping the running configuration: [^"]*server_tls_sslmode verify-full needs server_tls_ca_file/);
}, 60_000);

test("client TLS whose certificate cannot be read fails start-up, naming the setting and the file", async () => {
  const r = await startUp({ client_tls_sslmode: "require", client_tls_key_file: "k.pem", client_tls_cert_file: "c.pem" });
  expect(r.code).toBe(1);
  expect(r.out).not.toContain("pgbun listening");
  expect(r.out).toMatch(/client_tls_cert_file: cannot read c\.pem/);
}, 60_000);

test("pgbun check lists the ignored settings it found", async () => {
  const proc = run(["check", "--config", configFile({ sbuf_loopcnt: 0 })]);
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(out).toContain("sbuf_loopcnt = 0  # default 5; not acted on");
  expect(out).toContain("# accepted and not acted on: sbuf_loopcnt is accepted for PgBouncer compatibility and not acted on");
  const clean = await new Response(run(["check", "--config", configFile({})]).stdout).text();
  expect(clean).toContain("# accepted and not acted on: none");
}, 60_000);
