// The hook registry: every point where plugins take part, with its contract (sync or async, bail meaning), in one place.
import { AsyncSeriesBailHook, AsyncSeriesHook, HookMap, SyncBailHook, SyncHook } from "tapable";
import type { Client, Refusal, Server, ServerTarget } from "./connections.ts";
import type { MessageContext, MessageResult } from "./context.ts";
import type { PgbunConfig } from "./config.ts";
import type { ScramPassthroughKeys } from "./auth-crypto.ts";
import type { PoolInfo } from "./capabilities.ts";
import type { LoginFailure } from "./connections.ts";

export type { Refusal };
export type ReleaseReason = "transaction" | "statement" | "client-close" | "plugin";
export type CloseReason = string;

export type MessageHook = SyncBailHook<[MessageContext], MessageResult>;

/** A client-message tap registered with TapOptions.virtualClients (the core's and the test harness's registrations mark it). */
export function isVirtualClientsTap(tap: unknown): boolean {
  return (tap as { virtualClients?: boolean }).virtualClients === true;
}

/**
 * The function a `virtualClients` tap is registered as: it runs for virtual clients only, on every path a message
 * takes (the core's dispatchers leave it out for pooled clients; tapable's own call, their fallback, meets this test).
 */
export function forVirtualClients(fn: (ctx: MessageContext) => MessageResult): (ctx: MessageContext) => MessageResult {
  return (ctx) => (ctx.client.virtual ? fn(ctx) : undefined);
}

/**
 * Credentials for a server login without the [databases] entry's password. A password answers any method; an md5
 * secret ("md5" + md5(password + user)) answers md5; SCRAM keys answer SCRAM-SHA-256 when the server's secret has the
 * same salt and iteration count; `keys: null` is a SCRAM secret no client has proven yet (the login fails, clearly).
 */
export type ServerCredentials =
  | { kind: "password"; password: string }
  | { kind: "md5"; secret: string }
  | { kind: "scram"; keys: ScramPassthroughKeys | null };

/** What a serverLoginFailed tap decides about the pool whose server login failed. */
export interface LoginRetry {
  /** Milliseconds before the pool tries another login (its waiters keep waiting meanwhile, unless `permanent`). */
  readonly delay: number;
  /**
   * The failure will not pass by itself (a wrong password, an unknown database): when the pool has no working
   * server, its waiters get the failure now, and so do new clients until `delay` is over.
   */
  readonly permanent: boolean;
}

/**
 * Every hook, what it is called with, and what a tap's return value means ("bail": the first tap returning
 * something other than undefined ends the call with that value). Sync hooks must not await; async ones may.
 * A tap that throws is reported by its plugin's name: at login the client is refused (XX000), in a message hook a
 * plain Query fails alone and anything else ends the session, elsewhere the fault is logged.
 * Stages order taps across plugins (lower first): see `Stage` in stages.ts for the built-ins' places.
 * Whether anything tapped a hook is `hook.taps.length > 0` (isUsed() is true for all: pgbun intercepts every hook).
 */
export function createHooks() {
  return Object.freeze({
    /** sync, bail Refusal. A TCP client was accepted (no byte read yet): bail to turn it away. */
    clientAccepted: new SyncBailHook<[Client], Refusal | undefined>(["client"]),
    /**
     * async, bail Refusal. The StartupMessage is parsed (user, database, parameters known): bail to reject the
     * login. The place to set `client.virtual` (a plugin serves the client itself) or to `api.route` it.
     */
    startup: new AsyncSeriesBailHook<[Client], Refusal | undefined>(["client"]),
    /** async, bail Refusal. Client authentication: bail to reject; with no tap, auth_type decides. */
    authenticate: new AsyncSeriesBailHook<[Client], Refusal | undefined>(["client"]),
    /**
     * sync, bail ServerCredentials. What pgbun logs in to PostgreSQL with as this user when the [databases] entry
     * gives no password; asked when PostgreSQL asks for a password, at each server login. pgbun:auth answers from
     * auth_file: a plaintext password, an md5 secret (md5 only), or a SCRAM secret with the keys of the last client
     * that logged in with SCRAM against it (SCRAM-SHA-256 only), as PgBouncer does. undefined: none.
     */
    serverCredentials: new SyncBailHook<[string], ServerCredentials | undefined>(["user"]),
    /** async, bail Refusal. Authenticated; the pool plugin attaches the client to its pool and sets welcomeParams. */
    authenticated: new AsyncSeriesBailHook<[Client], Refusal | undefined>(["client"]),
    /**
     * async, bail Server or { failure }. A new server login was asked for (api.openServer): a tap may choose where
     * it goes, logging in with `login(target)` (the core's login to target.host, as often as it likes, closing what
     * it does not keep; it rejects as api.openServer does) and resolving with the server it keeps, or with
     * `{ failure }` to fail the login with that LoginFailure (the pool's waiters and the backoff see it as a login's
     * own; a throw is the plugin's fault); undefined passes on, and with no tap the core logs in to target.host.
     * pgbun:routing taps it for multi-host entries and target_session_attrs.
     */
    connectServer: new AsyncSeriesBailHook<[ServerTarget, (target: ServerTarget) => Promise<Server>], Server | { failure: LoginFailure } | undefined>(["target", "login"]),
    /** async. A server connection finished its login, before first use (connect_query). Throw to fail the login. */
    serverConnected: new AsyncSeriesHook<[Server]>(["server"]),
    /**
     * sync, bail Server | null. The client needs a server now: return an idle one; or null once this tap has queued
     * the client (it links one later with client.linkServer, or api.retryAcquire hands the client back); undefined
     * passes to the next tap. The pool plugin queues the client and returns undefined.
     */
    needServer: new SyncBailHook<[Client], Server | null | undefined>(["client"]),
    /**
     * sync, bail Server | null. An idle server for this client right now; null: none may be handed to it now (a paused
     * database), whatever later taps would find; undefined passes to the next tap. Never queues.
     */
    peekServer: new SyncBailHook<[Client], Server | null | undefined>(["client"]),
    /**
     * async, bail string. An idle server is about to be handed to a client (health checks): bail with a reason to
     * close it instead, and the pool tries another. With no tap the pool hands servers out synchronously, at no cost.
     */
    checkServer: new AsyncSeriesBailHook<[Server, Client], string | undefined>(["server", "client"]),
    /**
     * sync, bail true. For a plugin whose checkServer tap checks only some servers (pgbun:health-check: those idle
     * longer than server_check_delay): tap this as well, return true when your check is due. While every
     * checkServer tap has a checkServerDue tap (as many of each), a server no tap calls due is handed out
     * synchronously, with no promise; otherwise checkServer runs before every hand-out (taps still decide inside).
     */
    checkServerDue: new SyncBailHook<[Server], true | undefined>(["server"]),
    /**
     * sync, bail LoginRetry. A server login of a pool failed (`failure`: PostgreSQL's own error, or the connect
     * error; `pool.health` already counts it). Return when the pool may try again and whether the failure is
     * permanent (pgbun:backoff). Logins that ran alongside the failed one and fail too are not asked about again:
     * one burst, one decision. With no tap, or undefined, the pool refuses its waiters at once and tries again
     * when the next client needs a server.
     */
    serverLoginFailed: new SyncBailHook<[LoginFailure, PoolInfo], LoginRetry | undefined>(["failure", "pool"]),
    /** sync. A server was linked to a client, before the client's messages reach it (parameter sync). */
    serverLinked: new SyncHook<[Client, Server]>(["client", "server"]),
    /**
     * sync, bail true. A server was unlinked in a clean state: return true once a tap takes it (back to a pool);
     * else it is closed. `client` is null when a cancelled server comes back.
     */
    serverReleased: new SyncBailHook<[Server, Client | null, ReleaseReason], true | undefined>(["server", "client", "reason"]),
    /**
     * sync. A server's session was reset (server_reset_query, DISCARD ALL) before it serves anyone else: what a
     * plugin keeps about that session (prepared statements, applied settings) is gone.
     */
    serverReset: new SyncHook<[Server]>(["server"]),
    /** sync. A client connection closed (its state is already final). */
    clientClosed: new SyncHook<[Client, CloseReason]>(["client", "reason"]),
    /** sync. A server connection closed. */
    serverClosed: new SyncHook<[Server, CloseReason]>(["server", "reason"]),
    /**
     * sync, bail MessageResult. Client-to-server messages by type byte; tap with api.onClientMessage. Called only
     * for types some plugin tapped; the rest are forwarded from their headers without being decoded.
     */
    clientMessage: new HookMap<MessageHook>(() => new SyncBailHook(["ctx"])),
    /** sync, bail MessageResult. Server-to-client messages of a linked server; tap with api.onServerMessage. */
    serverMessage: new HookMap<MessageHook>(() => new SyncBailHook(["ctx"])),
    /** sync. The janitor's tick (about 3 per second); `now` is the cached clock in ms. */
    tick: new SyncHook<[number]>(["now"]),
    /** sync. The configuration was reloaded (SIGHUP, RELOAD): api.config is the new one. */
    reload: new SyncHook<[PgbunConfig]>(["config"]),
    /** async. Shutting down: stop timers, close what you own. */
    shutdown: new AsyncSeriesHook<[]>([]),
  });
}

export type PgbunHooks = ReturnType<typeof createHooks>;
