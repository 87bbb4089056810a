// The contract between pgbun and a plugin: what a plugin is, and the one API it is given when applied.
import type { DatabaseEntry, PgbunConfig, Settings } from "./config.ts";
import type { ReloadOutcome } from "./restart-settings.ts";
import type { Client, ClientState, Server, ServerTarget } from "./connections.ts";
import type { MessageContext, MessageResult } from "./context.ts";
import type { PgbunHooks, ReleaseReason } from "./hooks.ts";
import type { BackendName, FrontendName } from "./protocol/codes.ts";

/** A logger (pino's interface, as far as plugins need it): `log.info({ client: c.label }, "message")`. */
export interface PluginLogger {
  trace(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  fatal(obj: unknown, msg?: string): void;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>): PluginLogger;
}

/** The plugin API's version: the loader refuses a plugin built for another major version. */
export const SDK_API_VERSION = "1.0.0";

export interface TapOptions {
  /** Lower stages run first (tapable's `stage`); see `Stage` for the built-ins' places. */
  stage?: number;
  /** Run before the taps of these plugins (tapable's `before`). */
  before?: string | string[];
  /**
   * Server message taps only: the tap matters only for clients that have gone beyond simple Query, i.e. sent an
   * extended-query message (Parse, Bind, Describe, Execute, Close, Sync, Flush) or a FunctionCall. For a link whose
   * client has sent none, a type every tap of which says so passes unseen from its header, as an untapped type
   * does (no call, no copy); a client's first such message turns the type on for it from then on, before any reply
   * to that message arrives. pgbun:prepared-statements marks its response taps so: a simple-Query client's
   * RowDescription and CommandComplete then cost nothing.
   */
  extendedQuery?: boolean;
  /**
   * Client message taps only: the tap matters only for virtual clients, those of pgbun's own databases (the admin
   * console: `client.virtual`). A pooled client's message of the type does not call it, and a type every tap of
   * which says so passes a pooled client's relay unseen from its header, as an untapped type does. pgbun:admin's
   * console marks its taps so: it takes every message of its own clients and nobody else's.
   */
  virtualClients?: boolean;
}

export type ShutdownMode = "now" | "safe" | "graceful";

/** This process among pgbun's workers (`workers = N`): id 0 of count 1 when single-process. */
export interface WorkerInfo {
  readonly id: number;
  readonly count: number;
  /** The private Unix socket path of worker `id` (the core's); a plugin talking to siblings derives its own from it. */
  socketPath(id: number): string;
  /**
   * The process that started the workers (this one's pid when single-process): a signal sent to it reaches every
   * worker, as one sent to pgbun does (SIGHUP reloads, SIGINT shuts down).
   */
  readonly supervisorPid: number;
}

/** Options of PluginApi.route: send the client to a host of your choosing instead of the entry's. */
export interface RouteOptions {
  host?: string;
  port?: number;
}

/** A per-worker share of a pool-wide limit: limit / workers, rounded up (0 stays 0 = unlimited). */
export function perWorker(limit: number, workers: number): number {
  return limit > 0 ? Math.ceil(limit / workers) : 0;
}

export interface PluginApi {
  /** The plugin's own name. */
  readonly name: string;
  /** Options given in the config (`["./plugin.ts", { ... }]`). */
  readonly options: Record<string, unknown>;
  readonly hooks: PgbunHooks;
  /** The configuration in force (a new object after each reload). */
  readonly config: PgbunConfig;
  /** A logger whose lines carry the plugin's name. */
  readonly log: PluginLogger;
  /** The cached clock (ms), refreshed by the janitor's tick and on each accept. */
  readonly now: number;
  readonly worker: WorkerInfo;
  /** The port pgbun listens on (useful when listen_port is 0). */
  readonly port: number;
  /** pgbun's version. */
  readonly version: string;
  /** Every global setting's default, by name (SHOW CONFIG's default column). */
  readonly defaults: Readonly<Settings>;
  /** The shutdown in progress, or null. */
  readonly shuttingDown: ShutdownMode | null;

  /** Taps a client-to-server message type (name from the protocol docs, or the type byte). Synchronous. */
  onClientMessage(type: FrontendName | number, fn: (ctx: MessageContext) => MessageResult, options?: TapOptions): void;
  /** Taps a server-to-client message type of linked servers. Synchronous. */
  onServerMessage(type: BackendName | number, fn: (ctx: MessageContext) => MessageResult, options?: TapOptions): void;

  // ---- connections ----
  /** Every client connection of this worker (logging in, active, waiting). */
  clients(): Iterable<Client>;
  /** Every server connection of this worker past creation, until closed. */
  servers(): Iterable<Server>;
  /** Clients of this worker per state. */
  readonly clientCounts: Readonly<Record<ClientState, number>>;

  // ---- databases and servers ----
  /** A database name's [databases] entry, or the "*" fallback, or null. */
  resolveDatabase(name: string): DatabaseEntry | null;
  /** Where a client of this entry, database and user logs in upstream (host by index, for multi-host entries). */
  targetFor(entry: DatabaseEntry, database: string, user: string, hostIndex?: number): ServerTarget;
  /**
   * Opens a server connection and logs it in; `owner` becomes server.pool. Rejects with an error whose
   * `failure` (see loginFailureOf) carries PostgreSQL's ErrorResponse when it sent one.
   */
  openServer(target: ServerTarget, owner: unknown): Promise<Server>;
  /**
   * Serves this client from another [databases] entry (by name), optionally on another host: call it from the
   * startup or authenticate hook, before the pool attaches the client. False when no such entry exists.
   */
  route(client: Client, database: string, options?: RouteOptions): boolean;
  /** Unlinks a client's server: a clean one goes back through serverReleased, anything else is closed. */
  releaseServer(client: Client, server: Server, reason: ReleaseReason): void;
  /** Runs the needServer path again for a waiting client (after a PAUSE ends, or a failed check). */
  retryAcquire(client: Client): void;
  /** A cancel to this server completed: the pool may hand it out again. */
  cancelFinished(server: Server): void;

  // ---- the process ----
  /**
   * Reads the configuration again and applies it, as SIGHUP does; rejects (keeping the old one) when it is broken,
   * with an Error naming the file, key and reason. Settings that need a restart keep their running values and
   * are listed in the outcome.
   */
  reload(): Promise<ReloadOutcome>;
  /**
   * Changes one global setting at run time (the admin console's SET), applied as a reload is (hooks.reload runs);
   * the next reload reads the file again. Throws an Error whose `code` is a SQLSTATE: 42704 unknown setting,
   * 22023 invalid value, 55P02 a setting that needs a restart.
   */
  setSetting(name: string, value: string): ReloadOutcome;
  shutdown(mode: ShutdownMode): Promise<void>;

  // ---- plugins ----
  /** The `api` object of the plugin that provides this capability (or has this name), or undefined. */
  capability<T = unknown>(name: string): T | undefined;
  /** The loaded plugins in tap order. */
  plugins(): readonly PluginInfo[];
}

/** A loaded plugin as `pgbun plugins` and SHOW PLUGINS list it. */
export interface PluginInfo {
  readonly name: string;
  readonly specifier: string;
  readonly provides: readonly string[];
  readonly options: Readonly<Record<string, unknown>>;
  /** Hooks this plugin tapped, as `startup`, `clientMessage:Query`, … */
  readonly taps: readonly string[];
  /** Errors its taps threw (or rejected with) since start; absent where the host does not count them. */
  readonly faults?: number;
}

export interface PgbunPlugin {
  /** Unique name; also a capability other plugins can depend on. */
  name: string;
  /** Capabilities this plugin provides, e.g. ["pool"]; a plugin providing "pool" replaces pgbun:pool. */
  provides?: string[];
  /** Capabilities that must be provided by some loaded plugin. */
  dependencies?: string[];
  /** Order relative to others, as in Vite: "pre" plugins first, "post" last, the rest in config order. */
  enforce?: "pre" | "post";
  /** What this plugin offers other plugins (found with api.capability(name)); may be set during apply. */
  api?: unknown;
  /** The SDK API version the plugin was written for (set by definePlugin); the loader checks its major. */
  apiVersion?: string;
  apply(api: PluginApi): void | Promise<void>;
}
