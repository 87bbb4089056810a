// SHOW STATS, STATS_TOTALS, STATS_AVERAGES: per-database totals since start and averages of the last stats_period (capability "stats").
import { ADMIN_DB, type AdminEnv, type CounterName, type StatsView } from "./env.ts";
import { columns, sortRows, type Cell, type Table } from "./table.ts";

/** Each counter in SHOW STATS order: its name in the stats API, in SHOW STATS (total_, avg_), and in STATS_TOTALS/AVERAGES. */
const COUNTERS: ReadonlyArray<readonly [CounterName, string, string, string]> = [
  ["serverAssignments", "total_server_assignment_count", "avg_server_assignment_count", "server_assignment_count"],
  ["xacts", "total_xact_count", "avg_xact_count", "xact_count"],
  ["queries", "total_query_count", "avg_query_count", "query_count"],
  ["received", "total_received", "avg_recv", "bytes_received"],
  ["sent", "total_sent", "avg_sent", "bytes_sent"],
  ["xactTime", "total_xact_time", "avg_xact_time", "xact_time"],
  ["queryTime", "total_query_time", "avg_query_time", "query_time"],
  ["waitTime", "total_wait_time", "avg_wait_time", "wait_time"],
  ["clientParses", "total_client_parse_count", "avg_client_parse_count", "client_parse_count"],
  ["serverParses", "total_server_parse_count", "avg_server_parse_count", "server_parse_count"],
  ["binds", "total_bind_count", "avg_bind_count", "bind_count"],
  ["clientLogins", "total_client_login_count", "avg_client_login_count", "client_login_count"],
];

/** The counters STATS_AVERAGES names with an avg_ prefix (PgBouncer 1.25's column names). */
const AVG_PREFIXED: ReadonlySet<CounterName> = new Set(["clientParses", "serverParses", "binds", "clientLogins"]);

const STATS_COLUMNS = columns("database", ...[...COUNTERS.map((c) => c[1]), ...COUNTERS.map((c) => c[2])].map((n) => `#${n}`));
const TOTALS_COLUMNS = columns("database", ...COUNTERS.map((c) => `#${c[3]}`));
const AVERAGES_COLUMNS = columns("database", ...COUNTERS.map((c) => `#${AVG_PREFIXED.has(c[0]) ? `avg_${c[3]}` : c[3]}`));

type Values = Readonly<Record<CounterName, number>> | undefined;

/** A database's counters in column order (0 for one it has none of), rounded: times are fractional µs. */
const cells = (v: Values): number[] => COUNTERS.map(([field]) => Math.round(v?.[field] ?? 0));

interface Gathered {
  names: string[];
  totals: ReadonlyMap<string, Readonly<Record<CounterName, number>>>;
  averages: ReadonlyMap<string, Readonly<Record<CounterName, number>>>;
}

/**
 * Every database the console reports: configured ones, any with counters, and the console itself. Without a
 * stats plugin (capability "stats") there are no counters: the tables keep their columns and have no rows.
 */
function gather(env: AdminEnv, stats: StatsView): Gathered {
  const totals = stats.totals();
  const names = new Set<string>(Object.keys(env.api.config.databases).filter((n) => n !== "*"));
  for (const db of totals.keys()) names.add(db);
  names.add(ADMIN_DB);
  return { names: [...names], totals, averages: stats.averages() };
}

function table(env: AdminEnv, cols: Table["columns"], row: (g: Gathered, db: string) => Cell[]): Table {
  const stats = env.stats();
  if (!stats) return { columns: cols, rows: [] };
  const g = gather(env, stats);
  return { columns: cols, rows: sortRows(g.names.map((db) => [db, ...row(g, db)])) };
}

export function showStats(env: AdminEnv): Table {
  return table(env, STATS_COLUMNS, (g, db) => [...cells(g.totals.get(db)), ...cells(g.averages.get(db))]);
}

export function showStatsTotals(env: AdminEnv): Table {
  return table(env, TOTALS_COLUMNS, (g, db) => cells(g.totals.get(db)));
}

export function showStatsAverages(env: AdminEnv): Table {
  return table(env, AVERAGES_COLUMNS, (g, db) => cells(g.averages.get(db)));
}
