// The server instances runs go to: direct PostgreSQL, PgBouncer, pgbun processes and the bare pass-through.
import type { TestPgbun } from "../tests/harness/pgbun.ts";
import type { TestPostgres } from "../tests/harness/postgres.ts";
import type { TargetId } from "./cases.ts";
import { BENCH_DATABASE } from "./database.ts";
import { loginFiles } from "./login-files.ts";
import type { Endpoint } from "./pgbench.ts";
import { startPassthrough } from "./passthrough-process.ts";
import { startPgbouncer, type PgbouncerInstance } from "./pgbouncer.ts";
import { startPgbunVariant, type PgbunVariant } from "./pgbun-process.ts";
import { killProcess } from "./processes.ts";

export interface PoolerSettings {
  poolSize: number;
  maxClientConn: number;
  /** default_pool_size of the session-wide targets: a server connection for every client of the efficiency case. */
  widePoolSize: number;
  /** bin/pgbun.ts of the --baseline-rev worktree (bench/worktree.ts), which "pgbun-rev" runs; none without it. */
  baselineEntry?: string;
  /** PgBouncer's max_prepared_statements (1.21+), for a run that needs named statements; PgBouncer's default when absent. */
  pgbouncerMaxPreparedStatements?: number;
}

/**
 * Session-mode targets whose pool has a server connection per client (PoolerSettings.widePoolSize), started only in
 * bench/run.ts's efficiency phase, one at a time. They keep idle servers (server_idle_timeout 0): the pool, filled a
 * step at a time before the measured runs, stays full between them.
 */
const WIDE_TARGETS: ReadonlySet<TargetId> = new Set<TargetId>(["pgbouncer-session-wide", "pgbun-session-wide"]);

export const isWideTarget = (id: TargetId): boolean => WIDE_TARGETS.has(id);

/** The pool size and client limit a target runs with. */
function settingsOf(id: TargetId, s: PoolerSettings): { poolSize: number; maxClientConn: number } {
  return { poolSize: isWideTarget(id) ? s.widePoolSize : s.poolSize, maxClientConn: s.maxClientConn };
}

export interface Target {
  id: TargetId;
  endpoint: Endpoint;
  /** The pooler's pid (for RSS and CPU; with workers the supervisor's), undefined for direct PostgreSQL. */
  pid?: number;
  /** undefined while alive; otherwise how it ended. */
  exitStatus(): string | undefined;
  /** pgbun's log lines at warn level or above since start; PgBouncer's log; the pass-through's stderr. */
  logs(): string;
  /** Ends the process (its server connections close with it); nothing for direct PostgreSQL. */
  stop(): Promise<void>;
}

const PGBUN_VARIANTS: Partial<Record<TargetId, PgbunVariant>> = {
  pgbun: "plain",
  "pgbun-session": "session",
  "pgbun-session-wide": "session-wide",
  "pgbun-twin-noop10": "plain",
  "pgbun-twin-audit-log": "plain",
  "pgbun-twin-workers2": "plain",
  "pgbun-twin-floor": "plain",
  "pgbun-noop10": "noop10",
  "pgbun-audit-log": "audit-log",
  "pgbun-workers2": "workers2",
  "pgbun-statement": "statement",
  "pgbun-verify": "verify",
  "pgbun-twin-verify": "plain",
  "pgbun-rev": "plain",
  "pgbun-twin-rev": "plain",
  "pgbun-scram": "scram",
  "pgbun-tls": "tls",
  "pgbun-metrics": "metrics",
  "pgbun-twin-metrics": "plain",
  "pgbun-check0": "check0",
  "pgbun-twin-check0": "plain",
};

const PGBOUNCER_MODES: Partial<Record<TargetId, "session" | "transaction" | "statement">> = {
  pgbouncer: "transaction",
  "pgbouncer-session": "session",
  "pgbouncer-session-wide": "session",
  "pgbouncer-statement": "statement",
  "pgbouncer-scram": "transaction",
  "pgbouncer-tls": "transaction",
};

/** Targets that need the auth_file and certificate of bench/login-files.ts. */
const LOGIN_TARGETS: Partial<Record<TargetId, "scram" | "tls">> = {
  "pgbouncer-scram": "scram",
  "pgbun-scram": "scram",
  "pgbouncer-tls": "tls",
  "pgbun-tls": "tls",
};

function endpoint(host: string, port: number, pg: TestPostgres): Endpoint {
  return { host, port, database: BENCH_DATABASE, user: pg.superuser };
}

function ended(proc: { exitCode: number | null; signalCode: NodeJS.Signals | number | null }): string | undefined {
  if (proc.exitCode === null && proc.signalCode === null) return undefined;
  return proc.signalCode ? `killed by ${proc.signalCode}` : `exited with code ${proc.exitCode}`;
}

export async function startTarget(id: TargetId, pg: TestPostgres, pgbouncerBinary: string | null, s: PoolerSettings): Promise<Target> {
  if (id === "direct") return { id, endpoint: endpoint(pg.host, pg.port, pg), exitStatus: () => undefined, logs: () => "", stop: async () => {} };
  const poolMode = PGBOUNCER_MODES[id];
  if (poolMode) {
    if (!pgbouncerBinary) throw new Error("pgbouncer is not available");
    const idle = isWideTarget(id) ? { serverIdleTimeout: 0 } : {};
    const prepared = s.pgbouncerMaxPreparedStatements === undefined ? {} : { maxPreparedStatements: s.pgbouncerMaxPreparedStatements };
    const kind = LOGIN_TARGETS[id];
    const files = kind ? await loginFiles(pg) : undefined;
    const login = !files ? {} : kind === "scram" ? { scramAuthFile: files.authFile } : { clientTls: { certFile: files.certFile, keyFile: files.keyFile } };
    const b: PgbouncerInstance = await startPgbouncer(pgbouncerBinary, pg, { poolMode, ...settingsOf(id, s), ...idle, ...prepared, ...login });
    return { id, endpoint: endpoint(b.host, b.port, pg), pid: b.pid, exitStatus: () => ended(b.proc), logs: () => b.logs(), stop: () => b.stop() };
  }
  if (id === "passthrough") {
    const t = await startPassthrough(pg);
    return { id, endpoint: endpoint(t.host, t.port, pg), pid: t.proc.pid, exitStatus: () => ended(t.proc), logs: () => t.logs(), stop: () => killProcess(t.proc, "SIGTERM") };
  }
  const variant = PGBUN_VARIANTS[id];
  if (!variant) throw new Error(`unknown target ${id}`);
  if (id === "pgbun-rev" && !s.baselineEntry) throw new Error("pgbun-rev needs --baseline-rev");
  const entry = id === "pgbun-rev" ? { entry: s.baselineEntry } : {};
  const login = LOGIN_TARGETS[id] ? { login: await loginFiles(pg) } : {};
  const p: TestPgbun = await startPgbunVariant(variant, pg, { ...settingsOf(id, s), ...entry, ...login });
  return { id, endpoint: endpoint(p.host, p.port, pg), pid: p.proc.pid, exitStatus: () => ended(p.proc), logs: () => p.logs(), stop: async () => void (await p.stop("SIGQUIT")) };
}
