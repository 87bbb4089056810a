// The hosts of one multi-host [databases] entry: what pgbun last learnt of each, and the order a new login tries them.
import type { DatabaseEntry, TargetSessionAttrs } from "../../plugin-sdk/index.ts";
import { satisfies, type SessionRole } from "./attrs.ts";

export interface HostState {
  readonly host: string;
  readonly port: number;
  /** What its last login found, or null: never logged in, or its sessions were lost since (re-probe it). */
  role: SessionRole | null;
  /** When its last login failed or its sessions were lost (cached clock, ms); 0 once a login succeeds again. */
  downSince: number;
  /** Why, for errors and logs. */
  lastError: string;
}

/** A host's place in a login's order: lower is tried first. */
const enum Rank {
  /** Known to fit target_session_attrs (for prefer-standby: a standby). */
  Fits,
  /** Never seen, or to be probed again. */
  Unknown,
  /** Seen as another role: tried after the others, in case it changed (a promotion). */
  OtherRole,
  /** Its last login failed: tried last, so a dead host does not cost each login a connect timeout. */
  Down,
}

export function hostPort(entry: DatabaseEntry, i: number): number {
  return entry.ports?.length === entry.host.length ? entry.ports[i]! : entry.port;
}

/** A key that changes when the entry's hosts do (a reload with another host list starts afresh). */
export function groupKey(entry: DatabaseEntry): string {
  return `${entry.name}\u0000${entry.host.map((h, i) => `${h}:${hostPort(entry, i)}`).join(",")}`;
}

export class HostGroup {
  readonly hosts: HostState[];
  /** round-robin: where the next login starts. */
  private next = 0;
  /** disable: the host logins stay on until it fails (PgBouncer's load_balance_hosts = disable). */
  private current = 0;

  constructor(entry: DatabaseEntry) {
    this.hosts = entry.host.map((host, i) => ({ host, port: hostPort(entry, i), role: null, downSince: 0, lastError: "" }));
  }

  /**
   * The hosts' indexes in the order a new login tries them: from the rotation's start (round-robin) or the current
   * host (disable), hosts known to fit first, then unknown ones, then ones of another role, then ones down.
   */
  order(attrs: TargetSessionAttrs, roundRobin: boolean, now: number, downForMs: number): number[] {
    const n = this.hosts.length;
    const start = roundRobin ? this.next++ % n : this.current;
    if (this.next >= n) this.next = 0;
    const rotation = Array.from({ length: n }, (_, k) => (start + k) % n);
    const rank = rotation.map((i) => this.rank(this.hosts[i]!, attrs, now, downForMs));
    // a stable sort by rank keeps the rotation among hosts of one rank
    return rotation.map((i, k) => ({ i, r: rank[k]! })).sort((a, b) => a.r - b.r).map((x) => x.i);
  }

  /** A host down for longer than `downForMs` (server_login_retry) is tried in its turn again, as if unknown. */
  private rank(h: HostState, attrs: TargetSessionAttrs, now: number, downForMs: number): Rank {
    if (h.downSince !== 0 && now - h.downSince < downForMs) return Rank.Down;
    // any host fits "any": what was learnt of its role must not bend the rotation
    if (attrs === "any") return Rank.Fits;
    if (h.role === null) return Rank.Unknown;
    const fits = attrs === "prefer-standby" ? h.role.standby : satisfies(attrs, h.role);
    return fits ? Rank.Fits : Rank.OtherRole;
  }

  loggedIn(i: number, role: SessionRole | null): void {
    const h = this.hosts[i]!;
    h.downSince = 0;
    h.lastError = "";
    if (role !== null) h.role = role;
  }

  /** A login to this host fit and is kept: with load_balance_hosts = disable, logins stay here. */
  chosen(i: number): void {
    this.current = i;
  }

  failed(i: number, now: number, error: string): void {
    const h = this.hosts[i]!;
    if (h.downSince === 0) h.downSince = now;
    h.lastError = error;
    h.role = null;
  }

  /** A session of this host was lost: its role is probed again at the next login (a failover may be under way). */
  lost(i: number): void {
    this.hosts[i]!.role = null;
  }

  indexOf(host: string, port: number): number {
    return this.hosts.findIndex((h) => h.host === host && h.port === port);
  }
}
