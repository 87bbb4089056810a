// /readyz: ready when not shutting down, each [databases] entry has a host that accepts a connection, and no pool whose login the config fixes is unhealthy.
import { join } from "node:path";
import type { PgbunConfig } from "../../plugin-sdk/index.ts";
import type { Snapshot } from "./snapshot.ts";

/** A probe waits this long for a TCP (or Unix socket) connection. */
const PROBE_TIMEOUT_MS = 1_000;
/** Probes are reused for this long: a probe every scrape of a busy load balancer would be a connection storm. */
const PROBE_CACHE_MS = 1_000;

export interface Readiness {
  ready: boolean;
  reasons: string[];
  /** Each [databases] entry: whether one of its hosts accepted a connection. */
  databases: Record<string, boolean>;
  /** Pools reported unhealthy ("database/user": last error), whether or not they count against readiness. */
  unhealthy: Record<string, string>;
}

/**
 * Whether a pool's health says something about the servers rather than about what a client asked for: a client
 * picks the database (any name, with a "*" entry) and the user, and a login as a user or to a database that does not
 * exist fails. Only a pool of a named entry that fixes the login user (user=) is the configuration's own; the rest
 * are shown but do not make pgbun unready, or any client could take it out of a load balancer.
 */
function countsForReadiness(config: PgbunConfig, database: string): boolean {
  const entry = Object.hasOwn(config.databases, database) ? config.databases[database] : undefined;
  return entry !== undefined && entry.name !== "*" && typeof entry.user === "string" && entry.user !== "";
}

/** Whether a server socket accepts a connection (closed at once: PostgreSQL logs nothing for it). */
function probe(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    const handlers = {
      open(s: { end(): void }) {
        s.end();
        done(true);
      },
      data() {},
      close() {},
      error() {
        done(false);
      },
      connectError() {
        done(false);
      },
    };
    const target = host.startsWith("/") ? { unix: join(host, `.s.PGSQL.${port}`) } : { hostname: host, port };
    Bun.connect({ ...target, socket: handlers } as Parameters<typeof Bun.connect>[0]).catch(() => done(false));
  });
}

/** Readiness with its probes cached for a second. */
export class ReadyCheck {
  private cached: { at: number; result: Promise<Record<string, boolean>> } | null = null;

  private reachable(config: PgbunConfig): Promise<Record<string, boolean>> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < PROBE_CACHE_MS) return this.cached.result;
    const result = (async () => {
      const seen = new Map<string, Promise<boolean>>();
      const probeOnce = (host: string, port: number) => {
        const key = `${host}\u0000${port}`;
        let p = seen.get(key);
        if (!p) seen.set(key, (p = probe(host, port)));
        return p;
      };
      const out = Object.create(null) as Record<string, boolean>;
      await Promise.all(
        Object.values(config.databases).map(async (entry) => {
          const answers = await Promise.all(entry.host.map((h) => probeOnce(h, entry.port)));
          out[entry.name] = answers.some(Boolean);
        }),
      );
      return out;
    })();
    this.cached = { at: now, result };
    return result;
  }

  async check(config: PgbunConfig, shuttingDown: boolean, snapshot: Snapshot): Promise<Readiness> {
    const reasons: string[] = [];
    if (shuttingDown) reasons.push("shutting down");
    const unhealthy = Object.create(null) as Record<string, string>;
    for (const p of snapshot.pools) {
      if (p.health?.state !== "unhealthy") continue;
      unhealthy[`${p.database}/${p.user}`] = p.health.lastError;
      if (countsForReadiness(config, p.database)) reasons.push(`pool ${p.database}/${p.user} is unhealthy: ${p.health.lastError}`);
    }
    const databases = await this.reachable(config);
    for (const [name, ok] of Object.entries(databases)) if (!ok) reasons.push(`database ${name}: no host accepts a connection`);
    return { ready: reasons.length === 0, reasons, databases, unhealthy };
  }
}
