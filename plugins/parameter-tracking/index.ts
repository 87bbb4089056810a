// Built-in plugin: re-applies a client's parameters and settings on whichever server it lands on.
import { SqlState, TxStatus, type Client, type PgbunPlugin, type Server } from "../../plugin-sdk/index.ts";

const BASE_TRACKED = ["client_encoding", "DateStyle", "TimeZone", "standard_conforming_strings", "application_name", "IntervalStyle"];

function quoteIdent(name: string): string {
  return name
    .split(".")
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join(".");
}

/** A string literal that means the same whatever standard_conforming_strings is. */
function quoteLiteral(value: string): string {
  const q = `'${value.replace(/'/g, "''")}'`;
  return value.includes("\\") ? `E${q.replace(/\\/g, "\\\\")}` : q;
}

/** set_config parses the value as the configuration file would, so list settings (search_path) keep their form. */
function setConfig(name: string, value: string): string {
  return `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`;
}

/** Runs the SET/RESET batch; a function of its own, so the link tap makes no closure when nothing differs. */
function applyBatch(client: Client, server: Server, sql: string): void {
  server.runInternal(sql, (error) => {
    if (error === null && server.txStatus === TxStatus.Idle) return;
    // the batch ran in one implicit transaction: on error none of it applied
    server.closeNeeded = true;
    if (client.server === server) client.fatal(error?.code ?? SqlState.InternalError, error?.message ?? "could not apply connection parameters");
  });
}

/**
 * On each link, compares the client's tracked parameters (ParameterStatus-reported) and its other settings
 * (startup `options`, custom GUCs) with what the server has, and runs one internal SET/RESET batch for the
 * differences before the client's first message reaches the server.
 */
export default function parameterTracking(): PgbunPlugin {
  return {
    name: "pgbun:parameter-tracking",
    provides: ["parameter-tracking"],
    apply(api) {
      // an array, walked by index: this runs on every link, and must not allocate when nothing differs
      const tracked = () => [...new Set([...BASE_TRACKED, ...api.config.settings.track_extra_parameters])];
      let trackedNames = tracked();
      api.hooks.reload.tap("pgbun:parameter-tracking", () => {
        trackedNames = tracked();
      });
      api.hooks.serverLinked.tap("pgbun:parameter-tracking", (client, server) => {
        let sets = "";
        let resets = "";
        for (let i = 0; i < trackedNames.length; i++) {
          const name = trackedNames[i]!;
          const value = client.param(name);
          if (value === undefined) continue;
          const current = server.params.get(name) ?? server.applied.get(name);
          if (current === value) continue;
          sets += (sets === "" ? "" : ", ") + setConfig(name, value);
          if (!server.params.has(name)) server.applied.set(name, value);
        }
        if (client.settings.size > 0) {
          for (const [name, value] of client.settings) {
            if (server.applied.get(name) === value) continue;
            sets += (sets === "" ? "" : ", ") + setConfig(name, value);
            server.applied.set(name, value);
          }
        }
        if (server.applied.size > 0) {
          for (const name of server.applied.keys()) {
            if (client.settings.has(name) || client.param(name) !== undefined) continue;
            resets += `RESET ${quoteIdent(name)};`;
            server.applied.delete(name); // deleting the current key while iterating a Map is safe
          }
        }
        const sql = (sets !== "" ? `SELECT ${sets};` : "") + resets;
        if (sql !== "") applyBatch(client, server, sql);
      });
    },
  };
}
