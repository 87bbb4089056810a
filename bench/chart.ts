// Draws the results' tps per case as a hand-written SVG of grouped horizontal bars (direct, PgBouncer, pgbun, baseline).
import { COLUMNS, type Column } from "./cases.ts";
import type { CaseOutcome } from "./report.ts";
import type { CellSummary } from "./summary.ts";

const COLORS: Record<Column, string> = { direct: "#8c8c8c", pgbouncer: "#4a78b5", pgbun: "#e0803a" };
const NAMES: Record<Column, string> = { direct: "direct PostgreSQL", pgbouncer: "PgBouncer", pgbun: "pgbun" };
/** The baseline run beside pgbun in the plugin, workers and reference rows (plain or 1-worker pgbun, the pass-through). */
const BASELINE_COLOR = "#6aa84f";
const BAR = 11;
const GAP = 12;
const LABEL_W = 190;
const PLOT_W = 560;
const TOP = 58;

const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A round grid step (1, 2 or 5 × 10^k) giving at most 6 grid intervals up to v. */
function niceStep(v: number): number {
  if (v <= 0) return 1;
  const base = 10 ** Math.floor(Math.log10(v / 6));
  for (const m of [1, 2, 5, 10]) if (v / (m * base) <= 6) return m * base;
  return 10 * base;
}

interface Bar {
  name: string;
  color: string;
  summary: CellSummary;
  /** Write the name before the value (the baseline bar, whose color alone does not say what it is). */
  named: boolean;
}

/** A case's bars: its columns, except those repeating another row, then the baseline run beside it. */
function barsOf(o: CaseOutcome): Bar[] {
  const bars: Bar[] = COLUMNS.filter((c) => o.case.cells[c].kind !== "same-as").map((c) => ({ name: NAMES[c], color: COLORS[c], summary: o.cells[c], named: false }));
  if (o.baseline) bars.push({ name: o.case.baselineName ?? "baseline", color: BASELINE_COLOR, summary: o.baseline, named: true });
  return bars;
}

/** One group per case; a failed or n/a cell draws no bar but a short text, so failures stay visible. */
export function tpsChart(outcomes: CaseOutcome[], title: string): string {
  const tpsOf = (s: CellSummary) => (s.status === "ok" || s.status === "partial" ? s.tps : null);
  const groups = outcomes.map((o) => ({ o, bars: barsOf(o) }));
  const top = Math.max(0, ...groups.flatMap((g) => g.bars.map((b) => tpsOf(b.summary) ?? 0)));
  const step = niceStep(top);
  const max = Math.max(step, Math.ceil(top / step) * step);
  const height = TOP + groups.reduce((h, g) => h + g.bars.length * BAR + GAP, 0) + 40;
  const width = LABEL_W + PLOT_W + 90;
  const x = (v: number) => LABEL_W + (v / max) * PLOT_W;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${LABEL_W}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`);
  const legend: Array<[string, string]> = [...COLUMNS.map((c): [string, string] => [COLORS[c], NAMES[c]]), [BASELINE_COLOR, "run beside pgbun (named)"]];
  legend.forEach(([color, name], i) => {
    const lx = LABEL_W + i * 140;
    out.push(`<rect x="${lx}" y="30" width="12" height="12" fill="${color}"/><text x="${lx + 17}" y="40">${esc(name)}</text>`);
  });
  for (let v = 0; v <= max; v += step) {
    const gx = x(v).toFixed(1);
    out.push(`<line x1="${gx}" y1="${TOP - 4}" x2="${gx}" y2="${height - 34}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${gx}" y="${height - 20}" text-anchor="middle" fill="#555">${Math.round(v).toLocaleString("en-US")}</text>`);
  }
  out.push(`<text x="${LABEL_W + PLOT_W / 2}" y="${height - 5}" text-anchor="middle" fill="#555">transactions per second (median of rounds; bars repeating another case are left out)</text>`);
  let gy = TOP;
  for (const { o, bars } of groups) {
    out.push(`<text x="${LABEL_W - 8}" y="${gy + (bars.length * BAR) / 2 + 4}" text-anchor="end">${esc(o.case.short)}</text>`);
    bars.forEach((b, bi) => {
      const y = gy + bi * BAR;
      const v = tpsOf(b.summary);
      const s = b.summary;
      if (v === null) {
        const text = s.status === "failed" ? "FAILED" : "n/a";
        out.push(`<text x="${LABEL_W + 4}" y="${y + BAR - 2}" fill="${s.status === "failed" ? "#c0392b" : "#999"}" font-size="9">${esc(b.name)}: ${text}</text>`);
        return;
      }
      const w = Math.max(1, x(v) - LABEL_W);
      const value = `${b.named ? `${esc(b.name)}: ` : ""}${Math.round(v).toLocaleString("en-US")}${s.status === "partial" ? " (some runs failed)" : ""}`;
      out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR - 1}" fill="${b.color}"><title>${esc(b.name)}: ${Math.round(v)} tps</title></rect>`);
      out.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + BAR - 2}" font-size="9" fill="#333">${value}</text>`);
    });
    gy += bars.length * BAR + GAP;
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
