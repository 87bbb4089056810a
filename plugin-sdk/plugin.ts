// The contract between pgbun and a plugin: what a plugin is, and what it is given when applied.
import type { Logger } from "pino";
import type { PgbunConfig } from "../config/load.ts";
import type { MessageContext, MessageResult } from "../context.ts";
import type { PgbunHooks } from "../hooks.ts";
import type { BackendName, FrontendName } from "../protocol/codes.ts";
import type { Pgbun } from "../pgbun.ts";

export interface TapOptions {
  /** Lower stages run first (tapable's `stage`). */
  stage?: number;
  /** Run before the taps of these plugins (tapable's `before`). */
  before?: string | string[];
}

export interface PluginApi {
  /** The plugin's own name. */
  readonly name: string;
  /** Options given in the config (`["./plugin.ts", { ... }]`). */
  readonly options: Record<string, unknown>;
  readonly hooks: PgbunHooks;
  /** The running pooler: connections, pools' entry points, settings. */
  readonly core: Pgbun;
  /** The configuration in force (changes on reload). */
  readonly config: PgbunConfig;
  /** A logger whose lines carry the plugin's name. */
  readonly log: Logger;
  /** Taps a client-to-server message type (name from the protocol docs, or the type byte). */
  onClientMessage(type: FrontendName | number, fn: (ctx: MessageContext) => MessageResult, options?: TapOptions): void;
  /** Taps a server-to-client message type of linked servers. */
  onServerMessage(type: BackendName | number, fn: (ctx: MessageContext) => MessageResult, options?: TapOptions): void;
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
  apply(api: PluginApi): void | Promise<void>;
}
