// SHOW CONFIG: every setting with its value in force, its default, and whether a reload or SET can change it.
import { RESTART_SETTINGS, type SettingName } from "../../plugin-sdk/index.ts";
import type { AdminEnv } from "./env.ts";
import { columns, sortRows, type Cell, type Table } from "./table.ts";

const CONFIG_COLUMNS = columns("key", "value", "default", "changeable");

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
    // changeable: by RELOAD or SET; the others are bound at start
    RESTART_SETTINGS.has(name as SettingName) ? "no" : "yes",
  ]);
  return { columns: CONFIG_COLUMNS, rows: sortRows(rows) };
}
