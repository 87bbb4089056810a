// Merges the workers' SHOW tables into one: counts summed, the longest wait, weighted average times, connections listed together.
import type { ShowTarget } from "./commands.ts";
import { sortRows, type Cell, type Table } from "./table.ts";

/** Combines one column of the rows (one per worker) that share a key; `col` finds another column by name. */
type Rule = (rows: Cell[][], at: number, col: (name: string) => number) => Cell;

const num = (v: Cell | undefined): number => (typeof v === "number" ? v : 0);

/** Sum of the numbers; a column no worker filled in (null) stays null. */
const sum: Rule = (rows, at) => {
  let total = 0;
  let any = false;
  for (const r of rows) {
    if (typeof r[at] !== "number") continue;
    total += r[at] as number;
    any = true;
  }
  return any ? total : (rows[0]![at] ?? null);
};

const max: Rule = (rows, at) => rows.reduce<Cell>((m, r) => (typeof r[at] === "number" && (typeof m !== "number" || (r[at] as number) > m) ? r[at]! : m), rows[0]![at] ?? null);

const first: Rule = (rows, at) => rows[0]![at] ?? null;

/** maxwait and maxwait_us both come from the worker with the longest wait (they are one duration). */
const longestWait: Rule = (rows, at, col) => {
  const s = col("maxwait");
  const us = col("maxwait_us");
  let best = rows[0]!;
  for (const r of rows) if (num(r[s]) * 1e6 + num(r[us]) > num(best[s]) * 1e6 + num(best[us])) best = r;
  return best[at] ?? null;
};

/** A pool's health across workers: unhealthy if any worker found it so, else healthy if any checked it. */
const HEALTH_RANK: Readonly<Record<string, number>> = { unhealthy: 2, healthy: 1 };
const worstHealth: Rule = (rows, at) => rows.reduce<Cell>((w, r) => ((HEALTH_RANK[String(r[at])] ?? 0) > (HEALTH_RANK[String(w)] ?? 0) ? r[at]! : w), rows[0]![at] ?? null);

/** last_check and last_error from the worker that checked last (the times are formatted alike, so they sort as text). */
const latestCheck: Rule = (rows, at, col) => {
  const t = col("last_check");
  let best = rows[0]!;
  for (const r of rows) if (String(r[t] ?? "") > String(best[t] ?? "")) best = r;
  return best[at] ?? null;
};

/**
 * An average time over the workers: each worker's average weighted by its count of what was timed. The averages
 * are per transaction, per query, per server assignment of the last stats_period; the weights are those counts
 * per second over equally long periods, so weighting by the rate is weighting by the count. A rate below one per
 * second rounds to 0: when every weight is 0, the workers that timed anything count alike.
 */
const weightedBy =
  (weight: string): Rule =>
  (rows, at, col) => {
    const w = col(weight);
    let total = 0;
    let weights = 0;
    for (const r of rows) {
      total += num(r[at]) * num(r[w]);
      weights += num(r[w]);
    }
    if (weights > 0) return Math.round(total / weights);
    const seen = rows.map((r) => num(r[at])).filter((v) => v > 0);
    return seen.length > 0 ? Math.round(seen.reduce((a, b) => a + b, 0) / seen.length) : 0;
  };

/** SHOW LISTS: connections add up across workers; configured objects (databases, users, pools) exist in each. */
const CONNECTION_LISTS: ReadonlySet<Cell> = new Set(["used_clients", "free_clients", "login_clients", "used_servers", "free_servers"]);
const listItems: Rule = (rows, at, col) => (CONNECTION_LISTS.has(rows[0]![col("list")] ?? null) ? sum : max)(rows, at, col);

interface MergeSpec {
  /** Columns naming a row: the workers' rows with equal keys become one. None: every row is kept (connections). */
  key: string[];
  /** Rules by column name; other int columns are summed, other text columns keep the asking worker's value. */
  rules?: Record<string, Rule>;
  /** Keep the asking worker's row order (SHOW LISTS) instead of sorting by the key. */
  unsorted?: boolean;
}

const SPECS: Partial<Record<ShowTarget, MergeSpec>> = {
  pools: {
    key: ["database", "user"],
    rules: { maxwait: longestWait, maxwait_us: longestWait, health: worstHealth, last_check: latestCheck, last_error: latestCheck, check_failures: max },
  },
  stats: {
    key: ["database"],
    rules: {
      avg_xact_time: weightedBy("avg_xact_count"),
      avg_query_time: weightedBy("avg_query_count"),
      avg_wait_time: weightedBy("avg_server_assignment_count"),
    },
  },
  stats_totals: { key: ["database"] },
  stats_averages: {
    key: ["database"],
    rules: { xact_time: weightedBy("xact_count"), query_time: weightedBy("query_count"), wait_time: weightedBy("server_assignment_count") },
  },
  clients: { key: [] },
  servers: { key: [] },
  sockets: { key: [] },
  active_sockets: { key: [] },
  // object counts and the processes' memory add up (size is per object, the same everywhere)
  mem: { key: ["name"], rules: { size: first }, unsorted: true },
  // Each worker reports its own limits (pool_size and the like are per-worker shares, max_*_client_connections
  // hold per worker): their sum is what the workers together may open. Current counts add up; paused and
  // disabled are set when any worker has them; the rest is configuration, the same in every worker.
  databases: { key: ["name"], rules: { port: first, server_lifetime: first, paused: max, disabled: max } },
  users: { key: ["name"] },
  lists: { key: ["list"], rules: { items: listItems }, unsorted: true },
};

/** Whether a sibling's table has the asking worker's columns (anything else is not merged). */
export function sameColumns(a: Table, b: Table): boolean {
  return a.columns.length === b.columns.length && a.columns.every((c, i) => c.name === b.columns[i]!.name && c.type === b.columns[i]!.type);
}

/** Whether a SHOW adds up across workers (CONFIG, VERSION, HELP are the asking worker's own). */
export function mergesAcrossWorkers(target: ShowTarget): boolean {
  return SPECS[target] !== undefined;
}

/** One table from the workers' tables (the asking worker's first, all with its columns). */
export function mergeTables(target: ShowTarget, tables: Table[]): Table {
  const spec = SPECS[target];
  const mine = tables[0]!;
  if (!spec || tables.length === 1) return mine;
  const columns = mine.columns;
  const col = (name: string) => columns.findIndex((c) => c.name === name);
  if (spec.key.length === 0) {
    // connections: ids are unique across workers, so the rows simply go together, ordered by id
    const id = col("id");
    return { columns, rows: tables.flatMap((t) => t.rows).sort((a, b) => num(a[id]) - num(b[id])) };
  }
  const keyAt = spec.key.map(col);
  const groups = new Map<string, Cell[][]>();
  for (const t of tables) {
    for (const row of t.rows) {
      const key = JSON.stringify(keyAt.map((i) => row[i]));
      const group = groups.get(key);
      if (group) group.push(row);
      else groups.set(key, [row]);
    }
  }
  const rules = columns.map((c) => (spec.key.includes(c.name) ? first : (spec.rules?.[c.name] ?? (c.type === "int" ? sum : first))));
  const rows = [...groups.values()].map((group) => columns.map((_, at) => rules[at]!(group, at, col)));
  return { columns, rows: spec.unsorted ? rows : sortRows(rows, spec.key.length) };
}
