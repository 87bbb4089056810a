// Runs a pgbun process for tests: writes its config, starts bin/pgbun.ts on a free port, captures its logs.
import type { Subprocess } from "bun";
import { existsSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { constants } from "node:os";
import { join, resolve } from "node:path";
import { freePort, harnessTempDir, trackChildProcess, type TestPostgres } from "./postgres.ts";

export { freePort } from "./postgres.ts";

export interface TestPgbun {
  port: number;
  host: string;
  proc: Subprocess;
  /** The config file it was started with (rewrite it, then SIGHUP, to reload). */
  configFile: string;
  /** Everything the process wrote to stdout and stderr so far, interleaved as it arrived. */
  logs(): string;
  /** Send `signal` (default SIGTERM), wait for the exit (SIGKILL after 5 s); the exit code, 128+n for a signal. */
  stop(signal?: NodeJS.Signals): Promise<number>;
  /** postgres:// URL through pgbun; defaults: database `app`, the PostgreSQL superuser and its password. */
  url(db?: string, user?: string, password?: string): string;
}

export interface StartPgbunOptions {
  /** The config object ({ pgbun: {...}, databases: {...}, users: {...} }); not modified. */
  config: Record<string, unknown>;
  pg: TestPostgres;
  /** Added to the environment (inherited PGBUN_* variables are dropped so they cannot override the config). */
  env?: Record<string, string>;
  /** Entry script, relative to the repo root; default bin/pgbun.ts. */
  entry?: string;
  /** How long to wait for the port, default 10 s. */
  timeoutMs?: number;
}

const HOST = "127.0.0.1";
const REPO_ROOT = resolve(import.meta.dir, "..", "..");
const STOP_GRACE_MS = 5_000;

/** Resolves once host:port accepts a TCP connection; rejects after `ms`. */
export async function waitForPort(host: string, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await canConnect(host, port, Math.max(100, Math.min(1_000, deadline - Date.now())))) return;
    if (Date.now() >= deadline) throw new Error(`${host}:${port} did not accept connections within ${ms} ms`);
    await Bun.sleep(25);
  }
}

function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

function bunBinary(): string {
  const local = join(REPO_ROOT, "node_modules", ".bin", "bun");
  return existsSync(local) ? local : process.execPath;
}

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("PGBUN_")) env[key] = value;
  }
  return { ...env, ...extra };
}

function exitCodeOf(proc: Subprocess): number {
  if (proc.exitCode !== null) return proc.exitCode;
  const signalCode = proc.signalCode as NodeJS.Signals | null;
  return 128 + (signalCode ? (constants.signals[signalCode] ?? 0) : 0);
}

/** Append a stream's chunks to `sink` as they arrive; resolves at end of stream. */
async function drain(stream: ReadableStream<Uint8Array>, sink: string[]): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.push(decoder.decode(chunk, { stream: true }));
  sink.push(decoder.decode());
}

function withListenSettings(config: Record<string, unknown>, pg: TestPostgres, port: number): Record<string, unknown> {
  const copy = structuredClone(config);
  const section = typeof copy.pgbun === "object" && copy.pgbun !== null ? (copy.pgbun as Record<string, unknown>) : {};
  copy.pgbun = { ...section, listen_addr: HOST, listen_port: port };
  copy.databases ??= { "*": { host: pg.host, port: pg.port, password: pg.password } };
  return copy;
}

/**
 * Runs `pgbun start --config configFile` (tracked under `dir` for cleanup) without waiting for anything: its stdout
 * and stderr collected into `logs()`, `output` settled once both streams end.
 */
export function spawnPgbun(configFile: string, dir: string, opts: { entry?: string; env?: Record<string, string> } = {}) {
  const chunks: string[] = [];
  const proc = Bun.spawn([bunBinary(), opts.entry ?? "bin/pgbun.ts", "start", "--config", configFile], {
    cwd: REPO_ROOT,
    env: childEnv(opts.env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  trackChildProcess(dir, proc);
  const output = Promise.all([drain(proc.stdout, chunks), drain(proc.stderr, chunks)]).catch(() => undefined);
  return { proc, logs: () => chunks.join(""), output };
}

/** Start pgbun with `config` on a free port of 127.0.0.1 and wait until it accepts TCP connections. */
export async function startPgbun(opts: StartPgbunOptions): Promise<TestPgbun> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const dir = await harnessTempDir("pgbun");
  const configFile = join(dir, "pgbun.config.json");
  const entry = opts.entry ?? "bin/pgbun.ts";

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await writeFile(configFile, JSON.stringify(withListenSettings(opts.config, opts.pg, port), null, 2));
    const { proc, logs, output } = spawnPgbun(configFile, dir, { entry, env: opts.env });

    const ready = await Promise.race([
      waitForPort(HOST, port, timeoutMs).then(
        () => "up" as const,
        () => "timeout" as const,
      ),
      proc.exited.then(() => "exited" as const),
    ]);
    if (ready === "up" && proc.exitCode === null && proc.signalCode === null) {
      return handle(proc, port, dir, configFile, logs, output, opts.pg);
    }
    if (ready !== "exited") {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    await Promise.race([output, Bun.sleep(1_000)]);
    const code = exitCodeOf(proc);
    if (ready === "exited" && attempt < 3 && /EADDRINUSE|address already in use/i.test(logs())) continue; // port race
    rmSync(dir, { recursive: true, force: true });
    const why = ready === "timeout" ? `did not listen on ${HOST}:${port} within ${timeoutMs} ms` : `exited with code ${code}`;
    throw new Error(`pgbun ${why}; its output:\n${logs()}`);
  }
}

function handle(
  proc: Subprocess<"ignore", "pipe", "pipe">,
  port: number,
  dir: string,
  configFile: string,
  logs: () => string,
  output: Promise<unknown>,
  pg: TestPostgres,
): TestPgbun {
  return {
    port,
    host: HOST,
    proc,
    configFile,
    logs,
    async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
        await proc.exited;
        clearTimeout(timer);
      }
      // A grandchild still holding the pipes must not hang the test: take what arrived within a moment.
      await Promise.race([output, Bun.sleep(1_000)]);
      rmSync(dir, { recursive: true, force: true });
      return exitCodeOf(proc);
    },
    url(db = "app", user = pg.superuser, password = pg.password): string {
      const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
      return `postgres://${auth}@${HOST}:${port}/${encodeURIComponent(db)}`;
    },
  };
}
