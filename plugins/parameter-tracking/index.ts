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
 * What a server was last found in step with (nothing to SET or RESET): the client-side lists' identities, the
 * pool's welcome values, the tracked names and the server's change counts. While all are the same, the comparison
 * would find nothing again: the same client back on its server after its transaction, or another client of the
 * same (shared) parameters. Kept on the server (servers are few): nothing per client.
 */
interface InStep {
  params: object | null;
  settings: object | null;
  welcome: ReadonlyMap<string, string>;
  tracked: readonly string[];
  /** server.params.version, -1 once the server was reset (compared again whatever the counts say). */
  reported: number;
  applied: number;
}

const DATA_KEY = "pgbun:parameter-tracking";

/** The server's record, if it is still in step with this client; an identity or version not given (undefined) never is. */
function inStep(client: Client, server: Server, tracked: readonly string[]): boolean {
  const s = server.data[DATA_KEY] as InStep | undefined;
  return (
    s !== undefined &&
    s.reported === server.params.version &&
    s.applied === server.applied.version &&
    s.tracked === tracked &&
    s.welcome === client.welcomeParams &&
    s.params === client.params.identity?.() &&
    s.settings === client.settings.identity?.()
  );
}

/** Records that nothing differed; only where the client's lists and the server's maps say who they are. */
function recordInStep(client: Client, server: Server, tracked: readonly string[]): void {
  const params = client.params.identity?.();
  const settings = client.settings.identity?.();
  const reported = server.params.version;
  const applied = server.applied.version;
  if (params === undefined || settings === undefined || reported === undefined || applied === undefined) return;
  const s = server.data[DATA_KEY] as InStep | undefined;
  if (s === undefined) {
    server.data[DATA_KEY] = { params, settings, welcome: client.welcomeParams, tracked, reported, applied } satisfies InStep;
    return;
  }
  s.params = params;
  s.settings = settings;
  s.welcome = client.welcomeParams;
  s.tracked = tracked;
  s.reported = reported;
  s.applied = applied;
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
      // a reset (server_reset_query) may undo what no count shows: the next link compares again
      api.hooks.serverReset.tap("pgbun:parameter-tracking", (server) => {
        const s = server.data[DATA_KEY] as InStep | undefined;
        if (s !== undefined) s.reported = -1;
      });
      api.hooks.serverLinked.tap("pgbun:parameter-tracking", (client, server) => {
        if (inStep(client, server, trackedNames)) return;
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
        // after a batch, its ParameterStatus replies and the applied settings change the counts: the next link compares again
        else recordInStep(client, server, trackedNames);
      });
    },
  };
}
