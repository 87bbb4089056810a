// The global settings bound at start (sockets, processes, buffers): a reload or SET cannot change them, only a restart.
import type { SettingName } from "./config.ts";

/**
 * Settings pgbun accepts and does not act on (core/config/settings.ts IGNORED_SETTINGS: listen_backlog, peer_id,
 * pkt_buf) are not listed: a reload changing them gets the not-acted-on warning instead.
 * A RELOAD that changes one of these keeps the running value (SHOW CONFIG shows what is in force) and says a
 * restart is needed; the console's SET refuses them (55P02, as PostgreSQL for its postmaster settings).
 */
export const RESTART_SETTINGS: ReadonlySet<SettingName> = new Set<SettingName>([
  "listen_addr",
  "listen_port",
  "unix_socket_dir",
  "unix_socket_mode",
  "unix_socket_group",
  "so_reuseport",
  "workers",
  "max_packet_size",
  // the log's destination and format are chosen once, at start (core/logger.ts); log_level changes at once
  "log_format",
]);

/** A setting (or the plugin list) a reload found changed but left at its running value until a restart. */
export interface RestartNeeded {
  /** The setting's name, or `plugins`. */
  readonly name: string;
  /** The value in force, and the one the configuration asks for, as SHOW CONFIG prints them. */
  readonly running: string;
  readonly requested: string;
}

/** What a reload or SET did beyond applying the configuration. */
export interface ReloadOutcome {
  readonly restartNeeded: readonly RestartNeeded[];
  /** Why each setting the reload changed is accepted and not acted on (PgBouncer's settings pgbun ignores). */
  readonly notActedOn?: readonly string[];
}
