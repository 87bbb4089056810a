// Runs one parsed admin command: a SHOW table, a control action, or a wait (PAUSE, WAIT_CLOSE) answered later.
import { commandComplete, Prebuilt, type AdminRequest, type AdminTable, type Client, type PluginApi, type ShutdownMode } from "../../plugin-sdk/index.ts";
import type { AdminCommand, ShowTarget, ShutdownWait } from "./commands.ts";
import type { Control } from "./control.ts";
import { ADMIN_DATABASES, type AdminEnv } from "./env.ts";
import { showClients, showServers } from "./show-connections.ts";
import { showConfig } from "./show-config.ts";
import { showDatabases, showUsers } from "./show-databases.ts";
import {
  showActiveSockets,
  showDnsHosts,
  showDnsZones,
  showFds,
  showMem,
  showPeerPools,
  showPeers,
  showSockets,
  showState,
  showTotals,
} from "./show-internals.ts";
import { showHelp, showLists, showPlugins, showVersion } from "./show-misc.ts";
import { reloadHere, setHere } from "./reload.ts";
import { showPools } from "./show-pools.ts";
import { showStats, showStatsAverages, showStatsTotals } from "./show-stats.ts";
import { encodeTable, tableProblem, type Table } from "./table.ts";

export type Reply =
  /** Bytes to send now (before ReadyForQuery). */
  | { kind: "now"; bytes: Buffer }
  /** An ErrorResponse: 08P01 as PgBouncer's console errors, or the SQLSTATE a plugin's error carried. */
  | { kind: "error"; message: string; code?: string }
  /** Answered with CommandComplete `tag` once `done()` holds. */
  | { kind: "wait"; done: () => boolean; tag: string }
  /** The console's client is closed by the shutdown itself. */
  | { kind: "shutdown"; mode: ShutdownMode }
  /** Answered with `result` once the sibling workers answered (workers > 1); `cancel` when the console client left. */
  | { kind: "later"; result: Promise<Reply>; cancel: () => void };

/** This worker's table for each SHOW (HELP is a notice, not a table). */
export const SHOWS: Record<ShowTarget, (env: AdminEnv) => Table | Buffer> = {
  help: showHelp,
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
  plugins: showPlugins,
  mem: showMem,
  fds: showFds,
  state: showState,
  totals: showTotals,
  peers: showPeers,
  peer_pools: showPeerPools,
  sockets: showSockets,
  active_sockets: showActiveSockets,
  dns_hosts: showDnsHosts,
  dns_zones: showDnsZones,
};

/** Commands that change the pooler's state; with workers > 1 they are applied by every worker. */
export type ControlCommand = Extract<AdminCommand, { kind: "pause" | "resume" | "kill" | "kill_client" | "reconnect" | "disable" | "enable" | "wait_close" }>;
type DbVerb = Exclude<ControlCommand["kind"], "kill_client">;

/** How the errors about a command's database argument name the command. */
const DB_VERBS: Record<DbVerb, string> = {
  pause: "pause",
  resume: "resume",
  kill: "kill",
  reconnect: "reconnect",
  wait_close: "wait for",
  disable: "disable",
  enable: "enable",
};
const CONTROL_KINDS: ReadonlySet<string> = new Set(["kill_client", ...Object.keys(DB_VERBS)]);

export function isControl(cmd: AdminCommand): cmd is ControlCommand {
  return CONTROL_KINDS.has(cmd.kind);
}

export const done = (tag: string): Reply => ({ kind: "now", bytes: commandComplete(tag) });
export const error = (message: string): Reply => ({ kind: "error", message });

/** The CommandComplete tag of a control command: its name, as PgBouncer answers. */
export const controlTag = (cmd: ControlCommand): string => cmd.kind.toUpperCase();

/** SHUTDOWN's modes as pgbun's: plain SHUTDOWN exits at once (SIGQUIT), WAIT_FOR_SERVERS as SIGINT, WAIT_FOR_CLIENTS as SIGTERM. */
export const SHUTDOWN_MODES: Readonly<Record<ShutdownWait, ShutdownMode>> = { now: "now", wait_for_servers: "safe", wait_for_clients: "graceful" };
/** The signal that asks the supervisor (workers > 1) for each mode. */
export const SHUTDOWN_SIGNALS: Readonly<Record<ShutdownMode, NodeJS.Signals>> = { now: "SIGQUIT", safe: "SIGINT", graceful: "SIGTERM" };


/** A SQLSTATE: five digits or upper-case letters. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** A plugin's thrown error as the console's ErrorResponse (its `code` when that is a SQLSTATE). */
function pluginError(err: unknown): Reply {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return { kind: "error", message, code: typeof code === "string" && SQLSTATE.test(code) ? code : undefined };
}

/** Runs a plugin's SHOW or command: its answer now, or later when it returns a promise; what it throws is an error. */
function fromPlugin<R>(run: () => R | Promise<R>, answer: (r: R) => Reply): Reply {
  let out: R | Promise<R>;
  try {
    out = run();
  } catch (err) {
    return pluginError(err);
  }
  if (typeof (out as { then?: unknown } | null)?.then !== "function") return answer(out as R);
  const result = Promise.resolve(out).then(answer, pluginError);
  return { kind: "later", result, cancel: () => undefined };
}

/** A plugin's table, checked and encoded as the built-in ones are (tag `tag`). */
function tableReply(what: string, table: AdminTable, tag: string): Reply {
  const problem = tableProblem(table);
  return problem ? error(`${what}: the plugin's table cannot be sent: ${problem}`) : { kind: "now", bytes: encodeTable(table, tag) };
}

/** SHOW <name> or a command that another plugin added (AdminApi). */
function executeAdded(env: AdminEnv, cmd: Extract<AdminCommand, { kind: "added_show" | "added" }>, client: Client): Reply {
  const req: AdminRequest = { client, args: cmd.args };
  if (cmd.kind === "added_show") {
    const show = env.extensions.shows.get(cmd.name)!;
    const what = `SHOW ${show.name.toUpperCase()}`;
    return fromPlugin(() => show.table(req), (t) => tableReply(what, t, "SHOW"));
  }
  const command = env.extensions.commands.get(cmd.keyword)!;
  const tag = command.keyword.toUpperCase();
  return fromPlugin(
    () => command.run(req),
    (r) => (typeof r === "string" ? (r.includes("\0") ? error(`${tag}: the command tag contains a NUL byte`) : done(r)) : tableReply(tag, r, tag)),
  );
}

/**
 * Checks a control command's database argument: not the console itself, and one pgbun knows (here, or in a
 * sibling worker when `knownElsewhere`: a database served through "*" is known where it has a pool).
 */
export function checkControl(env: AdminEnv, cmd: ControlCommand, knownElsewhere = false): string | null {
  if (cmd.kind === "kill_client" || cmd.db === null) return null;
  if (ADMIN_DATABASES.has(cmd.db)) return `cannot ${DB_VERBS[cmd.kind]} admin database`;
  if (!knownElsewhere && !env.control.knownDatabase(cmd.db)) return `no such database: ${cmd.db}`;
  return null;
}

/** The command's effect on this process; an error message when its state refuses it (already paused, no such client). */
export function applyControl(control: Control, cmd: ControlCommand): string | null {
  switch (cmd.kind) {
    case "pause":
      return control.pause(cmd.db);
    case "resume":
      return control.resume(cmd.db);
    case "kill":
      return control.kill(cmd.db);
    case "kill_client":
      return control.killClient(cmd.id);
    case "reconnect":
      return control.reconnect(cmd.db);
    case "disable":
      control.disable(cmd.db);
      return null;
    case "enable":
      return control.enable(cmd.db);
    case "wait_close":
      return null;
  }
}

/** What a waiting command (PAUSE, WAIT_CLOSE) waits for on this process; null for the others. */
export function waitCondition(control: Control, cmd: ControlCommand): (() => boolean) | null {
  const db = cmd.kind === "kill_client" ? null : cmd.db;
  if (cmd.kind === "pause") return () => control.pauseComplete(db);
  if (cmd.kind === "wait_close") return () => control.waitCloseComplete(db);
  return null;
}

export function execute(env: AdminEnv, cmd: AdminCommand, client: Client): Reply {
  // workers > 1: SHOW totals and control commands span the workers (null: this command stays local)
  if (env.peers) {
    const across = env.peers.execute(cmd);
    if (across) return across;
  }
  if (isControl(cmd)) {
    const err = checkControl(env, cmd) ?? applyControl(env.control, cmd);
    if (err) return error(err);
    const until = waitCondition(env.control, cmd);
    return until ? { kind: "wait", done: until, tag: controlTag(cmd) } : done(controlTag(cmd));
  }
  switch (cmd.kind) {
    case "empty":
      return { kind: "now", bytes: Prebuilt.EmptyQueryResponse };
    case "show": {
      const out = SHOWS[cmd.target](env);
      return { kind: "now", bytes: Buffer.isBuffer(out) ? out : encodeTable(out) };
    }
    case "added_show":
    case "added":
      return executeAdded(env, cmd, client);
    case "reload":
      // as SIGHUP (the CLI's loader; embedded, the config in force is re-applied): answered once applied
      return { kind: "later", result: reloadHere(env.api), cancel: () => undefined };
    case "shutdown":
      return { kind: "shutdown", mode: SHUTDOWN_MODES[cmd.wait] };
    case "suspend":
      return error("SUSPEND is not supported by pgbun (no socket hand-over); use so_reuseport for rolling restarts");
    case "set":
      return setHere(env.api, cmd.key, cmd.value);
  }
}
