// Example plugin: the admin console's SHOW LONG_QUERIES [ms] (clients waiting on a query that long) and LONG_QUERY_MS.
import { definePlugin, SqlState, type AdminApi, type AdminTable, type Client } from "pgbun/plugin-sdk";

export interface AdminLongQueriesOptions {
  /** SHOW LONG_QUERIES without an argument lists queries running longer than this (default 1000 ms). */
  thresholdMs?: number;
}

const NAME = "admin-long-queries";

const COLUMNS = [
  { name: "client", type: "text" },
  { name: "user", type: "text" },
  { name: "database", type: "text" },
  { name: "application_name", type: "text" },
  { name: "state", type: "text" },
  { name: "running_ms", type: "int" },
  { name: "server", type: "text" },
  { name: "remote_pid", type: "int" },
] as const;

/** A console argument that must be a whole number of milliseconds; the console sends a thrown Error's code. */
function parseMs(args: string, what: string): number {
  if (!/^\d{1,9}$/.test(args)) throw Object.assign(new Error(`${what} takes a whole number of milliseconds, not "${args}"`), { code: SqlState.InvalidParameterValue });
  return Number(args);
}

/**
 * A client's `queryStart` is the core's: set when a Query, Sync or FunctionCall goes out with nothing else
 * unanswered, cleared by the ReadyForQuery that ends the last one. So a row is a client waiting on its results
 * (state active, with the server and the backend pid to `pg_cancel_backend`) or for a server (state waiting).
 * The clock is pgbun's cached one (refreshed about 3 times a second): running_ms is that coarse.
 *
 * The table is this worker's: with `workers = N`, each console connection lists the clients of the worker that
 * accepted it (the built-in SHOW tables merge every worker's rows; a plugin's do not).
 */
export default definePlugin((options: AdminLongQueriesOptions) => {
  let thresholdMs = options.thresholdMs ?? 1000;

  return {
    name: NAME,
    // the start-up check: a config that replaced pgbun:admin by nothing fails naming this plugin
    dependencies: ["admin"],
    apply(api) {
      const admin = api.capability<AdminApi>("admin");
      // set by pgbun:admin's own apply: listed after this plugin, it has not run yet
      if (!admin) throw new Error("the admin console (pgbun:admin) must come before this plugin in the plugin list");

      const longQueries = (minMs: number): AdminTable => {
        const now = api.now;
        const rows: AdminTable["rows"] = [];
        const running = (c: Client) => (c.queryStart > 0 && !c.virtual ? now - c.queryStart : -1);
        for (const c of api.clients()) {
          const ms = running(c);
          if (ms < minMs || ms < 0) continue;
          const s = c.server;
          rows.push([c.label, c.user, c.poolDatabase, c.startupParams.get("application_name") ?? "", c.state, ms, s?.label ?? null, s?.backendPid ?? null]);
        }
        rows.sort((a, b) => (b[5] as number) - (a[5] as number));
        return { columns: COLUMNS, rows };
      };

      admin.addShow("long_queries", (req) => longQueries(req.args === "" ? thresholdMs : parseMs(req.args, "SHOW LONG_QUERIES")), {
        doc: `clients waiting on a query longer than [ms] (default ${thresholdMs})`,
      });
      // it changes what SHOW LONG_QUERIES answers: not readOnly, so stats_users may look but not set it
      admin.addCommand(
        "long_query_ms",
        (req) => {
          thresholdMs = parseMs(req.args, "LONG_QUERY_MS");
          api.log.info({ admin: req.client.user, thresholdMs }, "long query threshold set");
          return "SET";
        },
        { doc: "<ms>: the default threshold of SHOW LONG_QUERIES" },
      );
    },
  };
});
