// What the admin console's commands and SHOW tables are given: the plugin API, the control state, the other plugins' capabilities.
import type { Client, CounterField, PluginApi, StatsApi } from "../../plugin-sdk/index.ts";
import type { Control } from "./control.ts";
import type { Extensions } from "./extensions.ts";
import type { PeerConsole } from "./peer-console.ts";

export const PLUGIN_NAME = "pgbun:admin";
/** The virtual database (and user) PgBouncer shows for its console; `pgbun` is accepted as an alias. */
export const ADMIN_DB = "pgbouncer";
export const ADMIN_DATABASES: ReadonlySet<string> = new Set([ADMIN_DB, "pgbun"]);

/** The counters' names, in SHOW STATS order (the SDK's StatsApi). */
export type CounterName = CounterField;

/** What the console reads of capability "stats": the SDK's StatsApi, offered by pgbun:stats or a replacement. */
export type StatsView = StatsApi;

export interface AdminEnv {
  readonly api: PluginApi;
  readonly control: Control;
  /** SHOW tables and commands other plugins added (AdminApi). */
  readonly extensions: Extensions;
  /** The other workers, when workers > 1 (SHOW totals and control commands span them); null in one process. */
  peers: PeerConsole | null;
  /** Clients logged in to the admin console. */
  adminClients(): Client[];
  /** The counters (capability "stats"), when a plugin offers them. */
  stats(): StatsView | undefined;
}

const STATS_METHODS = ["totals", "averages", "waitedMs", "markWaiting", "countServed"] as const;

/** The capability "stats", if it has StatsView's shape (a replacement stats plugin may offer something else). */
export function statsView(api: PluginApi): StatsView | undefined {
  const s = api.capability<Record<string, unknown>>("stats");
  return s && STATS_METHODS.every((m) => typeof s[m] === "function") ? (s as unknown as StatsView) : undefined;
}

/** How long a waiting client has waited, in ms (0 when it is not waiting). */
export function waitedMs(env: AdminEnv, c: Client): number {
  if (c.state !== "waiting") return 0;
  const ms = env.stats()?.waitedMs(c) ?? 0;
  if (ms > 0) return ms;
  return c.waitStart > 0 ? Date.now() - c.waitStart : 0;
}
