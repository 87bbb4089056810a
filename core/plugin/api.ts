// The PluginApi a plugin is given: the only door from a plugin into the core, built once per plugin at apply.
import type { LoginFailure, Server, ServerTarget } from "../../plugin-sdk/connections.ts";
import type { PluginApi, PluginInfo, TapOptions } from "../../plugin-sdk/plugin.ts";
import { forVirtualClients } from "../../plugin-sdk/hooks.ts";
import { messageCode } from "../../plugin-sdk/protocol/codes.ts";
import type { ClientConnection } from "../client.ts";
import type { Pgbun } from "../pgbun.ts";
import type { ServerConnection } from "../server.ts";
import { PluginFault } from "./fault.ts";
import type { LoadedPlugin } from "./loader.ts";
import { defaultSettings } from "../config/settings.ts";
import { VERSION } from "../version.ts";
import { workerSocketPath } from "../workers.ts";

const DEFAULTS = Object.freeze(defaultSettings());

/** The loaded plugins as `pgbun plugins` and the console list them. */
export function pluginInfos(core: Pgbun): PluginInfo[] {
  return core.plugins.map((l) => ({
    name: l.plugin.name,
    specifier: l.specifier,
    provides: l.plugin.provides ?? [],
    options: l.options,
    taps: [...(core.tapsOf.get(l.plugin.name) ?? [])],
    faults: core.faults.get(l.plugin.name) ?? 0,
  }));
}

/** api.openServer: through the connectServer taps (a plugin choosing the host), else straight to target.host. */
async function openServer(core: Pgbun, target: ServerTarget, owner: unknown): Promise<Server> {
  const hook = core.hooks.connectServer;
  if (hook.taps.length === 0) return core.openServer(target, owner);
  let chosen: Server | { failure: LoginFailure } | undefined;
  try {
    chosen = await hook.promise(target, (t) => core.openServer(t, owner));
  } catch (err) {
    // a login's own rejection a tap let through is still a login failure, for the pool's waiters and the backoff
    throw err instanceof PluginFault && (err.cause as { failure?: unknown } | null)?.failure !== undefined ? err.cause : err;
  }
  if (chosen === undefined) return core.openServer(target, owner);
  if ("failure" in chosen) throw Object.assign(new Error(chosen.failure.message), { failure: chosen.failure });
  return chosen;
}

/**
 * The fields of a PluginApi the core keeps current itself (Pgbun.setNow, Pgbun.reload): plain data, not getters, so
 * a tap that reads them per transaction (the pool's server_lifetime test) loads a field.
 */
export interface CoreFields {
  now: number;
  config: Pgbun["config"];
  /** The plugin's child of the core's log: its level follows log_level at each reload (Pgbun.setLogLevel). */
  readonly log: { level: string };
}

export function makePluginApi(core: Pgbun, l: LoadedPlugin): PluginApi & CoreFields {
  const name = l.plugin.name;
  const tapOpts = (o?: TapOptions) => ({ name, stage: o?.stage, before: o?.before as string | undefined, extendedQuery: o?.extendedQuery === true, virtualClients: o?.virtualClients === true });
  return {
    name,
    options: l.options,
    hooks: core.hooks,
    config: core.config,
    log: core.log.child({ plugin: name }),
    now: core.now,
    worker: {
      id: core.worker.id,
      count: core.worker.count,
      socketPath: (id) => workerSocketPath(core.worker.supervisorPid, id),
      supervisorPid: core.worker.supervisorPid,
    },
    version: VERSION,
    defaults: DEFAULTS,
    get port() {
      return core.port;
    },
    get shuttingDown() {
      return core.shuttingDown;
    },
    onClientMessage: (type, fn, o) => core.hooks.clientMessage.for(messageCode("frontend", type)).tap(tapOpts(o), o?.virtualClients === true ? forVirtualClients(fn) : fn),
    onServerMessage: (type, fn, o) => core.hooks.serverMessage.for(messageCode("backend", type)).tap(tapOpts(o), fn),
    clients: () => core.clients,
    servers: () => core.servers,
    clientCounts: core.clientCounts,
    resolveDatabase: (db) => core.resolveDatabase(db),
    targetFor: (entry, database, user, hostIndex) => core.targetFor(entry, database, user, hostIndex),
    openServer: (target, owner) => openServer(core, target, owner),
    route: (client, database, options) => core.route(client as ClientConnection, database, options?.host, options?.port),
    releaseServer: (client, server, reason) => core.releaseServer(client as ClientConnection, server as ServerConnection, reason),
    retryAcquire: (client) => core.retryAcquire(client as ClientConnection),
    cancelFinished: (server) => core.cancelFinished(server as ServerConnection),
    reload: () => core.reloadConfig(),
    setSetting: (name, value) => core.setSetting(name, value),
    shutdown: (mode) => core.shutdown(mode),
    capability: <T>(cap: string) => core.capability(cap) as T | undefined,
    plugins: () => pluginInfos(core),
  };
}
