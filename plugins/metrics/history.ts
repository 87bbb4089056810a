// The dashboard's recent past: a sample of the summed figures every few seconds, the last ten minutes kept (worker 0).
import type { Snapshot } from "./snapshot.ts";

/** One sample every this many ms, this many kept: ten minutes. */
export const HISTORY_STEP_MS = 2_000;
export const HISTORY_POINTS = 300;

/** What the dashboard's charts read, in the snapshot's shape (totals over every database under one key). */
export interface HistoryPoint {
  time: number;
  stats: { all: Record<string, number> };
  errors: { all: Record<string, number> };
  clients: Record<string, number>;
  servers: Record<string, number>;
}

function compact(s: Snapshot): HistoryPoint {
  const totals: Record<string, number> = {};
  for (const db of Object.values(s.stats)) for (const [k, v] of Object.entries(db)) totals[k] = (totals[k] ?? 0) + v;
  let errors = 0;
  for (const db of Object.values(s.errors)) for (const n of Object.values(db)) errors += n;
  return { time: s.time, stats: { all: totals }, errors: { all: { any: errors } }, clients: { ...s.clients }, servers: { ...s.servers } };
}

/** A ring of samples, oldest first when read. */
export class History {
  private readonly points: HistoryPoint[] = [];
  private last = 0;

  /** Whether a sample is due at `now` (ms since the epoch). */
  due(now: number): boolean {
    return now - this.last >= HISTORY_STEP_MS;
  }

  /** Marks a sample as started, so ticks during its gathering do not start another. */
  started(now: number): void {
    this.last = now;
  }

  record(s: Snapshot): void {
    const p = compact(s);
    if (this.points.length > 0 && p.time <= this.points[this.points.length - 1]!.time) return;
    this.points.push(p);
    if (this.points.length > HISTORY_POINTS) this.points.shift();
  }

  read(): HistoryPoint[] {
    return this.points;
  }
}
