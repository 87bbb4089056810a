// SHOW DATABASES and SHOW USERS: configured entries (and ones created through "*") with their limits and usage.
import { perWorker, type DatabaseEntry, type Server } from "../../plugin-sdk/index.ts";
import { ADMIN_DB, type AdminEnv } from "./env.ts";
import { loadBalanceHosts, poolViews, serverDatabase, serverUser } from "./pool-view.ts";
import { columns, sortRows, type Cell, type Table } from "./table.ts";

const DATABASE_COLUMNS = columns(
  "name",
  "host",
  "#port",
  "database",
  "force_user",
  "#pool_size",
  "#min_pool_size",
  "#reserve_pool_size",
  "#server_lifetime",
  "pool_mode",
  "load_balance_hosts",
  "#max_connections",
  "#current_connections",
  "#max_client_connections",
  "#current_client_connections",
  "#paused",
  "#disabled",
);

const USER_COLUMNS = columns(
  "name",
  "#pool_size",
  "#reserve_pool_size",
  "pool_mode",
  "#max_user_connections",
  "#current_connections",
  "#max_user_client_connections",
  "#current_client_connections",
);

/** Open (not closed) server and logged-in client counts, by a key of each connection. */
function counts(env: AdminEnv, serverKey: (s: Server) => string, clientKey: "database" | "user") {
  const servers = new Map<string, number>();
  const clients = new Map<string, number>();
  for (const s of env.api.servers()) if (s.state !== "closed") servers.set(serverKey(s), (servers.get(serverKey(s)) ?? 0) + 1);
  for (const c of env.api.clients()) {
    if (!c.virtual && (c.state === "active" || c.state === "waiting")) clients.set(c[clientKey], (clients.get(c[clientKey]) ?? 0) + 1);
  }
  return { servers, clients };
}

/**
 * This process's own limits: with workers > 1 each worker opens its share of pool-wide limits (as pgbun:pool
 * does), so the console's sum over the workers is what they open together. One process: the configured values.
 */
function shareOf(env: AdminEnv): (n: number) => number {
  const workers = env.api.worker.count;
  return (n) => perWorker(n, workers);
}

export function showDatabases(env: AdminEnv): Table {
  const { config } = env.api;
  const s = config.settings;
  const share = shareOf(env);
  const { servers, clients } = counts(env, serverDatabase, "database");
  const entries = new Map<string, DatabaseEntry>();
  for (const [name, e] of Object.entries(config.databases)) if (name !== "*") entries.set(name, e);
  // databases served through the "*" entry appear once they have a pool, as PgBouncer's auto-databases do
  const fallback = config.databases["*"];
  if (fallback) for (const v of poolViews(env.api)) if (!entries.has(v.database)) entries.set(v.database, fallback);
  const rows: Cell[][] = [];
  for (const [name, e] of entries) {
    rows.push([
      name,
      e.host.join(","),
      e.port,
      e.dbname ?? name,
      e.user ?? "",
      share(e.pool_size ?? s.default_pool_size),
      share(e.min_pool_size ?? s.min_pool_size),
      share(e.reserve_pool_size ?? s.reserve_pool_size),
      s.server_lifetime,
      e.pool_mode ?? null,
      loadBalanceHosts(e) || null,
      share(e.max_db_connections ?? s.max_db_connections),
      servers.get(name) ?? 0,
      s.max_db_client_connections,
      clients.get(name) ?? 0,
      env.control.isPaused(name) ? 1 : 0,
      env.control.isDisabled(name) ? 1 : 0,
    ]);
  }
  const admins = env.adminClients().length;
  rows.push([ADMIN_DB, null, env.api.port, ADMIN_DB, ADMIN_DB, share(2), 0, 0, 0, "statement", null, 0, 0, 0, admins, 0, 0]);
  return { columns: DATABASE_COLUMNS, rows: sortRows(rows) };
}

export function showUsers(env: AdminEnv): Table {
  const { config } = env.api;
  const s = config.settings;
  const share = shareOf(env);
  const shareOrNull = (n: number | undefined) => (n === undefined ? null : share(n));
  const { servers, clients } = counts(env, serverUser, "user");
  const names = new Set<string>(Object.keys(config.users));
  for (const c of env.api.clients()) if (!c.virtual && c.user) names.add(c.user);
  for (const v of poolViews(env.api)) names.add(v.user);
  const rows: Cell[][] = [...names].map((name) => {
    const u = config.users[name];
    return [
      name,
      shareOrNull(u?.pool_size),
      shareOrNull(u?.reserve_pool_size),
      u?.pool_mode ?? null,
      share(u?.max_user_connections ?? s.max_user_connections),
      servers.get(name) ?? 0,
      s.max_user_client_connections,
      clients.get(name) ?? 0,
    ];
  });
  return { columns: USER_COLUMNS, rows: sortRows(rows) };
}
