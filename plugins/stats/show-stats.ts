// SHOW STATS, STATS_TOTALS, STATS_AVERAGES: per-database totals since start and averages of the last stats_period.
import { COUNTER_FIELDS, type CounterValues } from "./counters.ts";
import { ADMIN_DB, type AdminEnv } from "./env.ts";
import { columns, sortRows, type Cell, type Table } from "./table.ts";

/** The counters' names in SHOW STATS (total_ and avg_ columns), in COUNTER_FIELDS order. */
const TOTAL_NAMES = [
  "total_server_assignment_count",
  "total_xact_count",
  "total_query_count",
  "total_received",
  "total_sent",
  "total_xact_time",
  "total_query_time",
  "total_wait_time",
  "total_client_parse_count",
  "total_server_parse_count",
  "total_bind_count",
];
const AVG_NAMES = [
  "avg_server_assignment_count",
  "avg_xact_count",
  "avg_query_count",
  "avg_recv",
  "avg_sent",
  "avg_xact_time",
  "avg_query_time",
  "avg_wait_time",
  "avg_client_parse_count",
  "avg_server_parse_count",
  "avg_bind_count",
];
/** STATS_TOTALS and STATS_AVERAGES name the same columns without prefixes. */
const BARE_NAMES = [
  "server_assignment_count",
  "xact_count",
  "query_count",
  "bytes_received",
  "bytes_sent",
  "xact_time",
  "query_time",
  "wait_time",
  "client_parse_count",
  "server_parse_count",
  "bind_count",
];

const STATS_COLUMNS = columns("database", ...[...TOTAL_NAMES, ...AVG_NAMES].map((n) => `#${n}`));
const BARE_COLUMNS = columns("database", ...BARE_NAMES.map((n) => `#${n}`));

const zeros = (): CounterValues => new Array<number>(COUNTER_FIELDS.length).fill(0);

/** Every database the console reports: configured ones, any with counters, and the console itself. */
function databases(env: AdminEnv, totals: Map<string, CounterValues>): string[] {
  const names = new Set<string>(Object.keys(env.core.config.databases).filter((n) => n !== "*"));
  for (const db of totals.keys()) names.add(db);
  names.add(ADMIN_DB);
  return [...names];
}

function gather(env: AdminEnv): { names: string[]; totals: Map<string, CounterValues> } {
  env.refreshBytes();
  const totals = env.stats.totalsByDatabase();
  return { names: databases(env, totals), totals };
}

const round = (v: CounterValues) => v.map((x) => Math.round(x));

export function showStats(env: AdminEnv): Table {
  const { names, totals } = gather(env);
  const rows: Cell[][] = names.map((db) => [db, ...round(totals.get(db) ?? zeros()), ...(env.stats.averages.get(db) ?? zeros())]);
  return { columns: STATS_COLUMNS, rows: sortRows(rows) };
}

export function showStatsTotals(env: AdminEnv): Table {
  const { names, totals } = gather(env);
  return { columns: BARE_COLUMNS, rows: sortRows(names.map((db) => [db, ...round(totals.get(db) ?? zeros())])) };
}

export function showStatsAverages(env: AdminEnv): Table {
  const { names } = gather(env);
  return { columns: BARE_COLUMNS, rows: sortRows(names.map((db) => [db, ...(env.stats.averages.get(db) ?? zeros())])) };
}
