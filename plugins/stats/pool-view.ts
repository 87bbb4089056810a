// Pools as the admin console sees them: from pgbun:pool's manager when loaded, else grouped from the connection lists.
import type { ClientConnection } from "../../core/client.ts";
import type { ServerConnection } from "../../core/server.ts";
import type { Pgbun } from "../../core/pgbun.ts";
import type { PoolManager } from "../pool/index.ts";

export interface PoolView {
  database: string;
  user: string;
  mode: string;
  /** Logged-in clients of the pool. */
  clients: ClientConnection[];
  /** Its servers past login (any state but closed). */
  servers: ServerConnection[];
  /** Server logins in progress. */
  connecting: number;
}

/** pgbun:pool's manager, when that plugin is loaded (a replacement pool plugin may not have one). */
export function poolManager(core: Pgbun): PoolManager | undefined {
  const m = (core as unknown as { pools?: unknown }).pools;
  return m && typeof m === "object" && (m as { pools?: unknown }).pools instanceof Map ? (m as PoolManager) : undefined;
}

/** The pgbun database name a server serves: its pool's, else the upstream name. */
export function serverDatabase(s: ServerConnection): string {
  const db = (s.pool as { database?: unknown } | null)?.database;
  return typeof db === "string" ? db : s.target.database;
}

/** The user of a server's pool, else the upstream login user. */
export function serverUser(s: ServerConnection): string {
  const user = (s.pool as { user?: unknown } | null)?.user;
  return typeof user === "string" ? user : s.target.user;
}

const byName = (a: PoolView, b: PoolView) => (a.database < b.database ? -1 : a.database > b.database ? 1 : a.user < b.user ? -1 : a.user > b.user ? 1 : 0);

/** Every pool, sorted by database then user. */
export function poolViews(core: Pgbun): PoolView[] {
  const manager = poolManager(core);
  if (manager) {
    const out = new Map<unknown, PoolView>();
    for (const p of manager.pools.values()) {
      out.set(p, { database: p.database, user: p.user, mode: p.mode, clients: [], servers: [...p.servers], connecting: p.connecting });
    }
    for (const c of core.clients) if (c.pool !== null) out.get(c.pool)?.clients.push(c);
    return [...out.values()].sort(byName);
  }
  const views = new Map<string, PoolView>();
  const viewOf = (database: string, user: string, mode: string) => {
    const key = `${database}\u0000${user}`;
    let v = views.get(key);
    if (!v) views.set(key, (v = { database, user, mode, clients: [], servers: [], connecting: 0 }));
    return v;
  };
  for (const c of core.clients) {
    if (!c.virtual && (c.state === "active" || c.state === "waiting")) viewOf(c.poolDatabase, c.user, c.poolMode).clients.push(c);
  }
  for (const s of core.servers) {
    const v = viewOf(serverDatabase(s), serverUser(s), s.client?.poolMode ?? core.config.settings.pool_mode);
    if (s.state === "login") v.connecting++;
    else if (s.state !== "closed") v.servers.push(s);
  }
  return [...views.values()].sort(byName);
}
