// Built-in plugin "pgbun:stats": PgBouncer's counters and its admin console (virtual database pgbouncer, alias pgbun).
import type { ClientConnection } from "../../core/client.ts";
import type { PgbunPlugin, PluginApi } from "../../plugin-sdk/plugin.ts";
import { VERSION } from "../../core/version.ts";
import { Control } from "./control.ts";
import { COUNTER_FIELDS, StatsRegistry } from "./counters.ts";
import { PLUGIN_NAME, type AdminEnv } from "./env.ts";
import { PeerConsole } from "./peer-console.ts";
import { poolManager } from "./pool-view.ts";
import { tapAdmin } from "./tap-admin.ts";
import { tapCounters } from "./tap-counters.ts";

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

/**
 * Counters per pool for SHOW STATS, and the console: a client whose StartupMessage names the database
 * `pgbouncer` (or `pgbun`) is marked virtual at startup and served here, never by a server. admin_users may
 * run every command, stats_users only SHOW; anyone else is refused at login (28000).
 */
export default function statsPlugin(): PgbunPlugin {
  return {
    name: PLUGIN_NAME,
    provides: ["stats", "admin"],
    apply(api) {
      const stats = new StatsRegistry();
      const control = new Control(api.core);
      const admins = new Set<ClientConnection>();
      const counters = tapCounters(api, stats);
      const env: AdminEnv = {
        core: api.core,
        stats,
        control,
        version: VERSION,
        log: api.log,
        peers: null,
        adminClients: () => [...admins].filter((c) => c.state === "active"),
        countersOf: counters.countersOf,
        markWaiting: counters.markWaiting,
        refreshBytes: counters.refreshBytes,
      };
      tapAdmin(api, env, admins);
      if (api.core.worker.count > 1) {
        const peers = new PeerConsole(env);
        peers.start();
        env.peers = peers;
        api.hooks.shutdown.tapPromise(PLUGIN_NAME, async () => peers.stop());
      }

      api.hooks.tick.tap(PLUGIN_NAME, () => {
        control.poll();
        if (stats.periodAge() >= api.config.settings.stats_period) {
          counters.refreshBytes();
          // a pool gone (an auto-database one, dropped unused) takes its counters with it, as in PgBouncer
          const manager = poolManager(api.core);
          if (manager) stats.prune((database, user) => manager.pools.has(`${database}\u0000${user}`) || Object.hasOwn(api.config.databases, database));
          stats.roll();
          if (api.config.settings.log_stats) logStats(api, stats);
        }
      });
    },
  };
}
