// /metrics: a prom-client registry whose collect() callbacks read the scrape's snapshot (nothing is pushed per message).
import { Counter, Gauge, Registry, type Metric } from "prom-client";
import { COUNTER_FIELDS, type DatabaseEntry, type PgbunConfig } from "../../plugin-sdk/index.ts";
import type { HistogramSample, PoolSample, Snapshot } from "./snapshot.ts";

/** PgBouncer's counters under the pgbouncer_exporter's names (stats_totals), factor from pgbun's units (µs). */
const STATS: ReadonlyArray<{ field: string; name: string; help: string; factor: number }> = [
  { field: "queries", name: "pgbouncer_stats_queries_pooled_total", help: "Total number of SQL queries pooled", factor: 1 },
  { field: "queryTime", name: "pgbouncer_stats_queries_duration_seconds_total", help: "Total number of seconds spent by pgbouncer when actively connected to PostgreSQL, executing queries", factor: 1e-6 },
  { field: "received", name: "pgbouncer_stats_received_bytes_total", help: "Total volume in bytes of network traffic received by pgbouncer, shown as bytes", factor: 1 },
  { field: "sent", name: "pgbouncer_stats_sent_bytes_total", help: "Total volume in bytes of network traffic sent by pgbouncer, shown as bytes", factor: 1 },
  { field: "waitTime", name: "pgbouncer_stats_client_wait_seconds_total", help: "Time spent by clients waiting for a server in seconds", factor: 1e-6 },
  { field: "xacts", name: "pgbouncer_stats_sql_transactions_pooled_total", help: "Total number of SQL transactions pooled", factor: 1 },
  { field: "xactTime", name: "pgbouncer_stats_server_in_transaction_seconds_total", help: "Total number of seconds spent by pgbouncer when connected to PostgreSQL in a transaction, either idle in transaction or executing queries", factor: 1e-6 },
  { field: "clientParses", name: "pgbouncer_stats_client_parses_total", help: "Total number of prepared statement Parse messages received from clients", factor: 1 },
  { field: "serverParses", name: "pgbouncer_stats_server_parses_total", help: "Total number of prepared statement Parse messages sent by pgbouncer to PostgreSQL", factor: 1 },
  { field: "binds", name: "pgbouncer_stats_binds_total", help: "Total number of prepared statements readied for execution with a Bind message", factor: 1 },
  { field: "serverAssignments", name: "pgbouncer_stats_server_assignments_total", help: "Total number of client connections which have been served since process start", factor: 1 },
];

/** SHOW POOLS' columns under the exporter's names. */
const POOLS: ReadonlyArray<{ field: keyof PoolSample; name: string; help: string }> = [
  { field: "clActive", name: "pgbouncer_pools_client_active_connections", help: "Client connections linked to server connection and able to process queries, shown as connection" },
  { field: "clWaiting", name: "pgbouncer_pools_client_waiting_connections", help: "Client connections waiting on a server connection, shown as connection" },
  { field: "svActive", name: "pgbouncer_pools_server_active_connections", help: "Server connections linked to a client connection, shown as connection" },
  { field: "svIdle", name: "pgbouncer_pools_server_idle_connections", help: "Server connections idle and ready for a client query, shown as connection" },
  { field: "svUsed", name: "pgbouncer_pools_server_used_connections", help: "Server connections idle long enough to need a check before reuse, shown as connection" },
  { field: "svTested", name: "pgbouncer_pools_server_testing_connections", help: "Server connections currently running their reset or check query, shown as connection" },
  { field: "svLogin", name: "pgbouncer_pools_server_login_connections", help: "Server connections currently in the process of logging in, shown as connection" },
  { field: "svBeingCanceled", name: "pgbouncer_pools_server_being_canceled_connections", help: "Servers that normally could become idle but are waiting to do so until all in-flight cancel requests have completed" },
];

/**
 * The duration histograms (pgbun:stats' buckets, StatsApi.histograms); _sum and _count are the totals the
 * pgbouncer_stats_* counters show, so `rate(x_sum) / rate(x_count)` is the mean and histogram_quantile() works.
 */
const HISTOGRAMS: ReadonlyArray<{ name: string; help: string; series: keyof HistogramSample; sum: string; count: string }> = [
  { name: "pgbun_query_duration_seconds", help: "Query time (sent to ReadyForQuery, while linked to a server), per query", series: "query", sum: "queryTime", count: "queries" },
  { name: "pgbun_transaction_duration_seconds", help: "Transaction time (first query to ReadyForQuery idle, while linked to a server), per transaction", series: "xact", sum: "xactTime", count: "xacts" },
  { name: "pgbun_client_wait_seconds", help: "Time a client waited for a server, per server assignment (0 when one was free)", series: "wait", sum: "waitTime", count: "serverAssignments" },
];

const HEALTH_STATES = ["healthy", "unhealthy", "unknown"] as const;

/** camelCase counter name → snake_case, for counters the table above does not know (a newer stats plugin's). */
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const KNOWN_FIELDS: ReadonlySet<string> = new Set(STATS.map((s) => s.field));

/**
 * A histogram of counts bucketed already: prom-client's Histogram buckets observations itself, one observe() per
 * event, which would be per query on the hot path; pgbun:stats counts into its buckets and this reads them.
 */
class BucketedHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Array<{ labels: Record<string, string>; bounds: readonly number[]; cumulative: readonly number[] | null; sum: number; count: number }>,
  ) {}

  get() {
    const values: Array<{ labels: Record<string, string>; value: number; metricName: string }> = [];
    for (const r of this.read()) {
      const bucket = `${this.name}_bucket`;
      // without the stats plugin's buckets only +Inf is known (still a valid histogram: every event is in it)
      if (r.cumulative) r.bounds.forEach((b, i) => values.push({ labels: { ...r.labels, le: String(b) }, value: r.cumulative![i] ?? 0, metricName: bucket }));
      values.push({ labels: { ...r.labels, le: "+Inf" }, value: r.cumulative ? (r.cumulative[r.bounds.length] ?? 0) : r.count, metricName: bucket });
      values.push({ labels: r.labels, value: r.sum, metricName: `${this.name}_sum` });
      values.push({ labels: r.labels, value: r.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

const DATABASE_LABELS = ["name", "host", "port", "database", "force_user", "pool_mode"];

/**
 * SHOW DATABASES' rows as the exporter labels them: each named [databases] entry, and each database a "*" entry
 * serves right now (as PgBouncer lists the entries it made for them).
 */
function databaseRows(config: PgbunConfig, s: Snapshot): Array<{ labels: Record<string, string>; entry: DatabaseEntry; name: string }> {
  const rows: Array<{ labels: Record<string, string>; entry: DatabaseEntry; name: string }> = [];
  const add = (name: string, entry: DatabaseEntry) =>
    rows.push({
      name,
      entry,
      labels: {
        name,
        host: entry.host.join(","),
        port: String(entry.port),
        database: entry.dbname ?? name,
        force_user: entry.user ?? "",
        pool_mode: entry.pool_mode ?? config.settings.pool_mode,
      },
    });
  for (const [name, entry] of Object.entries(config.databases)) if (name !== "*") add(name, entry);
  const fallback = Object.hasOwn(config.databases, "*") ? config.databases["*"] : undefined;
  if (fallback) {
    const seen = new Set<string>();
    for (const p of s.pools) {
      if (Object.hasOwn(config.databases, p.database) || seen.has(p.database)) continue;
      seen.add(p.database);
      add(p.database, fallback);
    }
  }
  return rows;
}

/** The registry; `current()` is the snapshot the scrape in progress took (set before registry.metrics()). */
export function metricsRegistry(current: () => Snapshot, config: () => PgbunConfig): Registry {
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: Snapshot) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill(this, current());
      },
    });
  const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter, s: Snapshot) => void) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill(this, current());
      },
    });

  gauge("pgbouncer_up", "The pooler answered this scrape", [], (g) => g.set(1));
  gauge("pgbouncer_version_info", "The pooler's version", ["version"], (g, s) => g.set({ version: `pgbun ${s.version}` }, 1));
  gauge("pgbouncer_config_max_client_connections", "Config maximum number of client connections (summed over workers)", [], (g, s) => g.set(s.maxClientConn));

  for (const m of POOLS) {
    gauge(m.name, m.help, ["database", "user"], (g, s) => {
      for (const p of s.pools) g.set({ database: p.database, user: p.user }, p[m.field] as number);
    });
  }
  gauge("pgbouncer_pools_client_maxwait_seconds", "Age of oldest unserved client connection, shown as second", ["database", "user"], (g, s) => {
    for (const p of s.pools) g.set({ database: p.database, user: p.user }, p.maxWaitMs / 1000);
  });

  const databases = (fill: (labels: Record<string, string>, entry: DatabaseEntry, name: string, s: Snapshot) => number) => (g: Gauge, s: Snapshot) => {
    for (const row of databaseRows(config(), s)) g.set(row.labels, fill(row.labels, row.entry, row.name, s));
  };
  gauge("pgbouncer_databases_pool_size", "Maximum number of server connections", DATABASE_LABELS, databases((_l, e) => e.pool_size ?? config().settings.default_pool_size));
  gauge("pgbouncer_databases_reserve_pool", "Maximum number of additional connections for this database", DATABASE_LABELS, databases((_l, e) => e.reserve_pool_size ?? config().settings.reserve_pool_size));
  gauge("pgbouncer_databases_max_connections", "Maximum number of allowed connections for this database (0: no limit)", DATABASE_LABELS, databases((_l, e) => e.max_db_connections ?? config().settings.max_db_connections));
  gauge("pgbouncer_databases_current_connections", "Current number of connections for this database", DATABASE_LABELS, databases((_l, _e, name, s) => {
    let n = 0;
    for (const p of s.pools) if (p.database === name) n += p.svActive + p.svIdle + p.svUsed + p.svTested + p.svLogin + p.svBeingCanceled;
    return n;
  }));
  gauge("pgbouncer_databases", "Count of databases", [], (g, s) => g.set(databaseRows(config(), s).length));
  gauge("pgbouncer_users", "Count of users", [], (g) => g.set(Object.keys(config().users).length));
  gauge("pgbouncer_pools", "Count of pools", [], (g, s) => g.set(s.pools.length));
  gauge("pgbouncer_used_clients", "Count of used clients", [], (g, s) => g.set((s.clients.active ?? 0) + (s.clients.waiting ?? 0)));
  gauge("pgbouncer_login_clients", "Count of clients in login state", [], (g, s) => g.set(s.clients.login ?? 0));
  gauge("pgbouncer_used_servers", "Count of used servers", [], (g, s) => {
    let n = 0;
    for (const [state, count] of Object.entries(s.servers)) if (state !== "idle") n += count;
    g.set(n);
  });

  for (const m of STATS) {
    counter(m.name, m.help, ["database"], (c, s) => {
      for (const [database, t] of Object.entries(s.stats)) c.inc({ database }, (t[m.field] ?? 0) * m.factor);
    });
  }
  // counters a stats plugin adds beyond PgBouncer's (client logins, ...) keep their name under pgbun_
  for (const f of COUNTER_FIELDS.filter((f) => !KNOWN_FIELDS.has(f))) {
    counter(`pgbun_stats_${snake(f)}_total`, `The stats plugin's ${f} counter, summed per database`, ["database"], (c, s) => {
      for (const [database, t] of Object.entries(s.stats)) c.inc({ database }, t[f] ?? 0);
    });
  }
  for (const m of HISTOGRAMS) {
    registry.registerMetric(
      new BucketedHistogram(m.name, m.help, () => {
        const s = current();
        return Object.entries(s.stats).map(([database, t]) => ({
          labels: { database },
          bounds: s.buckets,
          cumulative: s.buckets.length > 0 ? (s.histograms[database]?.[m.series] ?? null) : null,
          sum: (t[m.sum] ?? 0) / 1e6,
          count: t[m.count] ?? 0,
        }));
      }) as unknown as Metric,
    );
  }

  gauge("pgbun_clients", "Client connections by state (login, active, waiting), the admin console's included", ["state"], (g, s) => {
    for (const [state, n] of Object.entries(s.clients)) g.set({ state }, n);
  });
  gauge("pgbun_servers", "Server connections by state (PgBouncer's: login, idle, active, used, tested, being_canceled)", ["state"], (g, s) => {
    for (const [state, n] of Object.entries(s.servers)) g.set({ state }, n);
  });
  gauge("pgbun_pool_health", "1 for the pool's health state (from the pool plugin's checks and server logins), 0 for the others", ["database", "user", "state"], (g, s) => {
    for (const p of s.pools) if (p.health) for (const st of HEALTH_STATES) g.set({ database: p.database, user: p.user, state: st }, p.health.state === st ? 1 : 0);
  });
  gauge("pgbun_pool_health_consecutive_failures", "Health checks or server logins that failed in a row", ["database", "user"], (g, s) => {
    for (const p of s.pools) if (p.health) g.set({ database: p.database, user: p.user }, p.health.consecutiveFailures);
  });
  gauge("pgbun_pool_health_last_check_timestamp_seconds", "When a check or login last reported on the pool (0: never)", ["database", "user"], (g, s) => {
    for (const p of s.pools) if (p.health) g.set({ database: p.database, user: p.user }, p.health.lastCheck / 1000);
  });
  counter("pgbun_server_errors_total", "ErrorResponses servers sent to clients, by database and SQLSTATE class", ["database", "class"], (c, s) => {
    for (const [database, classes] of Object.entries(s.errors)) for (const [cls, n] of Object.entries(classes)) c.inc({ database, class: cls }, n);
  });
  counter("pgbun_plugin_faults_total", "Errors a plugin's taps threw since start, by plugin", ["plugin"], (c, s) => {
    for (const [plugin, n] of Object.entries(s.faults)) c.inc({ plugin }, n);
  });
  gauge("pgbun_workers", "Workers whose figures this scrape holds (answered) and those that did not answer in time (missing)", ["state"], (g, s) => {
    g.set({ state: "answered" }, s.workers.length);
    g.set({ state: "missing" }, s.missing.length);
  });
  return registry;
}
