// Built-in plugin "pgbun:routing": multi-host entries (libpq's host lists), target_session_attrs, load_balance_hosts, failover.
import {
  loginFailureOf,
  SqlState,
  type DatabaseEntry,
  type LoginFailure,
  type PgbunPlugin,
  type PluginApi,
  type Server,
  type ServerTarget,
  type TargetSessionAttrs,
} from "../../plugin-sdk/index.ts";
import { describeRole, reportedRole, satisfies, sessionRole, type SessionRole } from "./attrs.ts";
import { groupKey, HostGroup, hostPort } from "./hosts.ts";

const NAME = "pgbun:routing";
/** How often (ms) the janitor's tick looks for servers whose role changed under them (a promotion). */
const RECHECK_MS = 1000;

/** Does this entry need the plugin: several hosts, or a target_session_attrs to check? */
function routed(entry: DatabaseEntry): boolean {
  return entry.host.length > 1 || (entry.target_session_attrs ?? "any") !== "any";
}

/** A session's role can change under it only by promotion: the attrs for which that makes it unfit. */
function watched(attrs: TargetSessionAttrs): boolean {
  return attrs === "read-write" || attrs === "read-only" || attrs === "primary" || attrs === "standby";
}

class Router {
  private readonly groups = new Map<string, HostGroup>();
  private lastRecheck = 0;

  constructor(private readonly api: PluginApi) {}

  group(entry: DatabaseEntry): HostGroup {
    const key = groupKey(entry);
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = new HostGroup(entry)));
    return g;
  }

  /**
   * A new server login for a routed entry: the hosts in the group's order until one accepts the login and fits
   * target_session_attrs (libpq's multi-host login). For prefer-standby the first primary that logs in is kept as
   * the fallback while the others are tried for a standby. Fails with the last login's own error when no host
   * accepted one, else with 57P03 naming what each host was (as `{ failure }`: no fault of this plugin).
   */
  async connect(target: ServerTarget, login: (t: ServerTarget) => Promise<Server>): Promise<Server | { failure: LoginFailure } | undefined> {
    const entry = target.entry;
    if (entry === undefined || !routed(entry)) return undefined;
    const attrs = entry.target_session_attrs ?? "any";
    const g = this.group(entry);
    const s = this.api.config.settings;
    const order = g.order(attrs, (entry.load_balance_hosts ?? "round-robin") === "round-robin", this.api.now, s.server_login_retry * 1000);
    const tried: string[] = [];
    let lastFailure: LoginFailure | null = null;
    let fallback: { server: Server; i: number } | null = null;
    for (const i of order) {
      const h = g.hosts[i]!;
      const where = `${h.host}:${h.port}`;
      let server: Server;
      try {
        server = await login({ ...target, host: h.host, port: h.port });
      } catch (err) {
        lastFailure = loginFailureOf(err);
        g.failed(i, this.api.now, lastFailure.message);
        tried.push(`${where}: ${lastFailure.message}`);
        continue;
      }
      if (attrs === "any") {
        g.loggedIn(i, reportedRole(server.params));
        g.chosen(i);
        return this.keep(server, fallback);
      }
      let role: SessionRole;
      try {
        role = await sessionRole(server);
      } catch (err) {
        const message = (err as Error).message;
        server.close(message);
        g.failed(i, this.api.now, message);
        tried.push(`${where}: ${message}`);
        continue;
      }
      g.loggedIn(i, role);
      if (attrs === "prefer-standby" ? role.standby : satisfies(attrs, role)) {
        g.chosen(i);
        return this.keep(server, fallback);
      }
      if (attrs === "prefer-standby" && fallback === null) {
        fallback = { server, i };
        continue;
      }
      server.close(`target_session_attrs=${attrs}: the server is ${describeRole(role)}`);
      tried.push(`${where}: ${describeRole(role)}`);
    }
    if (fallback !== null) {
      g.chosen(fallback.i);
      return fallback.server;
    }
    const db = entry.name;
    this.api.log.warn({ database: db, target_session_attrs: attrs, tried }, "no host of the entry accepted a server login that fits");
    // one host, or every host refused the login: its own error (a wrong password stays 28P01, for the backoff)
    if (lastFailure !== null && tried.length === order.length && order.every((i) => g.hosts[i]!.downSince !== 0)) {
      return { failure: { ...lastFailure, message: order.length === 1 ? lastFailure.message : `no host of database "${db}" accepted the login: ${tried.join("; ")}` } };
    }
    // 57P03 cannot_connect_now, as a standby that refuses connections says: a failover under way, not a broken
    // config, so pgbun:backoff retries it at least once a second (as a restart) and the new primary is found fast
    return {
      failure: {
        code: SqlState.CannotConnectNow,
        message: `no host of database "${db}" fits target_session_attrs=${attrs}: ${tried.join("; ")}`,
      },
    };
  }

  /** The server found for the login; the prefer-standby fallback held meanwhile is not needed any more. */
  private keep(server: Server, fallback: { server: Server } | null): Server {
    fallback?.server.close("a standby was found for target_session_attrs=prefer-standby");
    return server;
  }

  /**
   * A routed server closed on its own (the connection lost, or PostgreSQL's FATAL: a shutdown, a crash): its host
   * is probed again by the next login, which is how a failover is noticed at once.
   */
  closed(server: Server, reason: string): void {
    const entry = server.target.entry;
    if (entry === undefined || !routed(entry)) return;
    if (!server.fatalSeen && !/^(server closed the connection|socket error)/.test(reason)) return;
    const g = this.groups.get(groupKey(entry));
    const i = g?.indexOf(server.target.host, server.target.port) ?? -1;
    if (g === undefined || i < 0) return;
    if (g.hosts[i]!.role !== null) this.api.log.info({ server: server.label, host: `${server.target.host}:${server.target.port}`, reason }, "server of a multi-host entry lost: its host is probed again");
    g.lost(i);
  }

  /**
   * A promotion tells every session of the promoted server (ParameterStatus in_hot_standby off, PostgreSQL 14+): a
   * server that no longer fits its entry's target_session_attrs is closed when idle, else at its release.
   */
  tick(now: number): void {
    if (now - this.lastRecheck < RECHECK_MS || this.groups.size === 0) return;
    this.lastRecheck = now;
    for (const server of this.api.servers()) {
      const entry = server.target.entry;
      if (entry === undefined || server.closeNeeded || server.state === "login" || server.state === "closed") continue;
      const attrs = entry.target_session_attrs ?? "any";
      if (!watched(attrs)) continue;
      const role = reportedRole(server.params);
      if (role === null || satisfies(attrs, role)) continue;
      const g = this.groups.get(groupKey(entry));
      const i = g?.indexOf(server.target.host, server.target.port) ?? -1;
      if (g !== undefined && i >= 0) g.hosts[i]!.role = role;
      const reason = `target_session_attrs=${attrs}: the server is now ${describeRole(role)}`;
      this.api.log.info({ server: server.label, host: `${server.target.host}:${server.target.port}` }, reason);
      server.closeNeeded = true;
      if (server.state === "idle") server.close(reason);
    }
  }

  /** For the console and tests: each routed entry's hosts as last seen. */
  hosts(entry: DatabaseEntry): Array<{ host: string; port: number; role: string; down: boolean; lastError: string }> {
    return this.group(entry).hosts.map((h) => ({
      host: h.host,
      port: h.port,
      role: h.role === null ? "unknown" : h.role.standby ? "standby" : h.role.readOnly ? "read-only" : "primary",
      down: h.downSince !== 0,
      lastError: h.lastError,
    }));
  }
}

/** What pgbun:routing offers other plugins as capability "routing". */
export interface RoutingApi {
  /** The hosts of a [databases] entry as the last logins found them (role "unknown" until one logs in). */
  hosts(entry: DatabaseEntry): Array<{ host: string; port: number; role: string; down: boolean; lastError: string }>;
}

export { hostPort };

/** The routing plugin; replace it with a plugin that `provides: ["routing"]`. */
export default function routingPlugin(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["routing"],
    apply(api) {
      const router = new Router(api);
      this.api = { hosts: (entry) => router.hosts(entry) } satisfies RoutingApi;
      api.hooks.connectServer.tapPromise(NAME, (target, login) => router.connect(target, login));
      api.hooks.serverClosed.tap(NAME, (server, reason) => router.closed(server, reason));
      api.hooks.tick.tap(NAME, (now) => router.tick(now));
    },
  };
}
