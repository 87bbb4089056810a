// Process control from the admin console: PAUSE/RESUME, KILL, RECONNECT, DISABLE/ENABLE, WAIT_CLOSE and their waits.
import { SqlState, type Client, type PluginApi, type Server } from "../../plugin-sdk/index.ts";
import { poolViews, serverDatabase, type PoolView } from "./pool-view.ts";

interface Wait {
  done: () => boolean;
  finish: () => void;
  /** The console client that asked; a wait whose client left is dropped (the pause itself stays). */
  owner: { readonly closed: boolean };
}

/**
 * Pausing works in front of the pool: a client of a paused database that needs a server is parked here (the
 * needServer tap answers for it) and handed back to the normal needServer path on RESUME, oldest first.
 */
export class Control {
  private pausedAll = false;
  private readonly pausedDbs = new Set<string>();
  private readonly disabledDbs = new Set<string>();
  /** Clients parked while their database is paused, in arrival order. */
  private readonly parked = new Set<Client>();
  private waits: Wait[] = [];
  private pollQueued = false;

  /**
   * Told when a pause (PAUSE, KILL) or a wait (PAUSE, WAIT_CLOSE) begins, before it is in force: the taps that act
   * only then (tap-admin.ts: needServer, serverReleased) are made on first use, so they cost nothing per transaction
   * before it.
   */
  onPause: (() => void) | null = null;
  onWait: (() => void) | null = null;

  constructor(private readonly api: PluginApi) {}

  isPaused(db: string): boolean {
    return this.pausedAll || (this.pausedDbs.size > 0 && this.pausedDbs.has(db));
  }

  /** True while the whole pooler is paused (PAUSE or KILL without a database): SHOW STATE's paused. */
  get pausedWhole(): boolean {
    return this.pausedAll;
  }

  /** True while some pause is in force: the needServer tap checks this first, so it costs nothing otherwise. */
  get anyPaused(): boolean {
    return this.pausedAll || this.pausedDbs.size > 0;
  }

  isDisabled(db: string): boolean {
    return this.disabledDbs.size > 0 && this.disabledDbs.has(db);
  }

  /** Parks a client of a paused database (from the needServer tap). */
  park(client: Client): void {
    this.parked.add(client);
  }

  forget(client: Client): void {
    this.parked.delete(client);
  }

  get parkedCount(): number {
    return this.parked.size;
  }

  /** A database the console may name: a [databases] entry or one that has a pool. */
  knownDatabase(db: string): boolean {
    if (db !== "*" && this.api.config.databases[db]) return true;
    return poolViews(this.api).some((v) => v.database === db);
  }

  private views(db: string | null): PoolView[] {
    return poolViews(this.api).filter((v) => db === null || v.database === db);
  }

  private serversOf(db: string | null): Server[] {
    return [...this.api.servers()].filter((s) => db === null || serverDatabase(s) === db);
  }

  // ---- commands; each returns an error message or null ----

  pause(db: string | null): string | null {
    this.onPause?.();
    if (db === null) {
      if (this.pausedAll) return "already suspended/paused";
      this.pausedAll = true;
      return null;
    }
    if (this.pausedAll || this.pausedDbs.has(db)) return `database ${db} is already paused`;
    this.pausedDbs.add(db);
    return null;
  }

  /** PAUSE is complete once no server of the database(s) is busy; idle ones are then closed (as PgBouncer does). */
  pauseComplete(db: string | null): boolean {
    // a RESUME before the pause took effect ends the wait without closing anything
    if (db === null ? !this.pausedAll : !this.isPaused(db)) return true;
    const views = this.views(db);
    for (const v of views) {
      if (v.connecting > 0) return false;
      if (v.servers.some((s) => s.state !== "idle")) return false;
      if (v.clients.some((c) => c.state === "waiting" && !this.parked.has(c))) return false;
    }
    for (const v of views) for (const s of v.servers) s.close("PAUSE");
    return true;
  }

  resume(db: string | null): string | null {
    if (db === null) {
      if (!this.anyPaused) return "pooler is not paused/suspended";
      this.pausedAll = false;
      this.pausedDbs.clear();
    } else {
      if (this.pausedAll) return "pooler is paused as a whole: RESUME without a database";
      if (!this.pausedDbs.delete(db)) return `database ${db} is not paused`;
    }
    this.releaseParked();
    return null;
  }

  /** Hands parked clients whose database is no longer paused to the normal needServer path. */
  private releaseParked(): void {
    for (const c of [...this.parked]) {
      if (this.isPaused(c.poolDatabase)) continue;
      this.parked.delete(c);
      this.api.retryAcquire(c);
    }
  }

  /**
   * Drops every client and server of the database (of every database when null, as PgBouncer 1.25's KILL without
   * one; the console's own clients stay); new clients wait until RESUME (PgBouncer's KILL).
   */
  kill(db: string | null): string | null {
    this.onPause?.();
    if (db === null) this.pausedAll = true;
    else this.pausedDbs.add(db);
    for (const c of [...this.api.clients()]) {
      // a client's database here is its pool's: where a plugin routed it (api.route), else the one it asked for
      if (c.virtual || (db !== null && c.poolDatabase !== db)) continue;
      c.fatal(SqlState.AdminShutdown, db === null ? "all databases were killed from the admin console" : `database ${db} was killed from the admin console`);
    }
    for (const s of this.serversOf(db)) s.close("KILL from the admin console");
    return null;
  }

  killClient(id: number): string | null {
    for (const c of this.api.clients()) {
      if (c.id === id) {
        c.fatal(SqlState.AdminShutdown, "client was killed from the admin console");
        return null;
      }
    }
    return `no client with id ${id}`;
  }

  /** Servers close when next released; idle ones close now. */
  reconnect(db: string | null): string | null {
    for (const s of this.serversOf(db)) {
      s.closeNeeded = true;
      if (s.state === "idle") s.close("RECONNECT from the admin console");
    }
    return null;
  }

  waitCloseComplete(db: string | null): boolean {
    return !this.serversOf(db).some((s) => s.closeNeeded && s.state !== "closed");
  }

  disable(db: string): void {
    this.disabledDbs.add(db);
  }

  enable(db: string): string | null {
    return this.disabledDbs.delete(db) ? null : `database ${db} is not disabled`;
  }

  // ---- waiting for a condition (PAUSE, WAIT_CLOSE) ----

  /** Runs `finish` once `done()` holds: now, after a server is released or closed, or on a janitor tick. */
  whenDone(owner: { readonly closed: boolean }, done: () => boolean, finish: () => void): void {
    if (done()) return finish();
    this.onWait?.();
    this.waits.push({ done, finish, owner });
  }

  get waiting(): boolean {
    return this.waits.length > 0;
  }

  /** Re-checks the waits after the current event (a release is complete only once the pool took the server). */
  schedulePoll(): void {
    if (this.pollQueued || this.waits.length === 0) return;
    this.pollQueued = true;
    queueMicrotask(() => {
      this.pollQueued = false;
      this.poll();
    });
  }

  poll(): void {
    if (this.waits.length === 0) return;
    const ready: Wait[] = [];
    const rest: Wait[] = [];
    for (const w of this.waits) {
      if (w.owner.closed) continue;
      (w.done() ? ready : rest).push(w);
    }
    this.waits = rest;
    for (const w of ready) w.finish();
  }
}
