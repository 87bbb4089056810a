// Pools as the admin console sees them: from the pool plugin's capability when offered, else grouped from the connection lists.
import type { Client, DatabaseEntry, PluginApi, PoolApi, PoolHealth, PoolInfo, Server } from "../../plugin-sdk/index.ts";

export interface PoolView {
  database: string;
  user: string;
  mode: string;
  /** Logged-in clients of the pool. */
  clients: Client[];
  /** Its servers past login (any state but closed). */
  servers: Server[];
  /** Server logins in progress. */
  connecting: number;
  /** What the pool's health checks found; unknown without a pool plugin that reports it. */
  health: PoolHealth;
}

/** A pool's health when nothing reports one. */
export const UNKNOWN_HEALTH: PoolHealth = { state: "unknown", lastCheck: 0, lastError: "", consecutiveFailures: 0 };

/**
 * PgBouncer 1.25's load_balance_hosts of a [databases] entry: its own value when the entry has one, else
 * round-robin for a host list (what pgbun does with one) and empty for a single host.
 */
export function loadBalanceHosts(entry: DatabaseEntry | null | undefined): string {
  const own = (entry as { load_balance_hosts?: unknown } | null | undefined)?.load_balance_hosts;
  if (typeof own === "string") return own;
  return entry && entry.host.length > 1 ? "round-robin" : "";
}

/** The pgbun database name a server serves: its pool's, else the upstream name. */
export function serverDatabase(s: Server): string {
  const db = (s.pool as { database?: unknown } | null)?.database;
  return typeof db === "string" ? db : s.target.database;
}

/** The user of a server's pool, else the upstream login user. */
export function serverUser(s: Server): string {
  const user = (s.pool as { user?: unknown } | null)?.user;
  return typeof user === "string" ? user : s.target.user;
}

const byName = (a: PoolView, b: PoolView) => (a.database < b.database ? -1 : a.database > b.database ? 1 : a.user < b.user ? -1 : a.user > b.user ? 1 : 0);

/** Every pool, sorted by database then user. */
export function poolViews(api: PluginApi): PoolView[] {
  const pools = api.capability<PoolApi>("pool");
  if (pools) {
    const out = new Map<PoolInfo, PoolView>();
    for (const p of pools.pools()) {
      const health = (p as { health?: PoolHealth }).health ?? UNKNOWN_HEALTH;
      out.set(p, { database: p.database, user: p.user, mode: p.mode, clients: [], servers: [...p.servers], connecting: p.connecting, health });
    }
    for (const c of api.clients()) {
      const p = c.pool !== null ? pools.poolOf(c) : undefined;
      if (p) out.get(p)?.clients.push(c);
    }
    return [...out.values()].sort(byName);
  }
  const views = new Map<string, PoolView>();
  const viewOf = (database: string, user: string, mode: string) => {
    const key = `${database}\u0000${user}`;
    let v = views.get(key);
    if (!v) views.set(key, (v = { database, user, mode, clients: [], servers: [], connecting: 0, health: UNKNOWN_HEALTH }));
    return v;
  };
  for (const c of api.clients()) {
    if (!c.virtual && (c.state === "active" || c.state === "waiting")) viewOf(c.poolDatabase, c.user, c.poolMode).clients.push(c);
  }
  for (const s of api.servers()) {
    const v = viewOf(serverDatabase(s), serverUser(s), s.client?.poolMode ?? api.config.settings.pool_mode);
    if (s.state === "login") v.connecting++;
    else if (s.state !== "closed") v.servers.push(s);
  }
  return [...views.values()].sort(byName);
}
