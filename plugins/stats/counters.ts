// Traffic counters per pool (database, user), per-client timing marks, and the stats_period averages.
import type { Client, Server } from "../../plugin-sdk/index.ts";
import { COUNTER_FIELDS, type CounterField, type Counters } from "./api.ts";
import { BUCKET_SLOTS, KINDS, type PoolBuckets } from "./histogram.ts";

/** Totals of one pool since start; times are microseconds. Plain number fields: counting never allocates. */
export class PoolCounters implements PoolBuckets {
  serverAssignments = 0;
  xacts = 0;
  queries = 0;
  /** Bytes received from clients (forwarded to servers). */
  received = 0;
  /** Bytes sent to clients. */
  sent = 0;
  xactTime = 0;
  queryTime = 0;
  waitTime = 0;
  clientParses = 0;
  serverParses = 0;
  binds = 0;
  /** Logins of clients of this pool (counted at authentication, once per client). */
  clientLogins = 0;
  /**
   * The durations by bucket (histogram.ts: DURATION_BUCKETS, +Inf last), per slot and kind (slot × KINDS + QUERY,
   * XACT or WAIT): each query, transaction and server assignment adds one where its time adds to queryTime,
   * xactTime, waitTime (an untimed one counts as 0).
   */
  readonly buckets = new Float64Array(BUCKET_SLOTS * KINDS);
  /** These count queries answered without a server (the admin console's): no pool stands for them, never pruned. */
  serverless = false;

  constructor(
    readonly database: string,
    readonly user: string,
  ) {}
}

/** Values indexed like COUNTER_FIELDS. */
export type CounterValues = number[];

/**
 * What the stats taps keep per client: the marks (clockNs(), monotonic ns, 0 = unset) of the query and
 * transaction in progress and of the current wait, and the byte counters sampled when a server was linked.
 */
export class ClientCounters {
  queryStart = 0;
  xactStart = 0;
  waitStart = 0;
  linked: Server | null = null;
  serverSent0 = 0;
  clientSent0 = 0;

  constructor(
    readonly client: Client,
    readonly pool: PoolCounters,
  ) {}
}

/** Per-database averages of the last complete stats_period, in SHOW STATS_AVERAGES units. */
export type Averages = CounterValues;

function values(p: PoolCounters): CounterValues {
  return COUNTER_FIELDS.map((f) => p[f]);
}

/** Every pool's counters, the per-database aggregation SHOW STATS reads, and the periodic averages. */
export class StatsRegistry {
  readonly pools = new Map<string, PoolCounters>();
  /** Averages of the last period, by database. */
  averages = new Map<string, Averages>();
  private previous = new Map<PoolCounters, CounterValues>();
  private periodStart = performance.now();

  forPool(database: string, user: string): PoolCounters {
    const key = `${database}\u0000${user}`;
    let p = this.pools.get(key);
    if (!p) {
      p = new PoolCounters(database, user);
      this.pools.set(key, p);
    }
    return p;
  }

  /** Forgets the counters of pools `keep` says are gone (an auto-database pool dropped after autodb_idle_timeout). */
  prune(keep: (database: string, user: string) => boolean): void {
    for (const [key, p] of this.pools) {
      if (p.serverless || keep(p.database, p.user)) continue;
      this.pools.delete(key);
      this.previous.delete(p);
    }
  }

  /** Totals summed per database. */
  totalsByDatabase(): Map<string, CounterValues> {
    const out = new Map<string, CounterValues>();
    for (const p of this.pools.values()) {
      const sum = out.get(p.database) ?? new Array<number>(COUNTER_FIELDS.length).fill(0);
      COUNTER_FIELDS.forEach((f, i) => (sum[i]! += p[f]));
      out.set(p.database, sum);
    }
    return out;
  }

  /** Seconds since the current period began. */
  periodAge(now = performance.now()): number {
    return (now - this.periodStart) / 1000;
  }

  /**
   * Closes the period: per database, counts and bytes become per-second rates; xact/query time become the
   * average duration per transaction/query, wait time the average per server assignment (as PgBouncer).
   */
  roll(now = performance.now()): void {
    const seconds = Math.max(this.periodAge(now), 0.001);
    const deltas = new Map<string, CounterValues>();
    for (const p of this.pools.values()) {
      const cur = values(p);
      const prev = this.previous.get(p);
      const d = deltas.get(p.database) ?? new Array<number>(COUNTER_FIELDS.length).fill(0);
      for (let i = 0; i < cur.length; i++) d[i]! += cur[i]! - (prev?.[i] ?? 0);
      deltas.set(p.database, d);
      this.previous.set(p, cur);
    }
    const idx = (f: CounterField) => COUNTER_FIELDS.indexOf(f);
    const averages = new Map<string, Averages>();
    for (const [db, d] of deltas) {
      const per = (f: CounterField) => Math.round(d[idx(f)]! / seconds);
      const over = (f: CounterField, by: CounterField) => (d[idx(by)]! > 0 ? Math.round(d[idx(f)]! / d[idx(by)]!) : 0);
      averages.set(db, [
        per("serverAssignments"),
        per("xacts"),
        per("queries"),
        per("received"),
        per("sent"),
        over("xactTime", "xacts"),
        over("queryTime", "queries"),
        over("waitTime", "serverAssignments"),
        per("clientParses"),
        per("serverParses"),
        per("binds"),
        per("clientLogins"),
      ]);
    }
    this.averages = averages;
    this.periodStart = now;
  }
}

/** The values as a record by counter name (what StatsApi hands out). */
export function asCounters(v: CounterValues): Counters {
  const out = {} as Record<CounterField, number>;
  COUNTER_FIELDS.forEach((f, i) => (out[f] = v[i]!));
  return out;
}

/**
 * Adds the bytes moved since the link was sampled and samples again (or forgets the link when `keep` is false).
 * A client's count restarts only while it has no server (it gives back its output buffer then), so while linked
 * the difference is what was sent; a count found lower than its sample is skipped rather than subtracted.
 */
export function settleBytes(st: ClientCounters, keep: boolean): void {
  const server = st.linked;
  if (server === null) return;
  const serverSent = server.bytesSent;
  const clientSent = st.client.bytesSent;
  if (serverSent >= st.serverSent0) st.pool.received += serverSent - st.serverSent0;
  if (clientSent >= st.clientSent0) st.pool.sent += clientSent - st.clientSent0;
  if (keep) {
    st.serverSent0 = serverSent;
    st.clientSent0 = clientSent;
  } else st.linked = null;
}
