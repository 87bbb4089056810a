// The duration histograms' buckets: which bucket a duration falls in (one increment per event) and the cumulative view.
import { DURATION_BUCKETS, type DurationHistograms } from "../../plugin-sdk/index.ts";

/** The bounds in µs (the unit the counters time in), inclusive; the slot after the last is +Inf. */
const BOUNDS_US = Float64Array.from(DURATION_BUCKETS, (s) => Math.round(s * 1e6));

/** Slots per histogram: one per bound and +Inf. */
export const BUCKET_SLOTS = BOUNDS_US.length + 1;

/** The longest bound: a longer duration goes to +Inf. */
const LONGEST_US = BOUNDS_US[BOUNDS_US.length - 1]!;

/**
 * Per bit length k of a duration's whole µs (it lies in [2^(k-1), 2^k)), the first slot whose bound is not below
 * 2^(k-1): the bounds before it are all shorter. Log-spaced bounds (each at least twice the one before) leave at
 * most two steps from there.
 */
const FIRST_SLOT_BY_BITS = Uint8Array.from({ length: 33 }, (_, k) => (k === 0 ? 0 : BOUNDS_US.filter((b) => b < 2 ** (k - 1)).length));

/**
 * The slot of a duration in µs: the first bound it does not exceed, else +Inf. Most are in the first (under 100 µs),
 * at once; any other starts where its bit length (Math.clz32) puts it: a step or two, no allocation.
 */
export function bucketOf(us: number): number {
  if (!(us > BOUNDS_US[0]!)) return 0;
  if (us > LONGEST_US) return BOUNDS_US.length;
  let i = FIRST_SLOT_BY_BITS[32 - Math.clz32(us)]!;
  while (us > BOUNDS_US[i]!) i++;
  return i;
}

/** Where a histogram's slot lies in PoolBuckets.buckets: slot × KINDS + its kind. */
export const QUERY = 0;
export const XACT = 1;
export const WAIT = 2;
export const KINDS = 3;

/**
 * A pool's three histograms, per slot (not cumulative), so an event is one increment: in one array, interleaved
 * by slot (the query, transaction and wait counts of a slot side by side), so a transaction's ReadyForQuery and a
 * link touch one object and, in their usual slots, one cache line of it, not three arrays' objects and lines.
 */
export interface PoolBuckets {
  readonly buckets: Float64Array;
}

/** Pools' buckets summed per database, made cumulative (Prometheus' `le`): what StatsApi.histograms hands out. */
export function histogramsByDatabase(pools: Iterable<PoolBuckets & { readonly database: string }>): Map<string, DurationHistograms> {
  const sums = new Map<string, { query: number[]; xact: number[]; wait: number[] }>();
  const add = (into: number[], from: Float64Array, kind: number) => {
    for (let i = 0; i < BUCKET_SLOTS; i++) into[i]! += from[i * KINDS + kind]!;
  };
  for (const p of pools) {
    let s = sums.get(p.database);
    if (!s) sums.set(p.database, (s = { query: zeros(), xact: zeros(), wait: zeros() }));
    add(s.query, p.buckets, QUERY);
    add(s.xact, p.buckets, XACT);
    add(s.wait, p.buckets, WAIT);
  }
  const out = new Map<string, DurationHistograms>();
  for (const [db, s] of sums) out.set(db, { bounds: DURATION_BUCKETS, query: cumulate(s.query), xact: cumulate(s.xact), wait: cumulate(s.wait) });
  return out;
}

const zeros = () => new Array<number>(BUCKET_SLOTS).fill(0);

function cumulate(v: number[]): number[] {
  for (let i = 1; i < v.length; i++) v[i]! += v[i - 1]!;
  return v;
}
