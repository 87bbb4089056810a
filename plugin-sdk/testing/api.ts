// A PluginApi over fresh hooks, a config and fake connections: the test world a plugin is applied to.
import type { DatabaseEntry, PgbunConfig, Settings, UserEntry } from "../config.ts";
import type { ClientState, PoolMode, Server, ServerTarget } from "../connections.ts";
import { createHooks, forVirtualClients, type PgbunHooks } from "../hooks.ts";
import type { PgbunPlugin, PluginApi, PluginInfo, PluginLogger, ShutdownMode, TapOptions } from "../plugin.ts";
import { SDK_API_VERSION } from "../plugin.ts";
import { backendName, frontendName, messageCode } from "../protocol/codes.ts";
import { defaultSettings } from "../settings.ts";
import { fakeClient, fakeServer, unlink, type FakeClient, type FakeClientOptions, type FakeServer, type FakeServerOptions, type Mutable, type World } from "./fakes.ts";


/** A log line a plugin wrote (the test logger prints nothing). */
export interface LogLine {
  level: string;
  obj: unknown;
  msg?: string;
}

/** One call of api.openServer. */
export interface OpenedServer {
  target: ServerTarget;
  owner: unknown;
}

export interface TestApiOptions {
  /** The name of `api` (the PluginApi of testApi); applyPlugin uses the plugin's. */
  name?: string;
  /** The plugin options api.options carries. */
  options?: Record<string, unknown>;
  /** Overrides of defaultSettings(). */
  settings?: Partial<Settings>;
  /** [databases] entries by name (name filled in, host as a string or a list); default: "*" to 127.0.0.1:5432. */
  databases?: Record<string, Partial<Omit<DatabaseEntry, "host">> & { host?: string | string[] }>;
  users?: Record<string, Partial<UserEntry>>;
  /** What api.openServer resolves with; default: a new fake server (state "login", as the core's after login). */
  openServer?: (target: ServerTarget, owner: unknown, t: TestApi) => Server | Promise<Server>;
  worker?: { id?: number; count?: number };
  port?: number;
  /** The cached clock's start (ms); default Date.now(). */
  now?: number;
}

export interface TestApi {
  /** The PluginApi named by the options (or the plugin given to applyPlugin). */
  readonly api: PluginApi;
  readonly hooks: PgbunHooks;
  /** The configuration in force; replace it with reload(). */
  config: PgbunConfig;
  /** The cached clock every api sees (api.now); set it to move time. */
  now: number;
  /** Every client and server made in this world (closed ones too); api.clients()/servers() skip closed ones. */
  readonly clients: FakeClient[];
  readonly servers: FakeServer[];
  /** Every api.openServer call, in order. */
  readonly opened: OpenedServer[];
  readonly logs: LogLine[];
  shuttingDown: ShutdownMode | null;
  /** A fake client of this world: its pool settings from the config, as the core sets them at login. */
  client(options?: FakeClientOptions): FakeClient;
  /** A fake server of this world (connected now). */
  server(options?: FakeServerOptions): FakeServer;
  /** Applies one more plugin to the same hooks and connections; resolves with its PluginApi. */
  apply(plugin: PgbunPlugin, options?: Record<string, unknown>): Promise<PluginApi>;
  /**
   * What the core does when a client needs a server: needServer; a server it returns is linked, else the client is
   * left waiting (state "waiting"). Returns the linked server or null.
   */
  acquireServer(client: FakeClient): FakeServer | null;
  /** Sets the clock (if given) and runs the janitor's tick hook. */
  tick(now?: number): void;
  /** Takes a new configuration (settings merged over the current ones) and runs the reload hook. */
  reload(changes?: Pick<TestApiOptions, "settings" | "databases" | "users">): void;
}

function silentLogger(logs: LogLine[], bindings: Record<string, unknown>): PluginLogger {
  const at = (level: string) => (obj: unknown, msg?: string) => {
    logs.push({ level, obj: typeof obj === "object" && obj !== null ? { ...bindings, ...obj } : obj, msg });
  };
  return {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    fatal: at("fatal"),
    isLevelEnabled: () => true,
    child: (more) => silentLogger(logs, { ...bindings, ...more }),
  };
}

function databasesOf(input: TestApiOptions["databases"]): Record<string, DatabaseEntry> {
  const out: Record<string, DatabaseEntry> = {};
  for (const [name, e] of Object.entries(input ?? { "*": {} })) {
    const host = e.host === undefined ? ["127.0.0.1"] : Array.isArray(e.host) ? e.host : e.host.split(",");
    out[name] = { ...e, name, host, port: e.port ?? 5432 };
  }
  return out;
}

function usersOf(input: TestApiOptions["users"]): Record<string, UserEntry> {
  const out: Record<string, UserEntry> = {};
  for (const [name, u] of Object.entries(input ?? {})) out[name] = { ...u, name };
  return out;
}

/** Every plain hook (not the per-message maps) by name, to list what a plugin tapped. */
function plainHooks(hooks: PgbunHooks): Array<[string, { taps: Array<{ name: string }> }]> {
  return Object.entries(hooks).filter(([name]) => name !== "clientMessage" && name !== "serverMessage") as Array<[string, { taps: Array<{ name: string }> }]>;
}

/**
 * A PluginApi over fresh hooks (createHooks), the given config (defaultSettings() plus overrides), fake
 * connections and a logger that prints nothing (its lines are in `logs`). Nothing listens and nothing connects:
 * api.openServer makes a fake server unless `openServer` says otherwise.
 */
export function testApi(options: TestApiOptions = {}): TestApi {
  const hooks = createHooks();
  const applied: Array<{ plugin: PgbunPlugin; options: Record<string, unknown>; messageTaps: string[] }> = [];
  const defaults = Object.freeze(defaultSettings());

  const world: World = {
    hooks,
    get now() {
      return t.now;
    },
    release(client, server, reason) {
      // the core's releaseServer: a server its client left with session state is reset by the pool first
      const clean = client.inSync && server.isClean();
      if (client.pinReason !== null || client.sessionSuspect) server.resetNeeded = true;
      unlink(client, server, world);
      if (!clean) return server.close(`released in an unknown state (${reason})`);
      if (!hooks.serverReleased.call(server, client, reason)) server.close("no pool took the released server");
    },
  };

  const makeApi = (name: string, pluginOptions: Record<string, unknown>, messageTaps: string[]): PluginApi => {
    const tapOpts = (o?: TapOptions) => ({ name, stage: o?.stage, before: o?.before as string | undefined, virtualClients: o?.virtualClients === true });
    return {
      name,
      options: pluginOptions,
      hooks,
      get config() {
        return t.config;
      },
      log: silentLogger(t.logs, { plugin: name }),
      get now() {
        return t.now;
      },
      worker: { id: options.worker?.id ?? 0, count: options.worker?.count ?? 1, socketPath: (id) => `/tmp/pgbun-test-worker-${id}.sock`, supervisorPid: process.pid },
      port: options.port ?? 6432,
      version: `${SDK_API_VERSION}-test`,
      defaults,
      get shuttingDown() {
        return t.shuttingDown;
      },
      onClientMessage: (type, fn, o) => {
        const code = messageCode("frontend", type);
        messageTaps.push(`clientMessage:${frontendName(code)}`);
        hooks.clientMessage.for(code).tap(tapOpts(o), o?.virtualClients === true ? forVirtualClients(fn) : fn);
      },
      onServerMessage: (type, fn, o) => {
        const code = messageCode("backend", type);
        messageTaps.push(`serverMessage:${backendName(code)}`);
        hooks.serverMessage.for(code).tap(tapOpts(o), fn);
      },
      clients: () => t.clients.filter((c) => !c.closed),
      servers: () => t.servers.filter((s) => s.state !== "closed"),
      get clientCounts() {
        const counts: Record<ClientState, number> = { login: 0, active: 0, waiting: 0, closed: 0 };
        for (const c of t.clients) counts[c.state]++;
        return counts;
      },
      resolveDatabase: (db) => t.config.databases[db] ?? t.config.databases["*"] ?? null,
      targetFor: (entry, database, user, hostIndex = 0) => ({
        host: entry.host[hostIndex % entry.host.length] ?? "127.0.0.1",
        port: entry.port,
        database: entry.dbname ?? database,
        user: entry.user ?? user,
        password: entry.password,
      }),
      openServer: async (target, owner) => {
        t.opened.push({ target, owner });
        const server = options.openServer ? await options.openServer(target, owner, t) : t.server({ target, state: "login", pool: owner });
        (server as FakeServer).pool = owner;
        await hooks.serverConnected.promise(server);
        return server;
      },
      route: (client, database, o) => {
        const entry = t.config.databases[database] ?? t.config.databases["*"] ?? null;
        if (entry === null || client.virtual || client.state !== "login") return false;
        const c = client as FakeClient;
        c.poolDatabase = database;
        if (o?.host === undefined && o?.port === undefined) {
          c.dbEntry = entry;
          c.routeHost = "";
        } else {
          c.dbEntry = { ...entry, host: o.host !== undefined ? [o.host] : entry.host, port: o.port ?? entry.port };
          c.routeHost = `${c.dbEntry.host.join(",")}:${c.dbEntry.port}`;
        }
        return true;
      },
      releaseServer: (client, server, reason) => world.release(client as FakeClient, server as FakeServer, reason),
      retryAcquire: (client) => {
        if (client.state === "waiting" && client.server === null) t.acquireServer(client as FakeClient);
      },
      cancelFinished: (server) => {
        if (server.cancelsInFlight === 0 && server.state === "being_canceled") {
          (server as FakeServer).state = "used";
          hooks.serverReleased.call(server, null, "plugin");
        }
      },
      reload: async () => {
        t.reload();
        return { restartNeeded: [] };
      },
      // the test world has no setting parser: a test changes settings with t.reload({ settings })
      setSetting: () => {
        throw Object.assign(new Error("setSetting is not simulated by the SDK's test API; use reload({ settings })"), { code: "0A000" });
      },
      shutdown: async (mode) => {
        t.shuttingDown = mode;
        await hooks.shutdown.promise();
      },
      capability: <T>(cap: string) => applied.find((a) => a.plugin.name === cap || (a.plugin.provides ?? []).includes(cap))?.plugin.api as T | undefined,
      plugins: () =>
        applied.map(
          (a): PluginInfo => ({
            name: a.plugin.name,
            specifier: a.plugin.name,
            provides: a.plugin.provides ?? [],
            options: a.options,
            taps: [...plainHooks(hooks).filter(([, h]) => h.taps.some((tap) => tap.name === a.plugin.name)).map(([n]) => n), ...new Set(a.messageTaps)],
          }),
        ),
    };
  };

  const t: TestApi = {
    api: undefined as unknown as PluginApi,
    hooks,
    config: { settings: { ...defaultSettings(), ...options.settings }, databases: databasesOf(options.databases), users: usersOf(options.users), plugins: null, file: null, dir: "." },
    now: options.now ?? Date.now(),
    clients: [],
    servers: [],
    opened: [],
    logs: [],
    shuttingDown: null,
    client(o = {}) {
      const database = o.database ?? "postgres";
      const user = o.user ?? "postgres";
      const entry = t.config.databases[database] ?? t.config.databases["*"] ?? null;
      const poolMode = (t.config.users[user]?.pool_mode ?? entry?.pool_mode ?? t.config.settings.pool_mode) as PoolMode;
      const c = fakeClient({ connectTime: t.now, lastActivity: t.now, dbEntry: entry, poolDatabase: database, poolMode, ...o });
      c.world = world;
      t.clients.push(c);
      return c;
    },
    server(o = {}) {
      const s = fakeServer({ connectTime: t.now, lastUsed: t.now, ...o });
      s.world = world;
      t.servers.push(s);
      return s;
    },
    async apply(plugin, pluginOptions = {}) {
      const entry = { plugin, options: pluginOptions, messageTaps: [] as string[] };
      applied.push(entry);
      const api = makeApi(plugin.name, pluginOptions, entry.messageTaps);
      await plugin.apply(api);
      return api;
    },
    acquireServer(client) {
      const server = (hooks.needServer.call(client) as FakeServer | null | undefined) ?? null;
      if (server !== null) client.linkServer(server);
      else if (!client.closed && client.server === null) {
        client.state = "waiting";
        client.waitStart = t.now;
      }
      return client.server;
    },
    tick(now) {
      if (now !== undefined) t.now = now;
      hooks.tick.call(t.now);
    },
    reload(changes = {}) {
      t.config = {
        ...t.config,
        settings: { ...t.config.settings, ...changes.settings },
        databases: changes.databases ? databasesOf(changes.databases) : t.config.databases,
        users: changes.users ? usersOf(changes.users) : t.config.users,
      };
      hooks.reload.call(t.config);
    },
  };
  (t as Mutable<TestApi>).api = makeApi(options.name ?? "test", options.options ?? {}, []);
  return t;
}

/** A test world with this plugin applied (under its own name, with `options.options` as its options). */
export async function applyPlugin(plugin: PgbunPlugin, options: TestApiOptions = {}): Promise<TestApi> {
  const t = testApi({ ...options, name: plugin.name });
  (t as Mutable<TestApi>).api = await t.apply(plugin, options.options ?? {});
  return t;
}

/** Lets pending promise callbacks run (a login that resolves, a checkServer tap): await it after an async step. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
