// The pooler engine: listener, connection registry, hook tables, server hand-over and release, janitor, reload, shutdown.
import { join } from "node:path";
import type { Socket, SocketHandler, TCPSocketListener, UnixSocketListener } from "bun";
import { rmSync } from "node:fs";
import { workerIdentity, workerSocketPath, type WorkerIdentity } from "./workers.ts";
import { listenUnix, unixSocketPath } from "./net/unix-listener.ts";
import { ClientConnection, type ClientState } from "./client.ts";
import { startupData } from "./client-startup.ts";
import { ServerConnection, type ServerState, type ServerTarget } from "./server.ts";
import { entryStartupParams } from "./server-login.ts";
import { ClientList } from "./client-list.ts";
import { CancelRegistry } from "./cancel.ts";
import { createHooks, isVirtualClientsTap, type MessageHook, type PgbunHooks, type ReleaseReason } from "../plugin-sdk/hooks.ts";
import type { Client, Server } from "../plugin-sdk/connections.ts";
import { Backend, Frontend } from "../plugin-sdk/protocol/codes.ts";
import { Frame, frameFlags, type FrameFlags } from "./protocol/framer.ts";
import { SqlState } from "../plugin-sdk/protocol/errors.ts";
import { applyPlugins, attributeTaps, loadPlugins, NO_BUILTINS, type BuiltinPlugins, type LoadedPlugin } from "./plugin/loader.ts";
import { makePluginApi, type CoreFields } from "./plugin/api.ts";
import { PluginFault } from "./plugin/fault.ts";
import type { PluginApi } from "../plugin-sdk/plugin.ts";
import { changedIgnored, keepRestartSettings, withSetting, type PgbunConfig } from "./config/load.ts";
import { listenAddrs } from "./config/settings.ts";
import type { ReloadOutcome } from "../plugin-sdk/restart-settings.ts";
import type { DatabaseEntry } from "./config/databases.ts";
import type { Logger } from "./logger.ts";
import { Janitor } from "./janitor.ts";
import { pluginDataFactory, type PluginData } from "./plugin/data-record.ts";
import { callerOf, dispatcherOf, type Caller, type Dispatch } from "./plugin/dispatch.ts";
import { loadClientTls, loadServerTls, type ClientTlsConfig, type ServerTlsConfig } from "./net/tls-options.ts";
import { tlsClientHandlers } from "./net/tls-client.ts";
import { connectServerTls, SERVER_SOCKET } from "./net/tls-server.ts";

/** Client-to-server types the core always needs whole (the rest are counted from headers only). */
const CORE_CLIENT_WHOLE = [Frontend.Terminate, Frontend.CopyDone, Frontend.CopyFail];
/** Server-to-client types the core always needs whole. */
const CORE_SERVER_WHOLE = [
  Backend.ReadyForQuery,
  Backend.CopyInResponse,
  Backend.CopyOutResponse,
  Backend.CopyBothResponse,
  Backend.ParameterStatus,
  Backend.ErrorResponse,
];
const ALL_TYPES = Array.from({ length: 256 }, (_, i) => i);

import type { ShutdownMode } from "../plugin-sdk/plugin.ts";

export type { ShutdownMode };

export class Pgbun {
  readonly hooks: PgbunHooks = createHooks();
  readonly cancel = new CancelRegistry(this);
  readonly clients = new ClientList();
  readonly servers = new Set<ServerConnection>();
  /** Count of clients per state, for SHOW-style reporting and limits. */
  readonly clientCounts: Record<ClientState, number> = { login: 0, active: 0, waiting: 0, closed: 0 };
  plugins: LoadedPlugin[] = [];
  /** A connection's plugin-state record (Client.data, Server.data): one property per loaded plugin, set at load. */
  newPluginData: () => PluginData = () => ({});
  /** Hooks each plugin tapped (`startup`, `clientMessage:Query`), for `pgbun plugins` and SHOW PLUGINS. */
  readonly tapsOf = new Map<string, Set<string>>();
  /** Faults of each plugin's taps since start, by plugin name (api.plugins(), metrics). */
  readonly faults = new Map<string, number>();
  /** Counts a fault of a plugin's tap (told by the tap wrappers and the generated callers alike). */
  readonly countFault = (plugin: string): void => void this.faults.set(plugin, (this.faults.get(plugin) ?? 0) + 1);
  /**
   * Per-type message hooks (undefined where no plugin tapped), compiled once plugins are applied. clientHooks are a
   * pooled client's (undefined where only `virtualClients` taps are), virtualClientHooks a virtual client's.
   */
  clientHooks: (MessageHook | undefined)[] = new Array(256).fill(undefined);
  virtualClientHooks: (MessageHook | undefined)[] = new Array(256).fill(undefined);
  serverHooks: (MessageHook | undefined)[] = new Array(256).fill(undefined);
  /** Calls the taps of a tapped message type (plugin/dispatch.ts); built with the tables. */
  clientDispatch: Dispatch = dispatcherOf([]);
  virtualClientDispatch: Dispatch = dispatcherOf([]);
  serverDispatch: Dispatch = dispatcherOf([]);
  /** needServer, serverLinked and serverReleased as the core calls them per transaction (plugin/dispatch.ts callerOf). */
  callNeedServer: Caller = (a) => this.hooks.needServer.call(a as Client);
  callServerLinked: Caller = (a, b) => this.hooks.serverLinked.call(a as Client, b as Server);
  callServerReleased: Caller = (a, b, c) => this.hooks.serverReleased.call(a as Server, b as Client | null, c as ReleaseReason);
  clientFlags: FrameFlags = frameFlags();
  serverFlags: FrameFlags = frameFlags();
  /** serverFlags for a link whose client has sent only simple Queries: types tapped only `extendedQuery` pass. */
  serverFlagsSimple: FrameFlags = frameFlags();
  /** Lower-case names of track_extra_parameters, with their spelling. */
  trackedExtra = new Map<string, string>();
  /** Cached clock (ms), refreshed by the janitor and on accept. */
  now = Date.now();
  /** Every plugin's api, whose now and config the core keeps current (setNow, reload). */
  private readonly apis: CoreFields[] = [];
  /** One TCP listener per listen_addr address (none when it is empty: the Unix socket alone). */
  private readonly listeners: TCPSocketListener<any>[] = [];
  private workerListener: UnixSocketListener<any> | null = null;
  /** The client Unix socket (unix_socket_dir), or null when disabled or not this worker's. */
  private unixListener: UnixSocketListener<any> | null = null;
  /** This process's place among the workers (0 of 1 when single-process). */
  readonly worker: WorkerIdentity = workerIdentity();
  shuttingDown: ShutdownMode | null = null;
  /** TLS towards clients (null: client_tls_sslmode disable) and servers, loaded at start and at each reload. */
  clientTls: ClientTlsConfig | null = null;
  serverTls: ServerTlsConfig;
  /** The handler set of client sockets upgraded to TLS (see net/tls-client.ts). */
  tlsClientHandlers: SocketHandler<ClientConnection | undefined> | null = null;
  /** Ids of clients and servers: worker w of n hands out w+1, w+1+n, w+1+2n… so ids never collide across workers. */
  private idSeq = this.worker.id + 1 - this.worker.count;
  private readonly idStep = this.worker.count;
  private currentPlugin: string | null = null;
  private janitor: Janitor | null = null;
  private exitResolve: (() => void) | null = null;
  readonly exited: Promise<void>;

  constructor(
    public config: PgbunConfig,
    readonly log: Logger,
    /** The built-in plugin table and default list, from the composition root (bin/builtins.ts). */
    readonly builtins: BuiltinPlugins = NO_BUILTINS,
  ) {
    this.exited = new Promise((r) => (this.exitResolve = r));
    this.setTrackedExtra();
    this.serverTls = loadServerTls(config.settings, config.dir);
    attributeTaps(this.hooks, () => this.currentPlugin, (plugin, hook) => {
      let set = this.tapsOf.get(plugin);
      if (!set) this.tapsOf.set(plugin, (set = new Set()));
      set.add(hook);
    }, (fault, hook) => this.log.error({ plugin: fault.plugin, hook, err: fault.logged }, `plugin ${fault.plugin} failed in ${hook} (the other plugins' taps still ran)`),
    this.countFault);
  }

  nextId(): number {
    return (this.idSeq += this.idStep);
  }

  private setTrackedExtra(): void {
    this.trackedExtra = new Map(this.config.settings.track_extra_parameters.map((n) => [n.toLowerCase(), n]));
  }

  // ---- plugins ----

  makeApi(l: LoadedPlugin): PluginApi {
    const api = makePluginApi(this, l);
    this.apis.push(api);
    return api;
  }

  /** The clock the janitor's tick and each accept refresh, in every plugin's api too (see CoreFields). */
  /** log_level from a reload or SET: the core's log and each plugin's (pino children keep the level they were made with). */
  private setLogLevel(level: string): void {
    this.log.level = level;
    for (const api of this.apis) api.log.level = level;
  }

  setNow(now: number): number {
    this.now = now;
    for (const api of this.apis) api.now = now;
    return now;
  }

  /** The `api` of the plugin providing a capability (or named so), looked up when asked: it may be set in apply. */
  capability(name: string): unknown {
    for (const l of this.plugins) if (l.plugin.name === name || l.plugin.provides?.includes(name)) return l.plugin.api;
    return undefined;
  }

  /** Serves a client from another [databases] entry, optionally on another host (PluginApi.route). */
  route(client: ClientConnection, database: string, host?: string, port?: number): boolean {
    const entry = this.resolveDatabase(database);
    if (entry === null || client.virtual || client.state !== "login") return false;
    if (host === undefined && port === undefined) {
      client.route(database, entry, "");
      return true;
    }
    const routed = { ...entry, host: host !== undefined ? [host] : entry.host, port: port ?? entry.port };
    client.route(database, routed, `${routed.host.join(",")}:${routed.port}`);
    return true;
  }

  async loadPlugins(): Promise<void> {
    this.plugins = await loadPlugins(this.config.plugins, this.config.dir, this.builtins);
    this.newPluginData = pluginDataFactory(this.plugins.map((l) => l.plugin.name));
    await applyPlugins(this.plugins, (l) => this.makeApi(l), (n) => (this.currentPlugin = n));
    this.compileHooks();
  }

  /** Builds the per-type tables: the relay calls a hook only for types some plugin tapped. */
  compileHooks(): void {
    const clientWhole: number[] = [...CORE_CLIENT_WHOLE];
    const serverWhole: number[] = [...CORE_SERVER_WHOLE];
    const forPooled = (tap: unknown) => !isVirtualClientsTap(tap);
    for (const t of ALL_TYPES) {
      const ch = this.hooks.clientMessage.get(t);
      this.virtualClientHooks[t] = ch && ch.taps.length > 0 ? ch : undefined;
      // a type only virtual clients' taps want is no pooled client's business: not dispatched, not made whole
      this.clientHooks[t] = ch && ch.taps.some(forPooled) ? ch : undefined;
      if (this.clientHooks[t]) clientWhole.push(t);
      const sh = this.hooks.serverMessage.get(t);
      this.serverHooks[t] = sh && sh.taps.length > 0 ? sh : undefined;
      if (this.serverHooks[t]) serverWhole.push(t);
    }
    this.clientDispatch = dispatcherOf(this.clientHooks, this.countFault, forPooled);
    this.virtualClientDispatch = dispatcherOf(this.virtualClientHooks, this.countFault);
    this.serverDispatch = dispatcherOf(this.serverHooks, this.countFault);
    this.compileCallers();
    // every client type is Notify so the core can count Sync/Query and see unsynced extended-protocol messages
    this.clientFlags = frameFlags(clientWhole, ALL_TYPES);
    this.serverFlags = frameFlags(serverWhole);
    for (const t of ALL_TYPES) if (this.serverFlags[t] !== Frame.Whole) this.serverFlags[t] = Frame.Pass;
    this.serverFlagsSimple = this.serverFlags.slice();
    for (const t of ALL_TYPES) {
      const taps = this.serverHooks[t]?.taps as Array<{ extendedQuery?: boolean }> | undefined;
      if (taps !== undefined && !(CORE_SERVER_WHOLE as readonly number[]).includes(t) && taps.every((tap) => tap.extendedQuery === true)) this.serverFlagsSimple[t] = Frame.Pass;
    }
  }

  /** Builds the per-transaction connection hooks' callers again (at start, at each reload, after a late tap). */
  private compileCallers(): void {
    let queued = false;
    const stale = () => {
      if (queued) return;
      queued = true;
      queueMicrotask(() => this.compileCallers());
    };
    const h = this.hooks as unknown as Record<string, { taps: unknown[]; interceptors: unknown[]; call: Caller }>;
    this.callNeedServer = callerOf(h.needServer!, true, stale, this.countFault);
    this.callServerLinked = callerOf(h.serverLinked!, false, stale, this.countFault);
    this.callServerReleased = callerOf(h.serverReleased!, true, stale, this.countFault);
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    await this.loadPlugins();
    const s = this.config.settings;
    this.clientTls = loadClientTls(s, this.config.dir);
    const core = this;
    const handlers: SocketHandler<ClientConnection | undefined> = {
        open(socket) {
          core.accept(socket);
        },
        data(socket, chunk) {
          const c = socket.data;
          if (!c) return;
          if (c.state === "login") startupData(c, chunk);
          // Bun hands each data event a buffer of its own, sized to the read (tests/unit/bun-reads.test.ts)
          else c.onData(chunk, true);
        },
        drain(socket) {
          socket.data?.out.drain();
        },
        close(socket) {
          socket.data?.close("client disconnected");
        },
        error(socket, err) {
          core.log.debug({ client: socket.data?.label, err }, "client socket error");
          socket.data?.close("client socket error");
        },
    };
    this.tlsClientHandlers = tlsClientHandlers(handlers);
    const w = this.worker;
    // listen_port 0 (tests) names the socket after the port the kernel picks, so the TCP listeners come first; the
    // first one picks it, the others listen on the same
    let port = s.listen_port;
    try {
      for (const hostname of listenAddrs(s.listen_addr)) {
        const l = Bun.listen<ClientConnection | undefined>({
          hostname,
          port,
          // reusePort is honoured by Bun.listen though its types only list it for connect
          ...({ reusePort: s.so_reuseport || w.count > 1 } as {}),
          socket: handlers,
        });
        this.listeners.push(l);
        port = l.port;
      }
    } catch (err) {
      this.stopListeners(true);
      throw err;
    }
    // one file cannot be shared by the workers as a port is: worker 0 alone serves it (a restarted 0 takes it back)
    const unixPath = s.unix_socket_dir !== "" && w.id === 0 ? unixSocketPath(s.unix_socket_dir, port) : null;
    if (unixPath !== null) {
      const unixHandlers: SocketHandler<ClientConnection | undefined> = { ...handlers, open: (socket) => core.accept(socket, true) };
      try {
        this.unixListener = await listenUnix(unixPath, unixHandlers, { mode: s.unix_socket_mode, group: s.unix_socket_group });
      } catch (err) {
        this.stopListeners(true);
        throw new Error(`cannot listen on the Unix socket: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (w.count > 1) {
      // siblings forward CancelRequests for keys this worker issued to this private socket
      const path = workerSocketPath(w.supervisorPid, w.id);
      rmSync(path, { force: true });
      this.workerListener = Bun.listen<ClientConnection | undefined>({ unix: path, socket: handlers });
    }
    this.janitor = new Janitor(this);
    this.janitor.start();
    this.log.info({ addr: s.listen_addr, port, unix: unixPath ?? undefined, pool_mode: s.pool_mode, plugins: this.plugins.map((p) => p.plugin.name) }, "pgbun listening");
  }

  /** The port clients connect to: the TCP listeners' (the first picks it when listen_port is 0), else listen_port. */
  get port(): number {
    return this.listeners[0]?.port ?? this.config.settings.listen_port;
  }

  /** Stops the TCP listeners (`closeActive`: their accepted connections too). */
  private stopListeners(closeActive: boolean): void {
    for (const l of this.listeners) l.stop(closeActive);
    this.listeners.length = 0;
  }

  private accept(socket: Socket<ClientConnection | undefined>, unix = false): void {
    this.setNow(Date.now());
    const client = new ClientConnection(this, socket);
    if (unix) client.viaUnixSocket = true;
    // as PgBouncer: the OS's keepalive timer on every TCP client socket (its idle time, interval and count apply)
    else if (this.config.settings.tcp_keepalive) socket.setKeepAlive(true);
    socket.data = client;
    this.clients.add(client);
    this.clientCounts.login++;
    if (this.shuttingDown) return client.fatal(SqlState.CannotConnectNow, "pgbun is shutting down");
    const max = this.config.settings.max_client_conn;
    if (max > 0 && this.clients.size > max) return client.fatal(SqlState.TooManyConnections, "no more connections allowed (max_client_conn)");
    let refusal;
    try {
      refusal = this.hooks.clientAccepted.call(client);
    } catch (err) {
      this.log.error({ err }, "clientAccepted hook failed");
      return client.fatal(SqlState.InternalError, "plugin failed while accepting the connection");
    }
    if (refusal) client.fatal(refusal.code, refusal.message, refusal.detail);
  }

  clientStateChanged(client: ClientConnection, prev: ClientState, next: ClientState): void {
    countClientState(this.clientCounts, prev, -1);
    countClientState(this.clientCounts, next, 1);
    if (next === "closed") {
      this.cancel.forget(client);
      this.clients.delete(client);
      if (this.config.settings.log_disconnections && prev !== "login" && this.log.isLevelEnabled("info")) {
        this.log.info({ client: client.label, user: client.user, database: client.database }, "closed");
      }
      this.maybeFinishShutdown();
    }
  }

  serverStateChanged(server: ServerConnection, _prev: ServerState, next: ServerState): void {
    if (next === "login") this.servers.add(server);
    if (next === "closed") {
      this.servers.delete(server);
      this.maybeFinishShutdown();
    }
  }

  // ---- servers ----

  /** Resolves a client's database name to its [databases] entry, or the "*" fallback. */
  resolveDatabase(name: string): DatabaseEntry | null {
    return this.config.databases[name] ?? this.config.databases["*"] ?? null;
  }

  /** Where a client of this database and user logs in upstream. */
  targetFor(entry: DatabaseEntry, database: string, user: string, hostIndex = 0): ServerTarget {
    const login = entry.user ?? user;
    return {
      host: entry.host[hostIndex % entry.host.length] ?? "127.0.0.1",
      // a routed copy of the entry has one host: its port is entry.port, not the list's
      port: entry.ports?.length === entry.host.length ? entry.ports[hostIndex % entry.host.length]! : entry.port,
      entry,
      database: entry.dbname ?? database,
      user: login,
      // as PgBouncer: the entry's password, else (at login) the user's own through the serverCredentials hook
      password: entry.password,
      startupParams: entryStartupParams(entry),
      connectQuery: entry.connect_query,
    };
  }

  /** Opens a new server connection (the pool decides when); resolves once logged in. */
  async openServer(target: ServerTarget, pool: unknown): Promise<ServerConnection> {
    const server = new ServerConnection(this, target);
    server.pool = pool;
    this.servers.add(server);
    await server.connect();
    try {
      await this.hooks.serverConnected.promise(server);
    } catch (err) {
      // a server whose connect-time work failed is in no known state: it serves nobody
      const fault = PluginFault.from(err);
      server.close(`serverConnected failed: ${fault.message}`);
      // as a login failure: XX000 naming the plugin, which the pool's waiters get (a plugin fault is no outage)
      throw Object.assign(fault, { failure: { message: fault.message, code: SqlState.InternalError } });
    }
    if (this.config.settings.log_connections) this.log.debug({ server: server.label, host: target.host, port: target.port, database: target.database }, "server login");
    return server;
  }

  /**
   * Opens the connection for a server (its login continues in onOpen): TCP, where server_tls_sslmode other than
   * disable asks for TLS first (net/tls-server.ts), or the Unix socket of a host that is a directory.
   */
  connectSocket(server: ServerConnection, host: string, port: number): Promise<unknown> {
    // a directory is PostgreSQL's Unix socket in it, as in libpq and PgBouncer; TLS is never used there (libpq's rule)
    if (host.startsWith("/")) return Bun.connect<ServerConnection>({ unix: join(host, `.s.PGSQL.${port}`), data: server, socket: SERVER_SOCKET });
    if (this.serverTls.mode !== "disable") return connectServerTls(server, host, port, this.serverTls);
    return Bun.connect<ServerConnection>({ hostname: host, port, data: server, socket: SERVER_SOCKET });
  }

  /** Asks the pool plugin for a server for this client; null means the client was queued. */
  acquireServer(client: ClientConnection): ServerConnection | null {
    if (client.virtual) {
      client.fatal(SqlState.FeatureNotSupported, `database "${client.database}" is served by pgbun itself and has no server`);
      return null;
    }
    if (this.hooks.needServer.taps.length === 0) {
      client.fatal(SqlState.InternalError, "no plugin provides a pool (pgbun:pool was replaced by nothing)");
      return null;
    }
    try {
      return (this.callNeedServer(client) as ServerConnection | null | undefined) ?? null;
    } catch (err) {
      this.log.error({ client: client.label, err }, "needServer hook failed");
      client.fatal(SqlState.InternalError, err instanceof Error ? err.message : String(err));
      return null;
    }
  }

  /** Runs the needServer path again for a parked client (e.g. after a PAUSE ends); links a server if one is free. */
  retryAcquire(client: ClientConnection): void {
    if (client.state !== "waiting" || client.server !== null) return;
    const server = this.acquireServer(client);
    if (server) client.linkServer(server);
  }

  /** Unlinks a server from its client; a clean one goes back to its pool, anything else is closed. */
  releaseServer(client: ClientConnection, server: ServerConnection, reason: ReleaseReason): void {
    const clean = client.inSync && server.isClean();
    this.unlinkForRelease(client, server);
    if (!clean) return server.close(`released in an unknown state (${reason})`);
    this.handBack(server, client, reason);
  }

  /**
   * A client left while only pgbun's own internal queries (a state check, a parameter sync) still ran on its
   * server: once they are answered the server is handed back as a release would, to be reset and checked, instead
   * of being closed.
   */
  releaseAfterInternal(client: ClientConnection, server: ServerConnection): void {
    this.unlinkForRelease(client, server);
    // those queries may be a state check whose verdict (a pin) nobody is left to hear: reset and check the server
    server.resetNeeded = true;
    server.setState("used");
    server.afterInternal = () => {
      if (!server.isClean()) return server.close("not idle once its internal queries were answered");
      this.handBack(server, client, "client-close");
    };
  }

  private unlinkForRelease(client: ClientConnection, server: ServerConnection): void {
    // state a pinned or not yet checked client made lives on in the server's session: the pool resets it first
    if (client.pinReason !== null || client.sessionSuspect) server.resetNeeded = true;
    client.unlinkServer();
    server.unlink();
  }

  /** Offers an unlinked, clean server to the plugins (the pool takes it back); closed when none does. */
  private handBack(server: ServerConnection, client: ClientConnection, reason: ReleaseReason): void {
    let taken: true | undefined;
    try {
      taken = this.callServerReleased(server, client, reason) as true | undefined;
    } catch (err) {
      this.log.error({ server: server.label, err }, "serverReleased hook failed");
    }
    if (!taken) server.close("no pool took the released server");
    if (this.shuttingDown) this.maybeFinishShutdown();
  }

  /** A cancel to this server completed; the pool may hand it out again. */
  cancelFinished(server: ServerConnection): void {
    if (server.cancelsInFlight === 0 && server.state === "being_canceled") {
      server.setState("used");
      this.hooks.serverReleased.call(server, null as unknown as ClientConnection, "plugin");
    }
  }

  // ---- reload and shutdown ----

  /** Reads the configuration again (set by the CLI: the same file, env and flags); null re-applies the current one. */
  configLoader: (() => Promise<PgbunConfig>) | null = null;

  /** SIGHUP and the admin console's RELOAD: load, validate, apply; a broken config throws and changes nothing. */
  async reloadConfig(): Promise<ReloadOutcome> {
    const next = this.configLoader ? await this.configLoader() : this.config;
    return this.reload(next);
  }

  /** The admin console's SET: the configuration in force with one setting changed, applied as a reload. */
  setSetting(name: string, value: string): ReloadOutcome {
    return this.reload(withSetting(this.config, name, value));
  }

  /**
   * Applies a new configuration (SIGHUP): settings take effect, servers whose target changed close when released;
   * settings bound at start keep their running values and are reported as needing a restart.
   */
  reload(next: PgbunConfig): ReloadOutcome {
    const restartNeeded = keepRestartSettings(this.config, next);
    const notActedOn = changedIgnored(this.config, next);
    // certificates and keys are read again (new connections use them); unreadable ones fail the reload, changing nothing
    const clientTls = loadClientTls(next.settings, next.dir);
    const serverTls = loadServerTls(next.settings, next.dir);
    const old = this.config;
    this.config = next;
    for (const api of this.apis) api.config = next;
    if (next.settings.log_level !== old.settings.log_level) this.setLogLevel(next.settings.log_level);
    this.clientTls = clientTls;
    this.serverTls = serverTls;
    this.setTrackedExtra();
    // servers log in with the [databases] entries: when those change, each is closed at its next release
    if (JSON.stringify(old.databases) !== JSON.stringify(next.databases)) for (const s of this.servers) s.closeNeeded = true;
    this.hooks.reload.call(next);
    // a reload tap may have tapped a message type (pgbun:pool-statement, pgbun:transaction-timeout): tables again
    this.compileHooks();
    for (const r of restartNeeded) this.log.warn({ setting: r.name, running: r.running, requested: r.requested }, `${r.name} changed: it takes effect only after a restart; the running value stays in force`);
    this.log.info("configuration reloaded");
    return { restartNeeded, notActedOn };
  }

  /**
   * now: close everything at once; safe (SIGINT): stop accepting, wait until servers are released;
   * graceful (SIGTERM): stop accepting, wait until clients leave.
   */
  async shutdown(mode: ShutdownMode): Promise<void> {
    if (this.shuttingDown === "now") return;
    this.shuttingDown = mode;
    // stop(false): refuse new connections, keep the ones being served
    this.stopListeners(false);
    // stopping removes the socket file, as PgBouncer does at exit: before any await, so SIGQUIT's immediate exit removes it too
    this.unixListener?.stop(false);
    this.unixListener = null;
    this.workerListener?.stop(false);
    this.workerListener = null;
    this.log.info({ mode }, "shutting down");
    if (mode === "now") {
      for (const c of [...this.clients]) c.fatal(SqlState.AdminShutdown, "pgbun is shutting down");
      for (const s of [...this.servers]) s.close("shutdown");
    } else if (mode === "safe") {
      for (const c of [...this.clients]) if (!c.server) c.fatal(SqlState.AdminShutdown, "pgbun is shutting down");
    }
    this.maybeFinishShutdown();
    await this.exited;
  }

  private maybeFinishShutdown(): void {
    const mode = this.shuttingDown;
    if (!mode || !this.exitResolve) return;
    const busy = [...this.clients].some((c) => (mode === "graceful" ? true : c.server !== null));
    if (busy) return;
    for (const c of [...this.clients]) c.fatal(SqlState.AdminShutdown, "pgbun is shutting down");
    for (const s of [...this.servers]) s.close("shutdown");
    this.janitor?.stop();
    const resolve = this.exitResolve;
    this.exitResolve = null;
    void this.hooks.shutdown.promise().finally(resolve);
  }
}

/**
 * Adds `by` to a state's count by a named field: the waiting/active changes of every transaction that waits would
 * otherwise index the counts by a string variable, a keyed access whose cache sees four names.
 */
function countClientState(counts: Record<ClientState, number>, state: ClientState, by: number): void {
  switch (state) {
    case "login":
      counts.login += by;
      break;
    case "active":
      counts.active += by;
      break;
    case "waiting":
      counts.waiting += by;
      break;
    case "closed":
      counts.closed += by;
      break;
  }
}
