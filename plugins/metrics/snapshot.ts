// One worker's figures at scrape time (pools, counters, errors, faults) as plain JSON, and the sum over workers.
import type { Client, PluginApi, PoolApi, PoolInfo, Server, StatsApi } from "../../plugin-sdk/index.ts";
import type { ErrorCounts } from "./errors.ts";

export type HealthState = "healthy" | "unhealthy" | "unknown";

/** A pool's health as the pool plugin reports it (PoolInfo.health), or null when it reports none. */
export interface HealthSample {
  state: HealthState;
  /** ms since the epoch; 0 = never checked. */
  lastCheck: number;
  lastError: string;
  consecutiveFailures: number;
}

/** One (database, user) pool: SHOW POOLS' counts. */
export interface PoolSample {
  database: string;
  user: string;
  mode: string;
  clActive: number;
  clWaiting: number;
  svActive: number;
  svIdle: number;
  svUsed: number;
  svTested: number;
  svLogin: number;
  svBeingCanceled: number;
  /** The longest wait of a waiting client, in ms. */
  maxWaitMs: number;
  health: HealthSample | null;
}

/** One database's duration histograms (StatsApi.histograms): cumulative counts per Snapshot.buckets bound, +Inf last. */
export interface HistogramSample {
  query: number[];
  xact: number[];
  wait: number[];
}

const HISTOGRAM_SERIES = ["query", "xact", "wait"] as const;

export interface Snapshot {
  /** When it was taken (ms since the epoch). */
  time: number;
  version: string;
  /** Workers whose figures are in it, and those that did not answer in time. */
  workers: number[];
  missing: number[];
  /** Clients by state (the console's included) and servers by state, over the whole process. */
  clients: Record<string, number>;
  servers: Record<string, number>;
  pools: PoolSample[];
  /** StatsApi totals by database: counts, bytes, times in µs. */
  stats: Record<string, Record<string, number>>;
  /** The histograms' bucket bounds in seconds; [] when the stats plugin keeps no histograms. */
  buckets: number[];
  /** Duration histograms by database, each series `buckets.length + 1` long. */
  histograms: Record<string, HistogramSample>;
  /** ErrorResponses servers sent, by database and SQLSTATE class (the code's first two characters). */
  errors: Record<string, Record<string, number>>;
  /** Faults of each plugin's taps since start. */
  faults: Record<string, number>;
  maxClientConn: number;
}

/**
 * Records keyed by names clients choose (database names, with a "*" entry) have no prototype: a database named
 * "__proto__" is a key like any other.
 */
function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

const SERVER_STATES = ["login", "idle", "active", "used", "tested", "being_canceled"] as const;

/** A pool's health as the pool plugin reports it (a replacement pool plugin may report none). */
function healthOf(p: PoolInfo): HealthSample | null {
  const h = p.health as PoolInfo["health"] | undefined;
  if (!h) return null;
  return { state: h.state, lastCheck: h.lastCheck, lastError: h.lastError, consecutiveFailures: h.consecutiveFailures };
}

function emptyPool(database: string, user: string, mode: string, health: HealthSample | null): PoolSample {
  return { database, user, mode, clActive: 0, clWaiting: 0, svActive: 0, svIdle: 0, svUsed: 0, svTested: 0, svLogin: 0, svBeingCanceled: 0, maxWaitMs: 0, health };
}

function countServer(p: PoolSample, s: Server): void {
  switch (s.state) {
    case "active":
      p.svActive++;
      break;
    case "idle":
      p.svIdle++;
      break;
    case "used":
      p.svUsed++;
      break;
    case "tested":
      p.svTested++;
      break;
    case "being_canceled":
      p.svBeingCanceled++;
      break;
    case "login":
      p.svLogin++;
      break;
  }
}

/** The name of the pool plugin's entry a server belongs to (as SHOW POOLS groups them without PoolApi). */
function serverPoolName(s: Server): [string, string] {
  const owner = s.pool as { database?: unknown; user?: unknown } | null;
  return [typeof owner?.database === "string" ? owner.database : s.target.database, typeof owner?.user === "string" ? owner.user : s.target.user];
}

/** This worker's pools: from the pool plugin's capability, else grouped from the connection lists. */
function poolSamples(api: PluginApi): PoolSample[] {
  const stats = api.capability<StatsApi>("stats");
  const waited = (c: Client) => (stats ? stats.waitedMs(c) : c.waitStart > 0 ? Math.max(0, api.now - c.waitStart) : 0);
  const addClient = (p: PoolSample, c: Client) => {
    if (c.state === "active") p.clActive++;
    else if (c.state === "waiting") {
      p.clWaiting++;
      p.maxWaitMs = Math.max(p.maxWaitMs, waited(c));
    }
  };
  const pools = api.capability<PoolApi>("pool");
  if (pools) {
    const out = new Map<PoolInfo, PoolSample>();
    for (const p of pools.pools()) {
      const sample = emptyPool(p.database, p.user, p.mode, healthOf(p));
      for (const s of p.servers) countServer(sample, s);
      sample.svLogin += p.connecting;
      out.set(p, sample);
    }
    for (const c of api.clients()) {
      const p = c.pool !== null && !c.virtual ? pools.poolOf(c) : undefined;
      const sample = p && out.get(p);
      if (sample) addClient(sample, c);
    }
    return [...out.values()];
  }
  const byKey = new Map<string, PoolSample>();
  const sampleOf = (database: string, user: string, mode: string) => {
    const key = `${database}\u0000${user}`;
    let p = byKey.get(key);
    if (!p) byKey.set(key, (p = emptyPool(database, user, mode, null)));
    return p;
  };
  for (const c of api.clients()) if (!c.virtual && (c.state === "active" || c.state === "waiting")) addClient(sampleOf(c.poolDatabase, c.user, c.poolMode), c);
  for (const s of api.servers()) if (s.state !== "closed") countServer(sampleOf(...serverPoolName(s), api.config.settings.pool_mode), s);
  return [...byKey.values()];
}

/** This worker's figures now. */
export function takeSnapshot(api: PluginApi, errors: ErrorCounts): Snapshot {
  const servers = dict<number>();
  for (const st of SERVER_STATES) servers[st] = 0;
  for (const s of api.servers()) if (s.state !== "closed") servers[s.state] = (servers[s.state] ?? 0) + 1;
  const counts = api.clientCounts;
  const stats = dict<Record<string, number>>();
  const statsApi = api.capability<StatsApi>("stats");
  const totals = statsApi?.totals();
  if (totals) for (const [db, c] of totals) stats[db] = Object.assign(dict<number>(), c);
  // read right after the totals, in the same turn: the +Inf counts are the totals' counts
  const histograms = dict<HistogramSample>();
  let buckets: number[] = [];
  const hist = statsApi?.histograms?.();
  if (hist) {
    for (const [db, h] of hist) {
      buckets = [...h.bounds];
      histograms[db] = { query: [...h.query], xact: [...h.xact], wait: [...h.wait] };
    }
  }
  const faults = dict<number>();
  for (const p of api.plugins()) faults[p.name] = p.faults ?? 0;
  return {
    time: Date.now(),
    version: api.version,
    workers: [api.worker.id],
    missing: [],
    clients: { login: counts.login, active: counts.active, waiting: counts.waiting },
    servers,
    pools: poolSamples(api),
    stats,
    buckets,
    histograms,
    errors: errors.snapshot(),
    faults,
    maxClientConn: api.config.settings.max_client_conn,
  };
}

// ---- the sum over workers ----

const HEALTH_RANK: Record<HealthState, number> = { unknown: 0, healthy: 1, unhealthy: 2 };

/** One pool's health over workers: the worst state any worker saw, its latest check and error, the longest failure run. */
function mergeHealth(a: HealthSample | null, b: HealthSample | null): HealthSample | null {
  if (!a || !b) return a ?? b;
  const latest = b.lastCheck > a.lastCheck ? b : a;
  return {
    state: HEALTH_RANK[b.state] > HEALTH_RANK[a.state] ? b.state : a.state,
    lastCheck: latest.lastCheck,
    lastError: latest.lastError || a.lastError || b.lastError,
    consecutiveFailures: Math.max(a.consecutiveFailures, b.consecutiveFailures),
  };
}

function addInto(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

const emptyHistogram = (n: number): HistogramSample => ({ query: new Array<number>(n).fill(0), xact: new Array<number>(n).fill(0), wait: new Array<number>(n).fill(0) });

function addHistogram(into: HistogramSample, from: HistogramSample): void {
  for (const k of HISTOGRAM_SERIES) for (let i = 0; i < into[k].length; i++) into[k][i]! += from[k][i] ?? 0;
}

/** The workers' snapshots as one: counts and totals summed, the longest wait, the worst health. */
export function mergeSnapshots(parts: Snapshot[], missing: number[]): Snapshot {
  const out: Snapshot = {
    time: Math.max(...parts.map((p) => p.time)),
    version: parts[0]!.version,
    workers: parts.flatMap((p) => p.workers).sort((a, b) => a - b),
    missing: [...missing].sort((a, b) => a - b),
    clients: dict(),
    servers: dict(),
    pools: [],
    stats: dict(),
    buckets: parts.find((p) => p.buckets.length > 0)?.buckets ?? [],
    histograms: dict(),
    errors: dict(),
    faults: dict(),
    maxClientConn: 0,
  };
  // workers run the same stats plugin, so the same bounds; should they differ, no histogram is shown rather than a wrong one
  const sameBuckets = parts.every((p) => p.buckets.length === 0 || (p.buckets.length === out.buckets.length && p.buckets.every((b, i) => b === out.buckets[i])));
  if (!sameBuckets) out.buckets = [];
  const pools = new Map<string, PoolSample>();
  for (const p of parts) {
    addInto(out.clients, p.clients);
    addInto(out.servers, p.servers);
    addInto(out.faults, p.faults);
    out.maxClientConn += p.maxClientConn;
    for (const [db, c] of Object.entries(p.stats)) addInto((out.stats[db] ??= dict()), c);
    for (const [db, e] of Object.entries(p.errors)) addInto((out.errors[db] ??= dict()), e);
    if (out.buckets.length > 0) for (const [db, h] of Object.entries(p.histograms)) addHistogram((out.histograms[db] ??= emptyHistogram(out.buckets.length + 1)), h);
    for (const pool of p.pools) {
      const key = `${pool.database}\u0000${pool.user}`;
      const have = pools.get(key);
      if (!have) {
        pools.set(key, { ...pool });
        continue;
      }
      have.clActive += pool.clActive;
      have.clWaiting += pool.clWaiting;
      have.svActive += pool.svActive;
      have.svIdle += pool.svIdle;
      have.svUsed += pool.svUsed;
      have.svTested += pool.svTested;
      have.svLogin += pool.svLogin;
      have.svBeingCanceled += pool.svBeingCanceled;
      have.maxWaitMs = Math.max(have.maxWaitMs, pool.maxWaitMs);
      have.health = mergeHealth(have.health, pool.health);
    }
  }
  out.pools = [...pools.values()].sort((a, b) => (a.database < b.database ? -1 : a.database > b.database ? 1 : a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  return out;
}

// ---- a sibling's snapshot is checked field by field: it is trusted no more than the bytes it sends ----

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;

function numbers(x: unknown): Record<string, number> | null {
  if (!isRecord(x)) return null;
  const out = dict<number>();
  for (const [k, v] of Object.entries(x)) {
    if (!isCount(v)) return null;
    out[k] = v;
  }
  return out;
}

function nested(x: unknown): Record<string, Record<string, number>> | null {
  if (!isRecord(x)) return null;
  const out = dict<Record<string, number>>();
  for (const [k, v] of Object.entries(x)) {
    const n = numbers(v);
    if (!n) return null;
    out[k] = n;
  }
  return out;
}

/** A sibling's histograms: every series as long as its bounds say, counts only. */
function histogramsOf(x: unknown, slots: number): Record<string, HistogramSample> | null {
  if (!isRecord(x)) return null;
  const out = dict<HistogramSample>();
  for (const [db, h] of Object.entries(x)) {
    if (!isRecord(h)) return null;
    const series = HISTOGRAM_SERIES.map((k) => h[k]);
    if (!series.every((v) => Array.isArray(v) && v.length === slots && v.every(isCount))) return null;
    const [query, xact, wait] = series as number[][];
    out[db] = { query: query!, xact: xact!, wait: wait! };
  }
  return out;
}

const POOL_COUNTS = ["clActive", "clWaiting", "svActive", "svIdle", "svUsed", "svTested", "svLogin", "svBeingCanceled", "maxWaitMs"] as const;

function poolSample(x: unknown): PoolSample | null {
  if (!isRecord(x) || typeof x.database !== "string" || typeof x.user !== "string" || typeof x.mode !== "string") return null;
  const p = emptyPool(x.database, x.user, x.mode, null);
  for (const k of POOL_COUNTS) {
    if (!isCount(x[k])) return null;
    p[k] = x[k] as number;
  }
  const h = x.health;
  if (h !== null) {
    if (!isRecord(h) || !(h.state === "healthy" || h.state === "unhealthy" || h.state === "unknown")) return null;
    if (!isCount(h.lastCheck) || typeof h.lastError !== "string" || !isCount(h.consecutiveFailures)) return null;
    p.health = { state: h.state, lastCheck: h.lastCheck, lastError: h.lastError, consecutiveFailures: h.consecutiveFailures };
  }
  return p;
}

/** A sibling's snapshot rebuilt from its JSON, or null when it is not one. */
export function checkSnapshot(x: unknown): Snapshot | null {
  if (!isRecord(x) || !isCount(x.time) || typeof x.version !== "string" || !isCount(x.maxClientConn)) return null;
  if (!Array.isArray(x.workers) || !x.workers.every((w) => Number.isSafeInteger(w) && w >= 0) || !Array.isArray(x.pools)) return null;
  const clients = numbers(x.clients);
  const servers = numbers(x.servers);
  const faults = numbers(x.faults);
  const stats = nested(x.stats);
  const errors = nested(x.errors);
  const pools = x.pools.map(poolSample);
  if (!Array.isArray(x.buckets) || !x.buckets.every((b) => isCount(b) && b > 0)) return null;
  const buckets = x.buckets as number[];
  const histograms = histogramsOf(x.histograms, buckets.length + 1);
  if (!clients || !servers || !faults || !stats || !histograms || !errors || pools.some((p) => p === null)) return null;
  return {
    time: x.time,
    version: x.version,
    workers: x.workers as number[],
    missing: [],
    clients,
    servers,
    pools: pools as PoolSample[],
    stats,
    buckets,
    histograms,
    errors,
    faults,
    maxClientConn: x.maxClientConn,
  };
}
