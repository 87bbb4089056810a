// What pgbun:stats offers other plugins as capability "stats": PgBouncer's counters per database, and wait clocks.
import type { Client } from "../../plugin-sdk/index.ts";

export const PLUGIN_NAME = "pgbun:stats";

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
] as const;
export type CounterField = (typeof COUNTER_FIELDS)[number];

/** One database's counters. Totals: counts, bytes, and times in µs (not rounded). Averages: see StatsApi.averages. */
export type Counters = Readonly<Record<CounterField, number>>;

/**
 * `api.capability<StatsApi>("stats")`. pgbun:admin's SHOW STATS, STATS_TOTALS and STATS_AVERAGES read these; a
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
  /** Counts one query and one transaction answered without a server (the admin console's own) for a database and user. */
  countServed(database: string, user: string): void;
}
