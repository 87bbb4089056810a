// How the report writes figures: integers, milliseconds, ratios, CPU per transaction, and the figures a cell counts with.
import { formatCpuUs } from "./cpu.ts";
import type { CellSummary } from "./summary.ts";

export const int = (n: number) => Math.round(n).toLocaleString("en-US");
export const ms = (n: number | null) => (n === null ? "?" : n < 10 ? n.toFixed(2) : n.toFixed(1));
export const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

export function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return "—";
  return `${(a / b).toFixed(2)}×`;
}

/** "38 µs/txn", rounded to what the clock ticks support; null when not measured. */
export function cpuText(s: CellSummary): string | null {
  return s.cpuUsPerTxn === null ? null : `${formatCpuUs(s.cpuUsPerTxn, s.cpuResolutionUs ?? 1)} µs/txn`;
}

/** A cell's tps when at least one of its runs counts. */
export function okTps(s: CellSummary | undefined): number | null {
  return s && (s.status === "ok" || s.status === "partial") ? s.tps : null;
}

export function okCpu(s: CellSummary | undefined): number | null {
  return s && (s.status === "ok" || s.status === "partial") ? s.cpuUsPerTxn : null;
}
