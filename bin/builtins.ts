// The composition root: pgbun's built-in plugins by specifier and the default list, given to the core by the CLI and tests.
import type { BuiltinPlugins } from "../core/plugin/loader.ts";

/** Built-in plugins by specifier, loaded lazily. */
const TABLE: Record<string, () => Promise<unknown>> = {
  "pgbun:auth": () => import("../plugins/auth/index.ts"),
  "pgbun:pool": () => import("../plugins/pool/index.ts"),
  "pgbun:transaction-timeout": () => import("../plugins/transaction-timeout/index.ts"),
  "pgbun:routing": () => import("../plugins/routing/index.ts"),
  "pgbun:health-check": () => import("../plugins/health-check/index.ts"),
  "pgbun:backoff": () => import("../plugins/backoff/index.ts"),
  "pgbun:transaction-detection": () => import("../plugins/transaction-detection/index.ts"),
  "pgbun:parameter-tracking": () => import("../plugins/parameter-tracking/index.ts"),
  "pgbun:prepared-statements": () => import("../plugins/prepared-statements/index.ts"),
  "pgbun:pool-statement": () => import("../plugins/pool-statement/index.ts"),
  "pgbun:session-state": () => import("../plugins/session-state/index.ts"),
  "pgbun:stats": () => import("../plugins/stats/index.ts"),
  "pgbun:admin": () => import("../plugins/admin/index.ts"),
  "pgbun:metrics": () => import("../plugins/metrics/index.ts"),
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
  "pgbun:routing",
  "pgbun:backoff",
  "pgbun:health-check",
  "pgbun:transaction-timeout",
  "pgbun:stats",
  "pgbun:admin",
  "pgbun:metrics",
];

export const BUILTIN_PLUGINS: BuiltinPlugins = Object.freeze({ table: Object.freeze(TABLE), defaults: Object.freeze(DEFAULTS) });
