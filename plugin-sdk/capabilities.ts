// The APIs the built-in plugins offer other plugins by capability name: api.capability<AdminApi>("admin"), "pool", "stats".
import type { PoolMode } from "./config.ts";
import type { Client, InternalError, InternalRows, Server } from "./connections.ts";

/** A cell of an admin console table: text, a number (int8 columns), or NULL. */
export type AdminCell = string | number | null;

export interface AdminColumn {
  name: string;
  /** text, or int (int8, for counts and times), as PgBouncer types its columns. */
  type: "text" | "int";
}

export interface AdminTable {
  columns: readonly AdminColumn[];
  rows: AdminCell[][];
}

/** What a console command or SHOW table is given. */
export interface AdminRequest {
  /** The admin console client that asked. */
  readonly client: Client;
  /** The words after the command keyword (after SHOW NAME for tables), as typed. */
  readonly args: string;
}

/** The admin console (capability "admin", provided by pgbun:admin). */
export interface AdminApi {
  /**
   * Adds `SHOW <name>`: the table is built when asked for. Names are case-insensitive; a name the console
   * already has (built in or added) is refused with an error at apply time.
   */
  addShow(name: string, table: (req: AdminRequest) => AdminTable | Promise<AdminTable>, options?: { doc?: string }): void;
  /**
   * Adds a console command by its first keyword. `run` returns the CommandComplete tag, or a table; a thrown
   * Error is sent as an ErrorResponse. Commands that change something are refused to stats_users unless
   * `readOnly` is set.
   */
  addCommand(
    keyword: string,
    run: (req: AdminRequest) => string | AdminTable | Promise<string | AdminTable>,
    options?: { doc?: string; readOnly?: boolean },
  ): void;
}

/** One pool, as the pool plugin shows it to others. */
export interface PoolInfo {
  readonly database: string;
  readonly user: string;
  readonly mode: PoolMode;
  /** Its servers past login (any state but closed). */
  readonly servers: Iterable<Server>;
  /** Server logins in progress. */
  readonly connecting: number;
  /** Logged-in clients of the pool. */
  readonly clientCount: number;
  /** What the health checks and server logins found (SHOW POOLS, metrics). */
  readonly health: PoolHealth;
}

/** A pool's health: "unknown" until a server login or a health check has said otherwise. */
export interface PoolHealth {
  readonly state: "healthy" | "unhealthy" | "unknown";
  /** When (ms since the epoch) a check or login last said something; 0 = never. */
  readonly lastCheck: number;
  /** The last failure's message, "" when none. */
  readonly lastError: string;
  /** Checks or logins that failed in a row since the last success. */
  readonly consecutiveFailures: number;
}

/** The pool (capability "pool", provided by pgbun:pool or a replacement). */
export interface PoolApi {
  pools(): Iterable<PoolInfo>;
  /** The pool of a logged-in client, or undefined. */
  poolOf(client: Client): PoolInfo | undefined;
  /**
   * A background health check (pgbun:health-check): takes a server idle in its pool out of it while `check` runs
   * (no client is handed it meanwhile), then puts it back, or closes it when `check` resolves a reason or throws;
   * the pool's health records the result. False (and `check` is not run) when the server is not idle in a pool.
   */
  checkIdle(server: Server, check: (server: Server) => Promise<string | undefined>): boolean;
}

/** The counters, in SHOW STATS order (PgBouncer's names without total_/avg_ prefixes, in camelCase). */
export const COUNTER_FIELDS = [
  "serverAssignments",
  "xacts",
  "queries",
  "received",
  "sent",
  "xactTime",
  "queryTime",
  "waitTime",
  "clientParses",
  "serverParses",
  "binds",
  /** Client logins (PgBouncer 1.25's client_login_count), counted once per login. */
  "clientLogins",
] as const;
export type CounterField = (typeof COUNTER_FIELDS)[number];

/** One database's counters. Totals: counts, bytes, and times in µs (not rounded). Averages: see StatsApi.averages. */
export type Counters = Readonly<Record<CounterField, number>>;

/**
 * The upper bounds (seconds, inclusive: Prometheus' `le`) of the duration histograms' buckets, 1-2.5-5 per decade
 * from 100 µs to 10 s; a last bucket (+Inf) takes what is longer.
 */
export const DURATION_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * One database's duration histograms, Prometheus-style cumulative: `counts[i]` is how many took at most
 * `bounds[i]` seconds; the last entry (index bounds.length, +Inf) is every one, so it equals the matching counter.
 */
export interface DurationHistograms {
  readonly bounds: readonly number[];
  /** Per query (counter `queries`; sum `queryTime`). */
  readonly query: readonly number[];
  /** Per transaction (counter `xacts`; sum `xactTime`). */
  readonly xact: readonly number[];
  /** Per server assignment, the client's wait for it (0 when a server was free; counter `serverAssignments`; sum `waitTime`). */
  readonly wait: readonly number[];
}

/**
 * The counters (capability "stats", provided by pgbun:stats): `api.capability<StatsApi>("stats")`. pgbun:admin's SHOW STATS, STATS_TOTALS and STATS_AVERAGES read these; a
 * replacement stats plugin that offers this shape keeps them working.
 */
export interface StatsApi {
  /** Totals since start, summed per database; the bytes of clients linked right now are counted up to now. */
  totals(): ReadonlyMap<string, Counters>;
  /**
   * Per database, over the last complete stats_period: counts and bytes per second; xactTime, queryTime the
   * average per transaction, per query; waitTime the average per server assignment (µs, rounded, as PgBouncer).
   */
  averages(): ReadonlyMap<string, Counters>;
  /** How long a waiting client has waited for a server so far by the stats' clock, in ms; 0 when it has no wait mark. */
  waitedMs(client: Client): number;
  /** Starts a client's wait clock, if it is not running (a client parked by someone other than the pool waits too). */
  markWaiting(client: Client): void;
  /** The duration histograms since start, summed per database (optional: a stats plugin may keep totals only). */
  histograms?(): ReadonlyMap<string, DurationHistograms>;
  /** Counts one query and one transaction answered without a server (the admin console's own) for a database and user. */
  countServed(database: string, user: string): void;
}

/** Runs an internal query and resolves with its rows; rejects with PostgreSQL's error (code, message). */
export function internalQuery(server: Server, sql: string): Promise<InternalRows> {
  return new Promise((resolve, reject) => {
    server.runInternal(sql, (error: InternalError | null, rows) => {
      if (error) reject(Object.assign(new Error(error.message), { code: error.code }));
      else resolve(rows);
    });
  });
}
