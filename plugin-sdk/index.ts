// What a plugin author imports: definePlugin, the hook and context types, message decoders and builders.
import type { PgbunPlugin } from "../core/plugin/types.ts";

export type { PgbunPlugin, PluginApi, TapOptions } from "../core/plugin/types.ts";
export type { PgbunHooks, Refusal, ReleaseReason } from "../core/hooks.ts";
export type { ClientConnection, ClientState, PoolMode } from "../core/client.ts";
export type { ServerConnection, ServerState, ServerTarget } from "../core/server.ts";
export type { PgbunConfig } from "../core/config/load.ts";
export { Action, MessageContext, type MessageResult } from "../core/context.ts";
export { Backend, Frontend, TxStatus, backendName, frontendName, type BackendName, type FrontendName } from "../core/protocol/codes.ts";
export { SqlState, errorResponse, noticeResponse, decodeError, type DecodedError } from "../core/protocol/errors.ts";
export {
  MessageWriter,
  Prebuilt,
  commandComplete,
  dataRow,
  parameterStatus,
  query,
  readyForQuery,
  rowDescription,
} from "../core/protocol/writer.ts";
export * from "../core/protocol/decode.ts";

/**
 * Declares a plugin as a factory of its options, as Rollup and Vite plugins are:
 * `export default definePlugin((opts: { level?: string }) => ({ name: "my-plugin", apply(api) { ... } }))`.
 */
export function definePlugin<O extends object = Record<string, unknown>>(factory: (options: O) => PgbunPlugin): (options?: O) => PgbunPlugin {
  return (options?: O) => factory((options ?? {}) as O);
}
