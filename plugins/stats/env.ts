// What the admin console's commands and SHOW tables are given: the core, the counters, the control state.
import type { Logger } from "pino";
import type { ClientConnection } from "../../core/client.ts";
import type { Pgbun } from "../../core/pgbun.ts";
import type { Control } from "./control.ts";
import type { ClientCounters, StatsRegistry } from "./counters.ts";
import type { PeerConsole } from "./peer-console.ts";

export const PLUGIN_NAME = "pgbun:stats";
/** The virtual database (and user) PgBouncer shows for its console; `pgbun` is accepted as an alias. */
export const ADMIN_DB = "pgbouncer";
export const ADMIN_DATABASES: ReadonlySet<string> = new Set([ADMIN_DB, "pgbun"]);

export interface AdminEnv {
  readonly core: Pgbun;
  readonly stats: StatsRegistry;
  readonly control: Control;
  /** pgbun's version, for SHOW VERSION and the console's server_version. */
  readonly version: string;
  /** The plugin's logger (lines carry its name). */
  readonly log: Logger;
  /** The other workers, when workers > 1 (SHOW totals and control commands span them); null in one process. */
  peers: PeerConsole | null;
  /** Clients logged in to the admin console. */
  adminClients(): ClientConnection[];
  /** The stats taps' state of a pooled client, if it has any yet. */
  countersOf(client: ClientConnection): ClientCounters | undefined;
  /** Starts a client's wait clock (a paused client waits too). */
  markWaiting(client: ClientConnection): void;
  /** Adds the bytes of every linked client to the totals so far (bytes are otherwise sampled at release). */
  refreshBytes(): void;
}

/** How long a waiting client has waited, in ms (0 when it is not waiting). */
export function waitedMs(env: AdminEnv, c: ClientConnection): number {
  if (c.state !== "waiting") return 0;
  const start = env.countersOf(c)?.waitStart ?? 0;
  if (start > 0) return performance.now() - start;
  return c.waitStart > 0 ? Date.now() - c.waitStart : 0;
}
