// The hook registry: every point where plugins take part, declared in one place as tapable hooks.
import { AsyncSeriesBailHook, AsyncSeriesHook, HookMap, SyncBailHook, SyncHook } from "tapable";
import type { ClientConnection } from "./client.ts";
import type { MessageContext, MessageResult } from "./context.ts";
import type { ServerConnection } from "./server.ts";
import type { PgbunConfig } from "./config/load.ts";

/** A refusal a plugin returns from a connection hook: the client gets this ErrorResponse (FATAL) and is closed. */
export interface Refusal {
  code: string;
  message: string;
  detail?: string;
  /** PostgreSQL's own ErrorResponse, sent as is instead of building one. */
  error?: Buffer;
}

export type ReleaseReason = "transaction" | "statement" | "client-close" | "plugin";
export type CloseReason = string;

export type MessageHook = SyncBailHook<[MessageContext], MessageResult>;

export function createHooks() {
  return Object.freeze({
    /** A TCP client was accepted (before any byte is read). Bail with a Refusal to turn it away. */
    clientAccepted: new SyncBailHook<[ClientConnection], Refusal | undefined>(["client"]),
    /** StartupMessage parsed (user, database, parameters known). Bail with a Refusal to reject the login. */
    startup: new AsyncSeriesBailHook<[ClientConnection], Refusal | undefined>(["client"]),
    /** Client authentication. Bail with a Refusal to reject; no tap means the auth_type setting decides. */
    authenticate: new AsyncSeriesBailHook<[ClientConnection], Refusal | undefined>(["client"]),
    /** The client is authenticated; the pool plugin attaches it to a pool and fills client.serverParams. */
    authenticated: new AsyncSeriesBailHook<[ClientConnection], Refusal | undefined>(["client"]),
    /** A server connection finished its login (before first use); e.g. connect_query. */
    serverConnected: new AsyncSeriesHook<[ServerConnection]>(["server"]),
    /**
     * The client needs a server now. Return an idle one; or null once this tap has queued the client (it links a
     * server later with client.linkServer or hands the client back with core.retryAcquire); undefined passes to
     * the next tap (the pool queues the client and returns undefined too).
     */
    needServer: new SyncBailHook<[ClientConnection], ServerConnection | null | undefined>(["client"]),
    /** An idle server for this client right now, or undefined; never queues (for plugins that can do without). */
    peekServer: new SyncBailHook<[ClientConnection], ServerConnection | undefined>(["client"]),
    /** A server was linked to a client (before the client's messages reach it); e.g. parameter sync. */
    serverLinked: new SyncHook<[ClientConnection, ServerConnection]>(["client", "server"]),
    /** A server was unlinked in a clean state. Return true once a tap takes it (back to a pool); else it is closed. */
    serverReleased: new SyncBailHook<[ServerConnection, ClientConnection, ReleaseReason], true | undefined>([
      "server",
      "client",
      "reason",
    ]),
    /**
     * A server's session was reset (server_reset_query, DISCARD ALL) before it serves anyone else: what a plugin
     * keeps about that session (prepared statements, applied settings) is gone.
     */
    serverReset: new SyncHook<[ServerConnection]>(["server"]),
    /** A client connection closed (state already final). */
    clientClosed: new SyncHook<[ClientConnection, CloseReason]>(["client", "reason"]),
    /** A server connection closed. */
    serverClosed: new SyncHook<[ServerConnection, CloseReason]>(["server", "reason"]),
    /** Client-to-server messages, keyed by type byte: `hooks.clientMessage.for(Frontend.Query)`. */
    clientMessage: new HookMap<MessageHook>(() => new SyncBailHook(["ctx"])),
    /** Server-to-client messages of a linked server, keyed by type byte. */
    serverMessage: new HookMap<MessageHook>(() => new SyncBailHook(["ctx"])),
    /** The janitor's tick (about 3 per second); `now` is the cached clock in ms. */
    tick: new SyncHook<[number]>(["now"]),
    /** The configuration was reloaded (SIGHUP). */
    reload: new SyncHook<[PgbunConfig]>(["config"]),
    /** Shutting down: stop timers, close what you own. */
    shutdown: new AsyncSeriesHook<[]>([]),
  });
}

export type PgbunHooks = ReturnType<typeof createHooks>;
