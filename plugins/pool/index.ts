// Built-in plugin "pgbun:pool": session and transaction pooling per (database, user) with PgBouncer's limits.
import {
  loginFailureOf,
  noticeResponse,
  perWorker,
  SqlState,
  type Client,
  type InternalError,
  type LoginFailure,
  type PgbunPlugin,
  type PluginApi,
  type PoolApi,
  type PoolInfo,
  type Refusal,
  type Server,
} from "../../plugin-sdk/index.ts";
import { Pool } from "./pool.ts";
import { DISCARDS_ALL, leftover, LEFTOVER_QUERY } from "./reset.ts";
import { poolSizesOf } from "./sizes.ts";

const NAME = "pgbun:pool";
/**
 * Server logins a pool runs at once. Asked for a thousand servers at once (a session-mode pool after a restart),
 * PostgreSQL forks backends so slowly that logins pass server_connect_timeout and fail, and every waiting client
 * with them; PgBouncer opens one at a time. A few in parallel fill a pool fast without that stampede.
 */
const MAX_CONNECTING = 8;
/**
 * How long before query_wait_timeout a waiter of a pool with no server and a failed login gets that login's error:
 * the core's janitor would end it on its next tick (about 3 a second) with a bare "query_wait_timeout".
 */
const WAIT_MARGIN_MS = 400;

/** query_wait_notify's NOTICE, PgBouncer 1.25's words: the same bytes for every client. */
const QUEUED_NOTICE = noticeResponse("No server connection available in postgres backend, client being queued");

/**
 * The settings the hand-over reads per transaction, taken once per configuration (at start and at each reload; a SET
 * reloads too): one field instead of getters and settings lookups on every acquire and release.
 */
interface HandOver {
  readonly roundRobin: boolean;
  /** server_lifetime in ms: an older server is closed, idle or at its release. 0: see singleUse. */
  readonly lifetimeMs: number;
  /**
   * server_lifetime 0, PgBouncer's "used only once, then closed" (objects.c release_server: life_over): a server is
   * closed at its release; one never used yet (logged in for a waiter or a client's welcome) still serves its client.
   */
  readonly singleUse: boolean;
  readonly resetQuery: string;
  /** server_reset_query runs at every release: session mode, or server_reset_query_always (and a query to run). */
  readonly resetSession: boolean;
  readonly resetAlways: boolean;
}

function handOverOf(s: PluginApi["config"]["settings"]): HandOver {
  const reset = s.server_reset_query;
  return {
    roundRobin: s.server_round_robin,
    lifetimeMs: s.server_lifetime * 1000,
    singleUse: s.server_lifetime === 0,
    resetQuery: reset,
    resetSession: reset !== "",
    resetAlways: reset !== "" && s.server_reset_query_always,
  };
}

function refusalOf(f: LoginFailure): Refusal {
  return { code: f.code ?? SqlState.ConnectionFailure, message: f.message, error: f.error };
}

/** What a waiter gets when its pool's server login failed (PostgreSQL's own ErrorResponse when it sent one). */
function waiterRefusal(f: LoginFailure): Refusal {
  return { code: SqlState.ConnectionFailure, message: `server login failed: ${f.message}`, error: f.error };
}

class PoolManager {
  readonly pools = new Map<string, Pool>();
  /** Waiters told they are queued (query_wait_notify), by the waitStart of the wait they were told about. */
  private readonly notified = new WeakMap<Client, number>();
  private readonly dbConnections = new Map<string, number>();
  private readonly userConnections = new Map<string, number>();

  /** The hand-over's settings: taken at start and again by the reload tap (every new configuration, SET too, reloads). */
  private hand: HandOver;
  private readonly checkServer: PluginApi["hooks"]["checkServer"];
  private readonly checkServerDue: PluginApi["hooks"]["checkServerDue"];

  constructor(private readonly api: PluginApi) {
    this.hand = handOverOf(api.config.settings);
    this.checkServer = api.hooks.checkServer;
    this.checkServerDue = api.hooks.checkServerDue;
  }

  private get settings() {
    return this.api.config.settings;
  }

  /** A new configuration is in force (the reload hook). */
  reloaded(config: PluginApi["config"]): void {
    this.hand = handOverOf(config.settings);
  }

  poolFor(client: Client): Pool {
    const database = client.poolDatabase;
    const key = client.routeHost === "" ? `${database}\u0000${client.user}` : `${database}\u0000${client.user}\u0000${client.routeHost}`;
    let pool = this.pools.get(key);
    if (pool) return pool;
    const entry = client.dbEntry!;
    const api = this.api;
    const sizes = poolSizesOf(entry, api.config.users[client.user], this.settings, api.worker.count);
    pool = new Pool(key, database, client.user, entry, client.poolMode, sizes.size, sizes.minSize, sizes.reserveSize, (i) =>
      api.targetFor(entry, database, client.user, i),
    );
    this.pools.set(key, pool);
    return pool;
  }

  /** Can this pool open one more server? `reserve`: also use reserve_pool_size. */
  canOpen(pool: Pool, reserve = false): boolean {
    // after a failed login: none until the delay the serverLoginFailed tap chose, then one at a time until one succeeds
    if (pool.lastFailure !== null && (pool.connecting > 0 || pool.retryAt > Date.now())) return false;
    const limit = pool.size + (reserve ? pool.reserveSize : 0);
    if (pool.servers.size + pool.connecting >= limit || pool.connecting >= MAX_CONNECTING) return false;
    const workers = this.api.worker.count;
    const maxDb = perWorker(pool.entry.max_db_connections ?? this.settings.max_db_connections, workers);
    if (maxDb > 0 && (this.dbConnections.get(pool.database) ?? 0) >= maxDb && !this.evictIdle(pool, (p) => p.database === pool.database)) return false;
    const maxUser = perWorker(this.api.config.users[pool.user]?.max_user_connections ?? this.settings.max_user_connections, workers);
    if (maxUser > 0 && (this.userConnections.get(pool.user) ?? 0) >= maxUser && !this.evictIdle(pool, (p) => p.user === pool.user)) return false;
    return true;
  }

  /**
   * At a database- or user-wide limit, an idle server of another pool under the same limit is closed to make
   * room (as PgBouncer does), so one pool's idle connections cannot starve another's clients.
   */
  private evictIdle(pool: Pool, sharesLimit: (p: Pool) => boolean): boolean {
    for (const other of this.pools.values()) {
      if (other === pool || !sharesLimit(other) || other.idle.length === 0) continue;
      const victim = other.idle.shift()!; // the least recently used
      victim.close("closed to make room under max_db_connections / max_user_connections");
      return true;
    }
    return false;
  }

  private count(map: Map<string, number>, key: string, delta: number): void {
    const n = (map.get(key) ?? 0) + delta;
    // a name with no connections left goes: auto-database pools come and go by the thousand
    if (n === 0) map.delete(key);
    else map.set(key, n);
  }

  /** Opens a server for the pool; when logged in it serves the oldest waiter or goes idle. */
  open(pool: Pool): void {
    const target = pool.target(pool.hostIndex++);
    const seq = ++pool.loginsStarted;
    pool.connecting++;
    this.count(this.dbConnections, pool.database, 1);
    this.count(this.userConnections, pool.user, 1);
    this.api.openServer(target, pool).then(
      (s) => {
        pool.connecting--;
        pool.servers.add(s);
        this.loginSucceeded(pool);
        pool.setWelcome(s.params);
        this.makeAvailable(pool, s);
        // logins beyond MAX_CONNECTING were held back: the next one starts as this one ends
        if (pool.waiters.length > pool.connecting && this.canOpen(pool)) this.open(pool);
      },
      (err) => {
        pool.connecting--;
        this.count(this.dbConnections, pool.database, -1);
        this.count(this.userConnections, pool.user, -1);
        const f = loginFailureOf(err);
        this.api.log.warn({ pool: `${pool.database}/${pool.user}`, host: target.host, port: target.port, code: f.code }, `server login failed: ${f.message}`);
        this.loginFailed(pool, f, seq);
      },
    );
  }

  private loginSucceeded(pool: Pool): void {
    pool.lastFailure = null;
    pool.failurePermanent = false;
    pool.retryAt = 0;
    pool.noteHealth(this.api.log, null);
  }

  /**
   * A failed server login: the serverLoginFailed taps (pgbun:backoff) say when to try again and whether it is
   * permanent. The pool's waiters keep waiting while it has working servers, or until query_wait_timeout, unless the
   * failure is permanent; with no tap (or no answer) every waiter gets the failure at once.
   */
  private loginFailed(pool: Pool, f: LoginFailure, seq: number): void {
    if (seq <= pool.burstEnd) {
      // it ran alongside the login already decided on: same burst, same decision (unless one has succeeded since)
      if (pool.lastFailure !== null) pool.lastFailure = f;
      return;
    }
    pool.noteHealth(this.api.log, f.message);
    const hook = this.api.hooks.serverLoginFailed;
    let retry;
    try {
      retry = hook.taps.length === 0 ? undefined : hook.call(f, pool);
    } catch (err) {
      this.api.log.error({ err }, "serverLoginFailed hook failed");
    }
    if (retry === undefined) return this.refuseWaiters(pool, f);
    pool.burstEnd = pool.loginsStarted;
    pool.lastFailure = f;
    pool.failurePermanent = retry.permanent;
    pool.retryAt = Date.now() + Math.max(0, retry.delay);
    if (pool.retryTimer !== null) clearTimeout(pool.retryTimer);
    pool.retryTimer = setTimeout(() => this.retryLogin(pool), Math.max(0, retry.delay));
    pool.retryTimer.unref?.();
    if (retry.permanent && pool.servers.size === 0) this.refuseWaiters(pool, f);
  }

  /** The backoff is over: one login, if clients still wait (min_pool_size is the janitor's). */
  private retryLogin(pool: Pool): void {
    pool.retryTimer = null;
    if (this.pools.get(pool.key) !== pool || this.api.shuttingDown !== null) return;
    const wanted = pool.waiters.length > pool.connecting || (pool.awaitingWelcome > 0 && pool.connecting === 0);
    if (wanted && this.canOpen(pool)) this.open(pool);
  }

  /** Every waiter gets the failure rather than hanging (PostgreSQL's own error when it sent one). */
  private refuseWaiters(pool: Pool, f: LoginFailure): void {
    pool.failWelcome(f);
    for (let c = pool.nextWaiter(); c; c = pool.nextWaiter()) c.refuse(waiterRefusal(f));
  }

  /** A permanent failure still in force and no server: new clients get it at once instead of trying again. */
  refusesNow(pool: Pool): LoginFailure | null {
    return pool.failurePermanent && pool.servers.size === 0 && pool.retryAt > Date.now() ? pool.lastFailure : null;
  }

  /** A server that is ready: the oldest waiter gets it, else it goes idle. */
  makeAvailable(pool: Pool, server: Server): void {
    const waiter = pool.nextWaiter();
    if (waiter) {
      waiter.linkServer(server);
      return;
    }
    server.markIdle();
    pool.idle.push(server);
  }

  /** usable() as a value made once: hot paths pass it on without making a closure per call. */
  readonly isUsable = (server: Server): boolean => this.usable(server);

  get roundRobin(): boolean {
    return this.hand.roundRobin;
  }

  usable(server: Server): boolean {
    if (server.closeNeeded || server.fatalSeen || server.state === "closed") return false;
    const h = this.hand;
    // server_lifetime 0: released() closes every server that served a client, so one still here has served none yet
    return h.singleUse || this.api.now - server.connectTime <= h.lifetimeMs;
  }

  needServer(client: Client): Server | null | undefined {
    const pool = client.pool as Pool;
    const server = pool.takeIdle(this.hand.roundRobin, this.isUsable);
    if (server) {
      if (!this.checkDue(server)) return server;
      this.check(pool, server, client);
      return null;
    }
    const failure = this.refusesNow(pool);
    if (failure !== null) {
      client.refuse(waiterRefusal(failure));
      return null;
    }
    pool.waiters.push(client);
    if (pool.connecting < pool.waiters.length && this.canOpen(pool)) this.open(pool);
    return undefined;
  }

  /** Must checkServer run before this server is handed out? Never with no tap; always when a tap has no checkServerDue. */
  checkDue(server: Server): boolean {
    const checks = this.checkServer.taps.length;
    if (checks === 0) return false;
    return checks > this.checkServerDue.taps.length || this.checkServerDue.call(server) === true;
  }

  /**
   * The checkServer hook (a health check) runs before an idle server is handed out: the client waits meanwhile. A
   * server a tap refuses is closed and the client asks again; one whose client left meanwhile goes back to the pool.
   */
  private check(pool: Pool, server: Server, client: Client): void {
    server.markTested();
    const done = (reason: string | undefined) => {
      const stillWaiting = client.state === "waiting" && client.server === null;
      if (reason === undefined && server.isClean() && this.usable(server)) {
        pool.noteHealth(this.api.log, null);
        if (stillWaiting) client.linkServer(server);
        else this.makeAvailable(pool, server);
        return;
      }
      server.close(reason ?? "not usable after checkServer");
      pool.noteHealth(this.api.log, reason ?? "not usable after checkServer");
      if (stillWaiting) this.api.retryAcquire(client);
    };
    this.checkServer.promise(server, client).then(done, (err: unknown) => done(`checkServer failed: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** PoolApi.checkIdle: a background check of an idle server, out of the idle list meanwhile. */
  checkIdle(server: Server, check: (server: Server) => Promise<string | undefined>): boolean {
    const pool = server.pool as Pool | null;
    if (!pool || !pool.live || server.state !== "idle" || !pool.idle.includes(server)) return false;
    pool.removeIdle(server);
    server.markTested();
    const done = (reason: string | undefined) => {
      if (server.state === "closed") return pool.noteHealth(this.api.log, reason ?? "server closed during its health check");
      if (reason === undefined && server.isClean() && this.usable(server)) {
        pool.noteHealth(this.api.log, null);
        return this.makeAvailable(pool, server);
      }
      server.close(reason ?? "not usable after its health check");
      pool.noteHealth(this.api.log, reason ?? "not usable after its health check");
    };
    check(server).then(done, (err: unknown) => done(`health check failed: ${err instanceof Error ? err.message : String(err)}`));
    return true;
  }

  released(server: Server, client: Client | null): true | undefined {
    const pool = server.pool as Pool | null;
    const h = this.hand;
    // not taken back, so closed: a dropped pool's server (autodb_idle_timeout), one past server_lifetime, any with 0
    if (!pool || !pool.live || h.singleUse || !this.usable(server)) return undefined;
    if (server.cancelsInFlight > 0) {
      server.markBeingCanceled();
      return true;
    }
    if (server.resetNeeded) {
      this.resetLeftState(pool, server, h.resetQuery, client);
      return true;
    }
    if (pool.mode === "session" ? h.resetSession : h.resetAlways) {
      this.runReset(pool, server, h.resetQuery);
      return true;
    }
    this.makeAvailable(pool, server);
    return true;
  }

  /** server_reset_query, then back to the pool (a method of its own: its closure is made only when it runs). */
  private runReset(pool: Pool, server: Server, reset: string): void {
    server.markTested();
    server.applied.clear();
    server.runInternal(reset, (error) => {
      if (error || !server.isClean()) return server.close("server_reset_query failed");
      this.api.hooks.serverReset.call(server);
      this.makeAvailable(pool, server);
    });
  }

  /**
   * A server whose client left session state behind (pinned, or not yet checked): server_reset_query, and where
   * it is not DISCARD ALL (which undoes everything the check looks for), the leftover check, in one write; only a
   * server found clean goes back to the pool, any other is closed. Only such servers pay for this: a plain
   * transaction's release stays a push onto the idle stack.
   */
  private resetLeftState(pool: Pool, server: Server, reset: string, client: Client | null): void {
    if (reset === "") return server.close("its client left session state and server_reset_query is empty");
    this.api.log.info({ server: server.label, client: client?.label, pin: client?.pinReason ?? undefined }, "resetting a server its client left with session state");
    server.markTested();
    server.applied.clear();
    const done = (left: string | null) => {
      if (left !== null) return server.close(`session state left after the reset: ${left}`);
      if (!server.isClean()) return server.close("not idle after the reset");
      server.resetNeeded = false;
      this.api.hooks.serverReset.call(server);
      this.makeAvailable(pool, server);
    };
    if (DISCARDS_ALL.test(reset)) {
      server.runInternal(reset, (error) => done(error === null ? null : `server_reset_query failed: ${error.message}`));
    } else {
      let resetError: InternalError | null = null;
      server.runInternal(reset, (error) => (resetError = error));
      server.runInternal(LEFTOVER_QUERY, (error, rows) => {
        done(resetError !== null ? `server_reset_query failed: ${resetError.message}` : error !== null ? `state check failed: ${error.message}` : leftover(rows, server.target.user));
      });
    }
  }

  serverClosed(server: Server): void {
    const pool = server.pool as Pool | null;
    if (!pool || !pool.servers.delete(server)) return;
    pool.removeIdle(server);
    this.count(this.dbConnections, pool.database, -1);
    this.count(this.userConnections, pool.user, -1);
    if (pool.waiters.length > pool.connecting && this.canOpen(pool)) this.open(pool);
  }

  /** A pool made for a name the "*" entry answered (no [databases] entry of its own). */
  private isAuto(pool: Pool): boolean {
    return !Object.hasOwn(this.api.config.databases, pool.database);
  }

  /**
   * autodb_idle_timeout: an auto-database pool unused that long is dropped and its idle servers closed (PgBouncer
   * frees them too), so logins to ever new names do not leave a pool each behind. A later login makes a new one.
   */
  private dropIfUnused(pool: Pool, now: number, timeoutMs: number): boolean {
    if (pool.inUse) {
      pool.unusedSince = 0;
      return false;
    }
    if (pool.unusedSince === 0) pool.unusedSince = now;
    if (now - pool.unusedSince < timeoutMs) return false;
    this.pools.delete(pool.key);
    pool.live = false;
    for (const server of [...pool.idle]) server.close("autodb_idle_timeout");
    this.api.log.info({ pool: `${pool.database}/${pool.user}` }, "auto-database pool dropped after autodb_idle_timeout");
    return true;
  }

  /** query_wait_notify: a NOTICE, once per wait, to each client queued longer (PgBouncer 1.25 sends it once too). */
  private notifyQueued(pool: Pool, now: number, notifyMs: number): void {
    for (const c of pool.waiters) {
      if (c.state !== "waiting" || c.waitStart === 0 || now - c.waitStart <= notifyMs || this.notified.get(c) === c.waitStart) continue;
      this.notified.set(c, c.waitStart);
      c.send(QUEUED_NOTICE);
    }
  }

  /** Janitor duties: idle timeouts, lifetime, min_pool_size, reserve pool for long waits, unused auto-database pools. */
  tick(now: number): void {
    const s = this.settings;
    const idleMs = s.server_idle_timeout * 1000;
    const reserveMs = s.reserve_pool_timeout * 1000;
    const autodbMs = s.autodb_idle_timeout * 1000;
    const waitMs = s.query_wait_timeout * 1000;
    const notifyMs = s.query_wait_notify * 1000;
    for (const pool of this.pools.values()) {
      // deleting the current entry while iterating a Map is safe
      if (autodbMs > 0 && this.isAuto(pool) && this.dropIfUnused(pool, now, autodbMs)) continue;
      for (const server of [...pool.idle]) {
        const expired = !this.usable(server) || (idleMs > 0 && now - server.lastUsed > idleMs && pool.servers.size > pool.minSize);
        if (expired) server.close(server.closeNeeded ? "close_needed" : "server_idle_timeout or server_lifetime");
      }
      if (notifyMs > 0) this.notifyQueued(pool, now, notifyMs);
      if (pool.lastFailure !== null && pool.servers.size === 0 && waitMs > 0) {
        for (const c of [...pool.waiters]) if (c.state === "waiting" && now - c.waitStart > waitMs - WAIT_MARGIN_MS) c.refuse(waiterRefusal(pool.lastFailure));
      }
      while (pool.minSize > 0 && pool.servers.size + pool.connecting < pool.minSize && this.canOpen(pool)) this.open(pool);
      const oldest = pool.waiters.first();
      // reserve_pool_timeout 0 disables the reserve pool, as PgBouncer's `if (cf_res_pool_timeout && ...)` (objects.c)
      if (oldest && pool.reserveSize > 0 && reserveMs > 0 && now - oldest.waitStart >= reserveMs && pool.connecting < pool.waiters.length && this.canOpen(pool, true)) {
        this.api.log.info({ pool: `${pool.database}/${pool.user}` }, "taking a connection from the reserve pool");
        this.open(pool);
      }
    }
  }
}

/** What pgbun:pool offers other plugins as capability "pool" (the console's SHOW POOLS, stats pruning). */
function poolApi(manager: PoolManager): PoolApi {
  return {
    pools: () => manager.pools.values() as Iterable<PoolInfo>,
    poolOf: (client) => {
      const pool = client.pool as Pool | null;
      return pool !== null && pool.live ? pool : undefined;
    },
    checkIdle: (server, check) => manager.checkIdle(server, check),
  };
}

/** The pool plugin; replace it with a plugin that `provides: ["pool"]`. */
export default function poolPlugin(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["pool"],
    apply(api) {
      const manager = new PoolManager(api);
      this.api = poolApi(manager);
      const h = api.hooks;
      h.authenticated.tapPromise(NAME, async (client) => {
        if (client.virtual) return undefined;
        const s = api.config.settings;
        const pool = manager.poolFor(client);
        const maxDbClients = s.max_db_client_connections;
        if (maxDbClients > 0 && [...manager.pools.values()].filter((p) => p.database === pool.database).reduce((n, p) => n + p.clientCount, 0) >= maxDbClients) {
          return { code: SqlState.TooManyConnections, message: "no more connections allowed (max_db_client_connections)" };
        }
        const maxUserClients = s.max_user_client_connections;
        if (maxUserClients > 0 && [...manager.pools.values()].filter((p) => p.user === pool.user).reduce((n, p) => n + p.clientCount, 0) >= maxUserClients) {
          return { code: SqlState.TooManyConnections, message: "no more connections allowed (max_user_client_connections)" };
        }
        client.pool = pool;
        pool.clientCount++;
        // the first client of a pool needs a server's parameters: it waits for one like a query would
        const deadline = api.now + (s.query_wait_timeout > 0 ? s.query_wait_timeout * 1000 : Number.POSITIVE_INFINITY);
        // one promise per client, however long it waits: a login failing over and over adds no waiter each round
        const waiting = pool.welcome ? null : pool.awaitWelcome();
        while (!pool.welcome) {
          const failure = manager.refusesNow(pool);
          if (failure !== null) return refusalOf(failure);
          if (pool.connecting === 0 && manager.canOpen(pool)) manager.open(pool);
          try {
            // a failed login leaves the promise pending (the pool tries again later): look again now and then, also
            // while a login runs (one that fails transiently would leave this client waiting on it to client_login_timeout)
            await Promise.race([waiting, Bun.sleep(100)]);
          } catch (err) {
            return refusalOf(err as LoginFailure);
          }
          if (client.closed) return undefined;
          if (!pool.welcome && Date.now() > deadline) return pool.lastFailure ? refusalOf(pool.lastFailure) : { code: SqlState.ProtocolViolation, message: "query_wait_timeout" };
        }
        client.welcomeParams = pool.welcome!;
        return undefined;
      });
      h.needServer.tap(NAME, (client) => manager.needServer(client));
      // a server handed out without its checkServer taps would skip the health check: none when they are tapped
      h.peekServer.tap(NAME, (client) => {
        const pool = client.pool as Pool | null;
        if (!pool) return undefined;
        const server = pool.takeIdle(manager.roundRobin, manager.isUsable);
        if (server === null || !manager.checkDue(server)) return server ?? undefined;
        pool.idle.push(server); // it needs its check first: needServer runs it
        return undefined;
      });
      h.serverReleased.tap(NAME, (server, client) => manager.released(server, client));
      h.serverClosed.tap(NAME, (server) => manager.serverClosed(server));
      h.clientClosed.tap(NAME, (client) => {
        const pool = client.pool as Pool | null;
        if (!pool) return;
        pool.clientCount--;
        pool.removeWaiter(client);
      });
      h.tick.tap(NAME, (now) => manager.tick(now));
      h.reload.tap(NAME, (config) => {
        manager.reloaded(config);
        for (const pool of manager.pools.values()) {
          const entry = api.resolveDatabase(pool.database);
          if (!entry) continue;
          pool.entry = entry;
          const sizes = poolSizesOf(entry, api.config.users[pool.user], api.config.settings, api.worker.count);
          pool.size = sizes.size;
          pool.minSize = sizes.minSize;
          pool.reserveSize = sizes.reserveSize;
          pool.target = (i) => api.targetFor(entry, pool.database, pool.user, i);
          // the reload may have fixed what failed (a password, a host): the next client tries at once
          pool.retryAt = 0;
          pool.failurePermanent = false;
        }
      });
      h.shutdown.tapPromise(NAME, async () => {
        for (const pool of manager.pools.values()) if (pool.retryTimer !== null) clearTimeout(pool.retryTimer);
      });
    },
  };
}

export type { PoolManager };
