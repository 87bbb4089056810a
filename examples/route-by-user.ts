// Example plugin: serves chosen users, or clients naming a chosen application_name, from another [databases] entry.
import { SqlState, definePlugin, type Client, type PluginApi, type Refusal } from "pgbun/plugin-sdk";

export interface RouteByUserOptions {
  /** User name → the [databases] entry its clients are served from, whatever database they asked for. */
  users?: Record<string, string>;
  /**
   * application_name (startup parameter) → [databases] entry. The client chooses its application_name: route
   * by it only to entries every user may reach (an entry with its own `user=` logs in upstream as that user).
   */
  applicationName?: Record<string, string>;
}

const NAME = "route-by-user";

/** Own keys only: a user called "constructor" must not find Object.prototype's. */
const lookup = (table: Record<string, string>, key: string | undefined): string | undefined =>
  key !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;

/**
 * The route is chosen in the startup hook, when user, database and startup parameters are known and before the
 * pool attaches the client: the client then lives in the target entry's pool (SHOW POOLS lists it under that
 * name), with that entry's host, dbname, pool size and pool mode. A user's route wins over its application_name's.
 *
 * A target with no entry refuses the login (3D000, as a database pgbun does not know) instead of serving the
 * database the client asked for: a client routed elsewhere for isolation must not land where it was kept away
 * from. With a `*` entry, every name resolves: the fallback serves it as PostgreSQL's database of that name.
 */
export default definePlugin((options: RouteByUserOptions) => {
  const users = options.users ?? {};
  const applicationName = options.applicationName ?? {};

  /** The entry to serve this client from, and why (for the log), or null to leave it where it asked. */
  const targetOf = (client: Client): { database: string; by: string } | null => {
    const byUser = lookup(users, client.user);
    if (byUser !== undefined) return { database: byUser, by: `user ${client.user}` };
    const app = client.startupParams.get("application_name");
    const byApp = lookup(applicationName, app);
    if (byApp !== undefined) return { database: byApp, by: `application_name ${app}` };
    return null;
  };

  /** Targets that name no entry now: said at start and after each reload, rather than only at a refused login. */
  const warnMissing = (api: PluginApi) => {
    const targets = new Set([...Object.values(users), ...Object.values(applicationName)]);
    for (const database of targets) if (api.resolveDatabase(database) === null) api.log.warn({ database }, "route target has no [databases] entry: its clients are refused");
  };

  return {
    name: NAME,
    apply(api) {
      warnMissing(api);
      api.hooks.reload.tap(NAME, () => warnMissing(api));
      api.hooks.startup.tap(NAME, (client): Refusal | undefined => {
        // the admin console's clients (virtual, set at an earlier stage) have no pool to route
        if (client.virtual) return undefined;
        const target = targetOf(client);
        if (target === null || api.route(client, target.database)) return undefined;
        api.log.warn({ client: client.label, user: client.user, database: target.database, by: target.by }, "route target has no [databases] entry: login refused");
        return {
          code: SqlState.InvalidCatalogName,
          message: `no such database: ${target.database}`,
          detail: `pgbun routes the ${target.by} to database "${target.database}", which has no [databases] entry.`,
        };
      });
    },
  };
});
