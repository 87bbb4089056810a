// What a plugin author imports: definePlugin, hooks and stages, connections, message decoders and builders.
import { SDK_API_VERSION, type PgbunPlugin } from "./plugin.ts";

export { SDK_API_VERSION, perWorker } from "./plugin.ts";
export type { PgbunPlugin, PluginApi, PluginInfo, PluginLogger, RouteOptions, ShutdownMode, TapOptions, WorkerInfo } from "./plugin.ts";
export { createHooks, type CloseReason, type LoginRetry, type MessageHook, type PgbunHooks, type Refusal, type ReleaseReason } from "./hooks.ts";
export { Stage, type StageName } from "./stages.ts";
export { loginFailureOf } from "./connections.ts";
export type {
  Client,
  ClientTls,
  ClientState,
  InternalError,
  InternalRows,
  LoginFailure,
  Params,
  PoolMode,
  Server,
  ServerState,
  ServerTarget,
  ServerTls,
} from "./connections.ts";
export { internalQuery } from "./capabilities.ts";
export { internTable } from "./intern.ts";
export { hmacSha256, md5Hex, md5SaltedResponse, scramKeysFromSalted, sha256 } from "./auth-crypto.ts";
export type { ScramPassthroughKeys } from "./auth-crypto.ts";
export type { ServerCredentials } from "./hooks.ts";
export { RESTART_SETTINGS, type ReloadOutcome, type RestartNeeded } from "./restart-settings.ts";
export { COUNTER_FIELDS, DURATION_BUCKETS } from "./capabilities.ts";
export type { AdminApi, AdminCell, AdminColumn, AdminRequest, AdminTable, CounterField, Counters, DurationHistograms, PoolApi, PoolHealth, PoolInfo, StatsApi } from "./capabilities.ts";
export type { DatabaseEntry, PgbunConfig, PluginSpec, Settings, SettingName, UserEntry } from "./config.ts";
export { LOAD_BALANCE_HOSTS, TARGET_SESSION_ATTRS, type LoadBalanceHosts, type TargetSessionAttrs } from "./config.ts";
export { defaultSettings, SETTING_NAMES, SETTINGS, type SettingDef, type SettingKind } from "./settings.ts";
export { Action, type MessageContext, type MessageResult } from "./context.ts";
export { AuthCode, Backend, Frontend, TxStatus, backendName, frontendName, messageCode, type BackendName, type FrontendName } from "./protocol/codes.ts";
export * from "./protocol/errors.ts";
export * from "./protocol/writer.ts";
export * from "./protocol/decode.ts";

/**
 * Declares a plugin as a factory of its options, as Rollup and Vite plugins are:
 * `export default definePlugin((opts: { level?: string }) => ({ name: "my-plugin", apply(api) { ... } }))`.
 * It stamps the SDK API version the plugin was built against, which the loader checks.
 */
export function definePlugin<O extends object = Record<string, unknown>>(factory: (options: O) => PgbunPlugin): (options?: O) => PgbunPlugin {
  return (options?: O) => {
    const plugin = factory((options ?? {}) as O);
    plugin.apiVersion ??= SDK_API_VERSION;
    return plugin;
  };
}
