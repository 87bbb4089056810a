// SHOW CONFIG: every setting with its value in force, its default, and whether a reload can change it.
import type { AdminEnv } from "./env.ts";
import { columns, sortRows, type Cell, type Table } from "./table.ts";

const CONFIG_COLUMNS = columns("key", "value", "default", "changeable");

/** Settings bound at start (sockets, processes, buffers): a reload does not change them. */
const FIXED_AT_START: ReadonlySet<string> = new Set([
  "listen_addr",
  "listen_port",
  "unix_socket_dir",
  "unix_socket_mode",
  "unix_socket_group",
  "listen_backlog",
  "so_reuseport",
  "peer_id",
  "workers",
  "pkt_buf",
  "max_packet_size",
]);

/** A value as PgBouncer prints it: booleans 1/0, lists comma-separated. */
export function formatSetting(v: unknown): string {
  if (typeof v === "boolean") return v ? "1" : "0";
  if (Array.isArray(v)) return v.join(",");
  return v === undefined || v === null ? "" : String(v);
}

export function showConfig(env: AdminEnv): Table {
  const settings = env.api.config.settings as unknown as Record<string, unknown>;
  const defaults = env.api.defaults as unknown as Record<string, unknown>;
  const rows: Cell[][] = Object.keys(defaults).map((name) => [
    name,
    formatSetting(settings[name]),
    formatSetting(defaults[name]),
    FIXED_AT_START.has(name) ? "no" : "yes",
  ]);
  return { columns: CONFIG_COLUMNS, rows: sortRows(rows) };
}
