// Shared test fixtures: a PostgreSQL per file, a pgbun per test, pg clients, psql/pgbench, polling, plugin files.
import { afterAll, afterEach, beforeAll, expect } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { Client, type ClientConfig, type DatabaseError } from "pg";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { startPgbun, type TestPgbun } from "./pgbun.ts";
import { harnessTempDir, startPostgres, TEST_DATABASE, TEST_ROLES, type TestPostgres } from "./postgres.ts";
import { loginApp, msg, WireClient, type BackendMessage } from "./wire.ts";

/** Where a client connects: a TestPgbun, a TestPooler or a TestPostgres. */
export interface Endpoint {
  host: string;
  port: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Lifetimes: a PostgreSQL for the test file, things a test opened.

/**
 * Starts a PostgreSQL before the file's tests, then runs `setup` on it (60 s for both); after the tests runs
 * `teardown`, then stops it. Returns the instance at once, as an empty object filled in once it has started: use it
 * in hooks and tests.
 */
export function usePostgres(
  setup?: (pg: TestPostgres) => Promise<unknown>,
  teardown?: (pg: TestPostgres) => Promise<unknown>,
): TestPostgres {
  const pg = {} as TestPostgres;
  beforeAll(async () => {
    Object.assign(pg, await startPostgres());
    await setup?.(pg);
  }, 60_000);
  afterAll(async () => {
    try {
      await teardown?.(pg);
    } finally {
      await pg.stop?.();
    }
  });
  return pg;
}

/** What `closeAfterEach` returns: registers `close(thing)` for the end of the test and returns `thing`. */
export type Track = <T>(thing: T, close: (thing: T) => unknown) => T;

/** Registers an afterEach that closes what the test opened (last opened first, errors ignored); returns `track`. */
export function closeAfterEach(): Track {
  const open: Array<() => unknown> = [];
  afterEach(async () => {
    for (const close of open.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // already closed, or closing failed: the test is over either way
      }
    }
  });
  return (thing, close) => {
    open.push(() => close(thing));
    return thing;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One pgbun process per test, with raw wire clients.

/** One pgbun for one test, with the wire clients it made; everything is torn down by dispose(). */
export class PgbunFixture {
  readonly clients: WireClient[] = [];
  constructor(readonly pb: TestPgbun) {}

  /** A client logged in as postgres to app; `params` add to or override the StartupMessage. */
  async login(params: Record<string, string> = {}): Promise<WireClient> {
    const c = await loginApp(this.pb, params);
    this.clients.push(c);
    return c;
  }

  /** A TCP connection, nothing sent yet. */
  async connect(): Promise<WireClient> {
    const c = await WireClient.connect({ host: this.pb.host, port: this.pb.port });
    this.clients.push(c);
    return c;
  }

  /** Connects and sends a StartupMessage; returns everything up to ReadyForQuery or the connection's end. */
  async attempt(params: Record<string, string>, timeoutMs = 8_000): Promise<{ client: WireClient; messages: BackendMessage[]; closed: boolean }> {
    const c = await this.connect();
    c.send(msg.startup({ user: "postgres", database: "app", ...params }));
    try {
      const messages = await c.readUntil((m) => m.type === "Z", timeoutMs);
      return { client: c, messages, closed: false };
    } catch (err) {
      const received = (err as { received?: BackendMessage[] }).received ?? [];
      return { client: c, messages: received, closed: c.isClosed };
    }
  }

  async dispose(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await this.pb.stop("SIGTERM");
  }
}

/**
 * Runs `fn` with a pgbun started from `config` ({ pgbun: {...}, databases?, ... }; log_level debug unless set) in
 * front of `pg`; prints its last log lines when `fn` fails, and stops it with its clients in any case.
 */
export async function withPgbun(pg: TestPostgres, config: Record<string, unknown>, fn: (f: PgbunFixture) => Promise<void>): Promise<void> {
  const settings = (config.pgbun as Record<string, unknown> | undefined) ?? {};
  const pb = await startPgbun({ config: { ...config, pgbun: { log_level: "debug", ...settings } }, pg });
  const f = new PgbunFixture(pb);
  try {
    await fn(f);
  } catch (err) {
    console.error(`--- last pgbun log lines ---\n${pb.logs().split("\n").slice(-40).join("\n")}`);
    throw err;
  } finally {
    await f.dispose();
  }
}

/** pgbun settings for transaction mode with `size` servers per pool, plus `extra`. */
export const tx = (size: number, extra: Record<string, unknown> = {}) => ({ pool_mode: "transaction", default_pool_size: size, ...extra });

/** The backend pid of the server a wire client's next query runs on (the query must succeed). */
export async function backendPid(c: WireClient): Promise<string> {
  const r = await c.query("SELECT pg_backend_pid()");
  expect(r.errors).toEqual([]);
  return r.rows[0]![0]!;
}

/** Runs `sql` on a wire client; it must succeed and leave no transaction open. Returns its rows. */
export async function queryOk(c: WireClient, sql: string): Promise<Array<Array<string | null>>> {
  const r = await c.query(sql);
  expect(r.errors).toEqual([]);
  expect(r.status).toBe("I");
  return r.rows;
}

/** The one value of a one-row, one-column query run with `queryOk`. */
export async function queryValue(c: WireClient, sql: string): Promise<string | null> {
  const r = await queryOk(c, sql);
  expect(r.length).toBe(1);
  return r[0]![0]!;
}

/** Waits (up to `ms`) until pgbun's log output contains `text`; logs reach the test through a pipe, a little later. */
export async function expectLog(pb: TestPgbun, text: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pb.logs().includes(text) && Date.now() < deadline) await Bun.sleep(50);
  expect(pb.logs()).toContain(text);
}

// ---------------------------------------------------------------------------------------------------------------
// Polling and promises.

/** Polls `cond` every `stepMs` until it holds (true) or `ms` have passed (false). */
export async function eventually(cond: () => Promise<boolean> | boolean, ms: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await Bun.sleep(stepMs);
  }
}

/** Like `eventually`, but throws "timed out waiting for `what`" when `cond` does not come to hold within `ms`. */
export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 5_000, stepMs = 50): Promise<void> {
  if (!(await eventually(cond, ms, stepMs))) throw new Error(`timed out waiting for ${what}`);
}

/** The error a promise rejects with; throws (failing the test) if it resolves. */
export async function rejection<E extends Error = DatabaseError>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error("expected the promise to reject, it resolved");
}

// ---------------------------------------------------------------------------------------------------------------
// node-postgres clients.

/**
 * A connected node-postgres client to `to`: database app as the superuser unless `config` says otherwise. Errors
 * emitted after the test (a killed connection) are ignored unless `ignoreErrors` is false; the caller ends it.
 */
export async function pgConnect(to: Endpoint, config: ClientConfig = {}, { ignoreErrors = true } = {}): Promise<Client> {
  const { user, password } = TEST_ROLES.superuser;
  const c = new Client({ host: to.host, port: to.port, user, password, database: TEST_DATABASE, ...config });
  if (ignoreErrors) c.on("error", () => undefined);
  await c.connect();
  return c;
}

/** The first column of the first row of a query (rows as arrays), undefined without rows. */
export async function firstValue(c: Client, sql: string, params?: unknown[]): Promise<unknown> {
  const r = await c.query({ text: sql, values: params, rowMode: "array" });
  return (r.rows[0] as unknown[] | undefined)?.[0];
}

/** Backends of ordinary clients on the `app` database, as PostgreSQL counts them (asked over a direct connection). */
export async function appBackends(pg: TestPostgres): Promise<number> {
  return Number(await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = 'app'"));
}

/** Waits (up to about 5 s) until PostgreSQL has no backend on `app` left (after a pgbun stopped). */
export async function waitNoAppBackends(pg: TestPostgres): Promise<void> {
  for (let i = 0; i < 100 && (await appBackends(pg)) > 0; i++) await Bun.sleep(50);
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL's client programs (psql, pgbench).

/** A PostgreSQL client program: PATH first, then Debian's versioned bin dirs (highest version first). */
export function findBinary(name: string): string {
  const onPath = Bun.which(name);
  if (onPath) return onPath;
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const candidate = join(base, v, "bin", name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found on PATH or in ${base}/*/bin`);
}

export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client program (`argv[0]` a path) with the superuser's password and the C locale in its environment and
 * `stdin` as its input; killed after `killAfterMs` when given.
 */
export async function runClientProgram(
  pg: TestPostgres,
  argv: string[],
  opts: { stdin?: string; killAfterMs?: number } = {},
): Promise<ProgramResult> {
  const proc = Bun.spawn(argv, {
    env: { ...process.env, PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: "10", LANG: "C", LC_ALL: "C" },
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = opts.killAfterMs === undefined ? undefined : setTimeout(() => proc.kill("SIGKILL"), opts.killAfterMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  return { code, stdout, stderr };
}

let pgbenchPath: string | undefined;

/** Runs pgbench against `to` (database app, as the superuser) with `args`; `output` is stdout, then stderr. */
export async function runPgbench(pg: TestPostgres, to: Endpoint, args: string[], killAfterMs = 30_000): Promise<{ code: number; output: string }> {
  pgbenchPath ??= findBinary("pgbench");
  const argv = [pgbenchPath, "-h", to.host, "-p", String(to.port), "-U", pg.superuser, ...args, "app"];
  const r = await runClientProgram(pg, argv, { killAfterMs });
  return { code: r.code, output: `${r.stdout}\n${r.stderr}` };
}

/** `pgbench -i -s 1 -q` straight on `pg`: the pgbench tables in `app`; throws with pgbench's output when it fails. */
export async function initPgbench(pg: TestPostgres, killAfterMs = 30_000): Promise<void> {
  const init = await runPgbench(pg, pg, ["-i", "-s", "1", "-q"], killAfterMs);
  if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.output}`);
}

export interface PgbenchSummary {
  processed: number;
  failed: number;
  tps: number;
}

/** The summary lines of a pgbench run; throws (with the whole output) when one is missing. */
export function parsePgbenchSummary(output: string): PgbenchSummary {
  const processed = /number of transactions actually processed: (\d+)/.exec(output);
  const failed = /number of failed transactions: (\d+)/.exec(output);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(output);
  if (!processed || !failed || !tps) throw new Error(`unexpected pgbench output:\n${output}`);
  return { processed: Number(processed[1]), failed: Number(failed[1]), tps: Number(tps[1]) };
}

// ---------------------------------------------------------------------------------------------------------------
// Plugins: plugin files, in-process poolers with plugins.

const REPO = resolve(import.meta.dir, "..", "..");
const SDK = join(REPO, "plugin-sdk", "index.ts");

/** The example plugins of examples/. */
export const EXAMPLES = {
  auditLog: join(REPO, "examples", "audit-log.ts"),
  firewall: join(REPO, "examples", "query-firewall.ts"),
  helloAnswer: join(REPO, "examples", "hello-answer.ts"),
};

/** The SDK import path as a plugin in `dir` would write it: relative. */
export function sdkFrom(dir: string): string {
  const rel = relative(dir, SDK);
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** Writes a plugin source file into `dir`; `${SDK}` in the source becomes the relative SDK path. */
export function writePlugin(dir: string, file: string, source: string): string {
  const path = join(dir, file);
  writeFileSync(path, source.replaceAll("${SDK}", sdkFrom(dir)));
  return path;
}

/** The names of the plugins a pooler loaded, in pipeline order. */
export function pluginNames(p: TestPooler): string[] {
  return p.core.plugins.map((l) => l.plugin.name);
}

export type PluginList = Array<string | [string, Record<string, unknown>]>;

/**
 * For plugin tests: in-process poolers in front of `pg` and clients through them, all closed after each test
 * (call it at the top of the test file; it registers an afterEach).
 */
export function pluginTestKit(pg: TestPostgres) {
  const track = closeAfterEach();
  return {
    track,
    /** An in-process pgbun in transaction mode; relative plugin paths (and .pgbun-cache) live in `dir`. */
    async pooler(plugins: PluginList, opts: { dir?: string; settings?: Record<string, unknown> } = {}): Promise<TestPooler> {
      const dir = opts.dir ?? (await harnessTempDir("plugins"));
      const p = await startTestPooler({
        upstream: { host: pg.host, port: pg.port, password: pg.password },
        settings: { pool_mode: "transaction", ...opts.settings },
        plugins,
        dir,
      });
      return track(p, (p) => p.stop());
    },
    /** A node-postgres client to `app` through `p`; errors after the test are ignored. */
    async connect(p: Endpoint, applicationName?: string): Promise<Client> {
      return track(await pgConnect(p, { application_name: applicationName }), (c) => c.end());
    },
    /** A wire client logged in to `app` through `p`, for pipelining several messages in one write. */
    async login(p: Endpoint): Promise<WireClient> {
      return track(await loginApp(p), (c) => c.destroy());
    },
  };
}
