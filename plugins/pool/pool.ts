// One pool of server connections per (database, user): idle stack, FIFO waiters, limits, welcome parameters.
import { WaiterQueue } from "./waiters.ts";
import { type Client, type DatabaseEntry, type LoginFailure, type PluginLogger, type PoolHealth, type PoolMode, type Server, type ServerTarget } from "../../plugin-sdk/index.ts";

/** PoolHealth as the pool keeps it: written in one place (Pool.noteHealth), read by the console and metrics. */
export interface MutablePoolHealth extends PoolHealth {
  state: PoolHealth["state"];
  lastCheck: number;
  lastError: string;
  consecutiveFailures: number;
}

export class Pool {
  /** Idle servers; the end of the array is the most recently used (LIFO unless server_round_robin). */
  readonly idle: Server[] = [];
  /** Every server of this pool that is not closed (login, idle, active, used, tested, being_canceled). */
  readonly servers = new Set<Server>();
  /** False once the pool is dropped (autodb_idle_timeout): its servers are not taken back, a later login makes a new one. */
  live = true;
  /** Clients waiting for a server, oldest first. */
  readonly waiters = new WaiterQueue();
  /** Clients logged in to this pool (a count: listing them is a walk over the core's clients, for the console). */
  clientCount = 0;
  /** Logins in progress. */
  connecting = 0;
  /** The server's parameters at login, sent to each new client. */
  welcome: Map<string, string> | null = null;
  private welcomeWaiters: Array<{ resolve: () => void; reject: (f: LoginFailure) => void }> = [];
  /** Round-robin index over the entry's hosts. */
  hostIndex = 0;
  /** Since when (cached clock, ms) the pool has had no clients and no server in use; 0 while in use (autodb_idle_timeout). */
  unusedSince = 0;
  /** Health as the last server login or health check found it. */
  readonly health: MutablePoolHealth = { state: "unknown", lastCheck: 0, lastError: "", consecutiveFailures: 0 };
  /** No server login before this (Date.now() ms; 0: none held back): the delay a serverLoginFailed tap chose. */
  retryAt = 0;
  /** Server logins started, ever (a sequence number for each). */
  loginsStarted = 0;
  /** Logins numbered up to this one were running when the last failure was decided on: their failures are its burst. */
  burstEnd = 0;
  /** The last login failure not yet followed by a success, and whether the tap called it permanent. */
  lastFailure: LoginFailure | null = null;
  failurePermanent = false;
  /** The one timer that retries a login once retryAt passes (while clients wait). */
  retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly key: string,
    readonly database: string,
    readonly user: string,
    public entry: DatabaseEntry,
    public mode: PoolMode,
    public size: number,
    public minSize: number,
    public reserveSize: number,
    public target: (hostIndex: number) => ServerTarget,
  ) {}

  /** Clients logged in or logging in, servers logging in, or servers anywhere but idle (active, in a reset, cancelled). */
  get inUse(): boolean {
    return this.clientCount > 0 || this.waiters.length > 0 || this.connecting > 0 || this.awaitingWelcome > 0 || this.idle.length < this.servers.size;
  }

  /** Takes an idle server that is still usable; closes stale ones on the way. */
  takeIdle(roundRobin: boolean, isUsable: (s: Server) => boolean): Server | null {
    while (this.idle.length > 0) {
      const s = (roundRobin ? this.idle.shift() : this.idle.pop())!;
      if (isUsable(s)) return s;
      s.close("stale idle server");
    }
    return null;
  }

  removeIdle(server: Server): void {
    const i = this.idle.indexOf(server);
    if (i >= 0) this.idle.splice(i, 1);
  }

  removeWaiter(client: Client): void {
    this.waiters.remove(client);
  }

  /** Oldest waiter that is still waiting. */
  nextWaiter(): Client | null {
    while (this.waiters.length > 0) {
      const c = this.waiters.shift()!;
      if (c.state === "waiting") return c;
    }
    return null;
  }

  /** Resolves once welcome parameters are known (a server of this pool logged in), or rejects with its failure. */
  awaitWelcome(): Promise<void> {
    if (this.welcome) return Promise.resolve();
    return new Promise((resolve, reject) => this.welcomeWaiters.push({ resolve, reject }));
  }

  get awaitingWelcome(): number {
    return this.welcomeWaiters.length;
  }

  setWelcome(params: ReadonlyMap<string, string>): void {
    if (!this.welcome) this.welcome = new Map(params);
    for (const w of this.welcomeWaiters.splice(0)) w.resolve();
  }

  failWelcome(f: LoginFailure): void {
    for (const w of this.welcomeWaiters.splice(0)) w.reject(f);
  }

  /**
   * The one place this pool's health changes: server logins and health checks report here (`error` null: it
   * worked); a new state is logged.
   */
  noteHealth(log: PluginLogger, error: string | null): void {
    const h = this.health;
    const before = h.state;
    h.lastCheck = Date.now();
    if (error === null) {
      h.consecutiveFailures = 0;
      h.state = "healthy";
    } else {
      h.consecutiveFailures++;
      h.lastError = error;
      // a failure with working servers left (one killed backend, an extra login refused) leaves the pool serving
      if (this.servers.size === 0) h.state = "unhealthy";
    }
    if (h.state === before) return;
    const where = { pool: `${this.database}/${this.user}`, failures: h.consecutiveFailures };
    if (h.state === "unhealthy") log.warn({ ...where, error: h.lastError }, "pool unhealthy");
    else log.info(where, `pool ${h.state}`);
  }
}
