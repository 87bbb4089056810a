// Built-in plugin "pgbun:admin": PgBouncer's admin console (virtual database pgbouncer, alias pgbun), its control commands and AdminApi.
import type { Client, PgbunPlugin } from "../../plugin-sdk/index.ts";
import { Control } from "./control.ts";
import { PLUGIN_NAME, statsView, type AdminEnv } from "./env.ts";
import { Extensions } from "./extensions.ts";
import { PeerConsole } from "./peer-console.ts";
import { tapAdmin } from "./tap-admin.ts";

/**
 * A client whose StartupMessage names the database `pgbouncer` (or `pgbun`) is marked virtual at startup and
 * served here, never by a server. admin_users may run every command, stats_users only SHOW; anyone else is
 * refused at login (28000); the role is checked again at every command, against the settings in force (SET and
 * RELOAD change them). SHOW STATS reads capability "stats" (pgbun:stats), SHOW POOLS capability "pool":
 * without them the tables stay empty or are built from the connection lists. Other plugins add SHOW tables and
 * commands through capability "admin" (AdminApi).
 */
export default function adminPlugin(): PgbunPlugin {
  return {
    name: PLUGIN_NAME,
    provides: ["admin"],
    apply(api) {
      const control = new Control(api);
      const extensions = new Extensions();
      const admins = new Set<Client>();
      const env: AdminEnv = {
        api,
        control,
        extensions,
        peers: null,
        adminClients: () => [...admins].filter((c) => c.state === "active"),
        stats: () => statsView(api),
      };
      this.api = extensions.api;
      tapAdmin(api, env, admins);
      if (api.worker.count > 1) {
        const peers = new PeerConsole(env);
        peers.start();
        env.peers = peers;
        api.hooks.shutdown.tapPromise(PLUGIN_NAME, async () => peers.stop());
      }
      api.hooks.tick.tap(PLUGIN_NAME, () => control.poll());
    },
  };
}
