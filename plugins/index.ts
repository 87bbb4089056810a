// The composition root: pgbun's built-in plugins by specifier and the default list, given to the core by bin/ and tests.
import type { BuiltinPlugins } from "../core/plugin/loader.ts";

/** Built-in plugins by specifier, loaded lazily. */
const TABLE: Record<string, () => Promise<unknown>> = {
  "pgbun:auth": () => import("./auth/index.ts"),
  "pgbun:pool": () => import("./pool/index.ts"),
  "pgbun:transaction-detection": () => import("./transaction-detection/index.ts"),
  "pgbun:parameter-tracking": () => import("./parameter-tracking/index.ts"),
  "pgbun:prepared-statements": () => import("./prepared-statements/index.ts"),
  "pgbun:pool-statement": () => import("./pool-statement/index.ts"),
  "pgbun:session-state": () => import("./session-state/index.ts"),
  "pgbun:stats": () => import("./stats/index.ts"),
  "pgbun:admin": () => import("./admin/index.ts"),
};

/** Loaded when the config names no plugins, and added for any capability no listed plugin provides. */
const DEFAULTS = [
  "pgbun:auth",
  "pgbun:transaction-detection",
  "pgbun:parameter-tracking",
  "pgbun:prepared-statements",
  "pgbun:session-state",
  "pgbun:pool-statement",
  "pgbun:pool",
  "pgbun:stats",
  "pgbun:admin",
];

export const BUILTIN_PLUGINS: BuiltinPlugins = Object.freeze({ table: Object.freeze(TABLE), defaults: Object.freeze(DEFAULTS) });
