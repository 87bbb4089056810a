// Built-in plugin "pgbun:stats": PgBouncer's counters per pool, the stats_period averages and log_stats (capability "stats").
import type { PgbunPlugin, PluginApi, PoolApi } from "../../plugin-sdk/index.ts";
import { COUNTER_FIELDS, PLUGIN_NAME, type Counters, type StatsApi } from "./api.ts";
import { asCounters, StatsRegistry } from "./counters.ts";
import { histogramsByDatabase, QUERY, XACT } from "./histogram.ts";
import { clockNs, tapCounters, type CounterTaps } from "./tap-counters.ts";

export { COUNTER_FIELDS, type CounterField, type Counters, type StatsApi } from "./api.ts";

/** log_stats: one line per database that had traffic in the period, PgBouncer's wording. */
function logStats(api: PluginApi, stats: StatsRegistry): void {
  const i = (f: (typeof COUNTER_FIELDS)[number]) => COUNTER_FIELDS.indexOf(f);
  for (const [database, a] of stats.averages) {
    if (a.every((v) => v === 0)) continue;
    api.log.info(
      { database },
      `stats: ${a[i("xacts")]} xacts/s, ${a[i("queries")]} queries/s, ${a[i("clientParses")]} client parses/s, ` +
        `${a[i("serverParses")]} server parses/s, ${a[i("binds")]} binds/s, in ${a[i("received")]} B/s, out ${a[i("sent")]} B/s, ` +
        `xact ${a[i("xactTime")]} us, query ${a[i("queryTime")]} us, wait ${a[i("waitTime")]} us`,
    );
  }
}

function statsApi(stats: StatsRegistry, counters: CounterTaps): StatsApi {
  const byDatabase = (m: Map<string, number[]>) => {
    const out = new Map<string, Counters>();
    for (const [db, v] of m) out.set(db, asCounters(v));
    return out;
  };
  return {
    totals() {
      counters.refreshBytes();
      return byDatabase(stats.totalsByDatabase());
    },
    averages: () => byDatabase(stats.averages),
    histograms: () => histogramsByDatabase(stats.pools.values()),
    waitedMs(client) {
      const start = counters.countersOf(client)?.waitStart ?? 0;
      return start > 0 ? (clockNs() - start) / 1e6 : 0;
    },
    markWaiting: (client) => counters.markWaiting(client),
    countServed(database, user) {
      const p = stats.forPool(database, user);
      p.serverless = true;
      p.queries++;
      p.xacts++;
      // untimed: the first bucket, so the histograms' counts stay the counters
      p.buckets[QUERY]!++;
      p.buckets[XACT]!++;
    },
  };
}

/**
 * Counts what PgBouncer's SHOW STATS reports, per (database, user) pool: server assignments, transactions,
 * queries, bytes, their times, parses and binds. The admin console (pgbun:admin) shows them; other plugins
 * read them as capability "stats" (StatsApi).
 */
export default function statsPlugin(): PgbunPlugin {
  return {
    name: PLUGIN_NAME,
    provides: ["stats"],
    apply(api) {
      const stats = new StatsRegistry();
      const counters = tapCounters(api, stats);
      this.api = statsApi(stats, counters);

      api.hooks.tick.tap(PLUGIN_NAME, () => {
        if (stats.periodAge() < api.config.settings.stats_period) return;
        counters.refreshBytes();
        // a pool gone (an auto-database one, dropped unused) takes its counters with it, as in PgBouncer
        const pools = api.capability<PoolApi>("pool");
        if (pools) {
          const live = new Set<string>();
          for (const p of pools.pools()) live.add(`${p.database}\u0000${p.user}`);
          stats.prune((database, user) => live.has(`${database}\u0000${user}`) || Object.hasOwn(api.config.databases, database));
        }
        stats.roll();
        if (api.config.settings.log_stats) logStats(api, stats);
      });
    },
  };
}
