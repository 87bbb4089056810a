// Runs one parsed admin command: a SHOW table, a control action, or a wait (PAUSE, WAIT_CLOSE) answered later.
import type { Pgbun } from "../../core/pgbun.ts";
import { commandComplete, Prebuilt } from "../../core/protocol/writer.ts";
import type { AdminCommand, ShowTarget } from "./commands.ts";
import { ADMIN_DATABASES, type AdminEnv } from "./env.ts";
import { showClients, showServers } from "./show-connections.ts";
import { showConfig } from "./show-config.ts";
import { showDatabases, showUsers } from "./show-databases.ts";
import { showHelp, showLists, showVersion } from "./show-misc.ts";
import { showPools } from "./show-pools.ts";
import { showStats, showStatsAverages, showStatsTotals } from "./show-stats.ts";
import { encodeTable, type Table } from "./table.ts";

export type Reply =
  /** Bytes to send now (before ReadyForQuery). */
  | { kind: "now"; bytes: Buffer }
  | { kind: "error"; message: string }
  /** Answered with CommandComplete `tag` once `done()` holds. */
  | { kind: "wait"; done: () => boolean; tag: string }
  /** The console's client is closed by the shutdown itself. */
  | { kind: "shutdown" };

const SHOWS: Record<ShowTarget, (env: AdminEnv) => Table | Buffer> = {
  help: () => showHelp(),
  pools: showPools,
  stats: showStats,
  stats_totals: showStatsTotals,
  stats_averages: showStatsAverages,
  clients: showClients,
  servers: showServers,
  databases: showDatabases,
  users: showUsers,
  config: showConfig,
  lists: showLists,
  version: showVersion,
};

const done = (tag: string): Reply => ({ kind: "now", bytes: commandComplete(tag) });
const error = (message: string): Reply => ({ kind: "error", message });

/** RELOAD reads the configuration as SIGHUP does (the CLI's loader; embedded, the config in force is re-applied). */
function reload(core: Pgbun): void {
  core.reloadConfig().catch((err: unknown) => core.log.error(`RELOAD failed, keeping the running configuration: ${err instanceof Error ? err.message : String(err)}`));
}

/** Checks a database argument: not the console itself, and one pgbun knows. */
function checkDb(env: AdminEnv, verb: string, db: string | null): string | null {
  if (db === null) return null;
  if (ADMIN_DATABASES.has(db)) return `cannot ${verb} admin database`;
  if (!env.control.knownDatabase(db)) return `no such database: ${db}`;
  return null;
}

export function execute(env: AdminEnv, cmd: AdminCommand): Reply {
  const { control } = env;
  switch (cmd.kind) {
    case "empty":
      return { kind: "now", bytes: Prebuilt.EmptyQueryResponse };
    case "show": {
      const out = SHOWS[cmd.target](env);
      return { kind: "now", bytes: Buffer.isBuffer(out) ? out : encodeTable(out) };
    }
    case "pause": {
      const err = checkDb(env, "pause", cmd.db) ?? control.pause(cmd.db);
      if (err) return error(err);
      const db = cmd.db;
      return { kind: "wait", done: () => control.pauseComplete(db), tag: "PAUSE" };
    }
    case "resume": {
      const err = checkDb(env, "resume", cmd.db) ?? control.resume(cmd.db);
      return err ? error(err) : done("RESUME");
    }
    case "kill": {
      const err = checkDb(env, "kill", cmd.db) ?? control.kill(cmd.db);
      return err ? error(err) : done("KILL");
    }
    case "kill_client": {
      const err = control.killClient(cmd.id);
      return err ? error(err) : done("KILL_CLIENT");
    }
    case "reconnect": {
      const err = checkDb(env, "reconnect", cmd.db) ?? control.reconnect(cmd.db);
      return err ? error(err) : done("RECONNECT");
    }
    case "wait_close": {
      const err = checkDb(env, "wait for", cmd.db);
      if (err) return error(err);
      const db = cmd.db;
      return { kind: "wait", done: () => control.waitCloseComplete(db), tag: "WAIT_CLOSE" };
    }
    case "disable": {
      const err = checkDb(env, "disable", cmd.db);
      if (err) return error(err);
      control.disable(cmd.db);
      return done("DISABLE");
    }
    case "enable": {
      const err = checkDb(env, "enable", cmd.db) ?? control.enable(cmd.db);
      return err ? error(err) : done("ENABLE");
    }
    case "reload":
      reload(env.core);
      return done("RELOAD");
    case "shutdown":
      return { kind: "shutdown" };
    case "suspend":
      return error("SUSPEND is not supported by pgbun (no socket hand-over); use so_reuseport for rolling restarts");
    case "set":
      return error("SET failed: pgbun settings change in the config file, then RELOAD");
  }
}
