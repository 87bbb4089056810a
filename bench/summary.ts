// Reduces the repeated runs of one table cell to medians, keeping failures visible.
import { cellLoad, type CellLoad } from "./load.ts";
import type { PgbenchResult } from "./pgbench.ts";

export interface CellSummary {
  status: "ok" | "partial" | "failed" | "na";
  /** The n/a reason, or the errors of failed runs. */
  notes: string[];
  tps: number | null;
  latencyAvgMs: number | null;
  p99Ms: number | null;
  transactions: number | null;
  connectMs: number | null;
  clientsServed: number | null;
  /** Median µs of pooler CPU per transaction over the runs that measured it; null for direct or unmeasured. */
  cpuUsPerTxn: number | null;
  /** The coarsest tick resolution among those runs, in µs per transaction (how many digits cpuUsPerTxn supports). */
  cpuResolutionUs: number | null;
  runs: number;
  failedRuns: number;
  /** tps of every successful run, in round order: the spread. */
  tpsRuns: number[];
  /** The highest load seen before any of its runs, failed ones included. */
  load: CellLoad;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const nums = (values: Array<number | null>) => values.filter((v): v is number => v !== null);

export function notApplicable(reason: string): CellSummary {
  return {
    status: "na",
    notes: [reason],
    tps: null,
    latencyAvgMs: null,
    p99Ms: null,
    transactions: null,
    connectMs: null,
    clientsServed: null,
    cpuUsPerTxn: null,
    cpuResolutionUs: null,
    runs: 0,
    failedRuns: 0,
    tpsRuns: [],
    load: { load1Max: null, othersMax: null },
  };
}

/** Medians over the successful runs; any failed run makes the cell "partial", all failed makes it "failed". */
export function summarize(runs: PgbenchResult[]): CellSummary {
  const good = runs.filter((r) => r.ok);
  const bad = runs.filter((r) => !r.ok);
  const cpu = good.map((r) => r.poolerCpu).filter((c) => c !== null && c !== undefined);
  const status = runs.length === 0 ? "na" : good.length === 0 ? "failed" : bad.length > 0 ? "partial" : "ok";
  return {
    status,
    notes: [...new Set(bad.map((r) => r.error ?? "failed"))],
    tps: median(nums(good.map((r) => r.tps))),
    latencyAvgMs: median(nums(good.map((r) => r.latencyAvgMs))),
    p99Ms: median(nums(good.map((r) => r.p99Ms))),
    transactions: median(good.map((r) => r.transactions)),
    connectMs: median(nums(good.map((r) => r.connectMs))),
    clientsServed: median(nums(good.map((r) => r.clientsServed))),
    cpuUsPerTxn: median(cpu.map((c) => c.usPerTxn)),
    cpuResolutionUs: cpu.length === 0 ? null : Math.max(...cpu.map((c) => c.resolutionUs)),
    runs: runs.length,
    failedRuns: bad.length,
    tpsRuns: nums(good.map((r) => r.tps)),
    load: cellLoad(runs.map((r) => r.load)),
  };
}
