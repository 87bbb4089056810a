// bench/workers-scaling.ts's pure half: per-core busy time from /proc/stat, cell medians, the 4- and 8-core prediction, latest.md.
import { formatCpuUs } from "./cpu.ts";
import { int } from "./format.ts";
import { LOAD_WARNING, OTHERS_WARNING } from "./load.ts";
import { median } from "./summary.ts";

/** Where the pooler runs: "split" on core 1 alone (PostgreSQL and pgbench on core 0), "both" on cores 0 and 1. */
export type Layout = "split" | "both";

export interface PoolerConfig {
  key: string;
  layout: Layout;
  pooler: "pgbouncer" | "pgbun";
  workers: number;
  /** The bench/targets.ts target it starts. */
  target: string;
}

/** One measured pgbench run. */
export interface CellRun {
  config: string;
  clients: number;
  protocol: string;
  round: number;
  ok: boolean;
  error?: string;
  tps: number | null;
  transactions: number;
  /** From right before pgbench started to right after it ended (its connecting included). */
  wallS: number;
  /** utime + stime of the pooler's process tree over the run. */
  poolerSeconds: number | null;
  poolerUsPerTxn: number | null;
  poolerResolutionUs: number | null;
  /** The same per process (a pgbun supervisor first, then its workers). */
  processSeconds: number[];
  /** utime + stime of PostgreSQL's postmaster tree (its backends) per transaction. */
  postgresUsPerTxn: number | null;
  /** Share of each core (0, 1) busy over the run, whoever used it (/proc/stat: all but idle and iowait). */
  coreBusy: Array<number | null>;
  /** The 1-minute load average right before the run, and other work's runnable threads then (bench/load.ts). */
  load1: number;
  othersRunnable: number;
  /** Someone held /tmp/ir.lock (a callgrind run: a core's worth of other work) when the run started. */
  irLock: boolean;
  /** Seconds the run waited for other work to stop (--wait-quiet), and whether it did. */
  waitedS: number;
  quiet: boolean;
}

export interface CpuTimes {
  busy: number;
  total: number;
}

/** The per-CPU lines of /proc/stat ("cpuN user nice system idle iowait irq softirq steal ..."), in ticks. */
export function parseProcStat(text: string): Map<number, CpuTimes> {
  const out = new Map<number, CpuTimes>();
  for (const line of text.split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // guest and guest_nice (fields 9, 10) are already counted in user and nice
    const f = m[2]!.trim().split(/\s+/).slice(0, 8).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    out.set(Number(m[1]), { busy: total - idle, total });
  }
  return out;
}

/** Share of each of `cpus` busy between two /proc/stat readings; null for a CPU missing or idle-less (no ticks). */
export function busyShares(before: Map<number, CpuTimes>, after: Map<number, CpuTimes>, cpus: number[]): Array<number | null> {
  return cpus.map((cpu) => {
    const a = before.get(cpu);
    const b = after.get(cpu);
    if (!a || !b || b.total <= a.total) return null;
    return Math.min(1, Math.max(0, (b.busy - a.busy) / (b.total - a.total)));
  });
}

/** A kernel CPU list ("0-2,5") as sorted numbers. */
export function parseCpuList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** One pooler configuration in one case: medians over the rounds whose runs counted. */
export interface CellSummary {
  config: string;
  protocol: string;
  clients: number;
  okRuns: number;
  runs: number;
  tps: number | null;
  poolerUsPerTxn: number | null;
  poolerResolutionUs: number | null;
  /** Pooler CPU seconds per second of the run: 1.0 is one core's worth, whatever core it ran on. */
  poolerCores: number | null;
  /** The same per process, largest first (a pgbun supervisor is the near-zero one). */
  processCores: number[];
  coreBusy: Array<number | null>;
  postgresUsPerTxn: number | null;
  /** Core 0's busy time per transaction (PostgreSQL, pgbench, this script, anything else there): 10⁶ ÷ it is core 0's ceiling. */
  core0UsPerTxn: number | null;
  load1Max: number | null;
  othersMax: number | null;
  irLock: boolean;
  /** Runs that started with other work still running after the whole --wait-quiet. */
  notQuiet: number;
}

const med = (xs: Array<number | null | undefined>) => median(xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x)));

export function summarizeCells(configs: PoolerConfig[], runs: CellRun[]): CellSummary[] {
  const cases = [...new Map(runs.map((r) => [`${r.protocol}:${r.clients}`, { protocol: r.protocol, clients: r.clients }])).values()];
  const out: CellSummary[] = [];
  for (const c of cases) {
    for (const cfg of configs) {
      const all = runs.filter((r) => r.config === cfg.key && r.protocol === c.protocol && r.clients === c.clients);
      if (all.length === 0) continue;
      const ok = all.filter((r) => r.ok);
      const width = Math.max(0, ...ok.map((r) => r.processSeconds.length));
      const perProcess = Array.from({ length: width }, (_, i) => med(ok.map((r) => (r.processSeconds[i] ?? 0) / r.wallS)) ?? 0).sort((a, b) => b - a);
      out.push({
        config: cfg.key,
        protocol: c.protocol,
        clients: c.clients,
        okRuns: ok.length,
        runs: all.length,
        tps: med(ok.map((r) => r.tps)),
        poolerUsPerTxn: med(ok.map((r) => r.poolerUsPerTxn)),
        poolerResolutionUs: med(ok.map((r) => r.poolerResolutionUs)),
        poolerCores: med(ok.map((r) => (r.poolerSeconds === null ? null : r.poolerSeconds / r.wallS))),
        processCores: perProcess,
        coreBusy: [0, 1].map((i) => med(ok.map((r) => r.coreBusy[i]))),
        postgresUsPerTxn: med(ok.map((r) => r.postgresUsPerTxn)),
        core0UsPerTxn: med(ok.map((r) => (r.coreBusy[0] === null || r.coreBusy[0] === undefined || r.transactions <= 0 ? null : (r.coreBusy[0] * r.wallS * 1e6) / r.transactions))),
        load1Max: all.length > 0 ? Math.max(...all.map((r) => r.load1)) : null,
        othersMax: all.length > 0 ? Math.max(...all.map((r) => r.othersRunnable)) : null,
        irLock: all.some((r) => r.irLock),
        notQuiet: all.filter((r) => !r.quiet).length,
      });
    }
  }
  return out;
}

/** Per-transaction CPU figures one prediction rests on, in µs. */
export interface CostModel {
  pgbouncerUs: number;
  /** A pgbun worker's CPU per transaction it relays. */
  pgbunWorkerUs: number;
  /** PostgreSQL's (its backends') CPU per transaction. */
  postgresUs: number;
}

export interface Prediction {
  cores: number;
  pgbouncer: { tps: number; bound: "pooler" | "postgres" };
  pgbun: { tps: number; workers: number; bound: "pooler" | "postgres" };
}

/**
 * What `cores` cores serve when the pooler gets some of them and PostgreSQL the rest (clients elsewhere), each side at
 * its measured CPU per transaction: PgBouncer uses one core (one process, one thread), pgbun k workers on k cores,
 * the k that serves most (the smallest such k). Linear in cores on both sides: see the report's assumptions.
 */
export function predict(m: CostModel, cores: number): Prediction {
  const pgCap = (k: number) => ((cores - k) * 1e6) / m.postgresUs;
  const bouncerCap = 1e6 / m.pgbouncerUs;
  const pgbouncer = { tps: Math.min(pgCap(1), bouncerCap), bound: bouncerCap < pgCap(1) ? ("pooler" as const) : ("postgres" as const) };
  let best = { tps: 0, workers: 1, bound: "pooler" as "pooler" | "postgres" };
  for (let k = 1; k < cores; k++) {
    const poolerCap = (k * 1e6) / m.pgbunWorkerUs;
    const tps = Math.min(pgCap(k), poolerCap);
    if (tps > best.tps * 1.0001) best = { tps, workers: k, bound: poolerCap < pgCap(k) ? "pooler" : "postgres" };
  }
  return { cores, pgbouncer, pgbun: best };
}

export interface ScalingReport {
  date: string;
  command: string;
  durationS: number;
  rounds: number;
  poolSize: number;
  scale: number;
  nproc: number;
  cpuModel: string;
  postgres: string;
  pgbouncer: string;
  bun: string;
  loadAtStart: { load1: number; othersRunnable: number };
  configs: PoolerConfig[];
  cells: CellSummary[];
  runs: CellRun[];
  problems: string[];
  /** When this report joins several runs (mergeReports): each one's start and its load before its first cell. */
  merged?: Array<{ date: string; load1: number; othersRunnable: number }>;
}

/**
 * Several runs of the same settings as one report: their runs together (rounds numbered on), medians over all, the
 * worst load at start. A loaded machine moves every figure; more rounds steady the medians, they do not clean them.
 */
export function mergeReports(reports: ScalingReport[]): ScalingReport {
  if (reports.length === 0) throw new Error("no reports to merge");
  if (reports.length === 1) return { ...reports[0]!, cells: summarizeCells(reports[0]!.configs, reports[0]!.runs) };
  const first = reports[0]!;
  const runs: CellRun[] = [];
  let offset = 0;
  for (const r of reports) {
    if (r.durationS !== first.durationS || r.poolSize !== first.poolSize) throw new Error(`${r.date}: other settings than ${first.date}'s`);
    runs.push(...r.runs.map((x) => ({ ...x, round: x.round + offset })));
    offset += r.rounds;
  }
  const worst = reports.reduce((a, b) => (b.loadAtStart.load1 > a.loadAtStart.load1 ? b : a));
  return {
    ...first,
    command: reports.map((r) => r.command).join(" + "),
    rounds: offset,
    loadAtStart: worst.loadAtStart,
    cells: summarizeCells(first.configs, runs),
    runs,
    problems: reports.flatMap((r) => r.problems),
    merged: reports.flatMap((r) => r.merged ?? [{ date: r.date, ...r.loadAtStart }]),
  };
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "?" : `${Math.round(x * 100)} %`);
/** µs per transaction to 0.1 where the clock ticks support it (a long run: 100 Hz over 200,000 txns is 0.05 µs), else coarser. */
const us = (c: CellSummary) =>
  c.poolerUsPerTxn === null ? "?" : (c.poolerResolutionUs ?? 1) <= 0.1 ? c.poolerUsPerTxn.toFixed(1) : formatCpuUs(c.poolerUsPerTxn, c.poolerResolutionUs ?? 1);

function configLabel(cfg: PoolerConfig): string {
  const who = cfg.pooler === "pgbouncer" ? "PgBouncer (1 process)" : `pgbun, workers = ${cfg.workers}`;
  return `${who}, pooler on core${cfg.layout === "split" ? " 1" : "s 0,1"}`;
}

/** The model for one case: PgBouncer's and pgbun's split-layout CPU per transaction, PostgreSQL's median over them. */
export function modelFor(cells: CellSummary[], protocol: string, clients: number): CostModel | null {
  const get = (key: string) => cells.find((c) => c.config === key && c.protocol === protocol && c.clients === clients);
  const b = get("pgbouncer-split");
  const w1 = get("pgbun-w1-split");
  const w2 = get("pgbun-w2-split");
  const pg = med([b, w1, w2].map((c) => c?.postgresUsPerTxn));
  if (!b?.poolerUsPerTxn || !w1?.poolerUsPerTxn || !w2?.poolerUsPerTxn || !pg) return null;
  // the larger of one worker alone and two sharing the core: the conservative per-worker cost
  return { pgbouncerUs: b.poolerUsPerTxn, pgbunWorkerUs: Math.max(w1.poolerUsPerTxn, w2.poolerUsPerTxn), postgresUs: pg };
}

function cellRow(cfg: PoolerConfig, c: CellSummary): string {
  const perCore = cfg.layout === "split" && c.poolerUsPerTxn ? int(1e6 / c.poolerUsPerTxn) : "—";
  const procs = cfg.workers > 1 ? c.processCores.map((x) => x.toFixed(2)).join(" + ") : (c.processCores[0]?.toFixed(2) ?? "?");
  const load = `${c.load1Max?.toFixed(2) ?? "?"}${c.load1Max !== null && c.load1Max > LOAD_WARNING ? " ⚠" : ""}${c.othersMax !== null && c.othersMax > OTHERS_WARNING ? ` (others ${c.othersMax.toFixed(1)})` : ""}${c.irLock ? " ir.lock" : ""}${c.notQuiet > 0 ? ` NOT QUIET ×${c.notQuiet}` : ""}`;
  const runs = c.okRuns === c.runs ? "" : ` (${c.okRuns}/${c.runs} runs ok)`;
  return `| ${c.protocol}, ${c.clients} clients | ${configLabel(cfg)} | ${c.tps === null ? "FAILED" : int(c.tps)}${runs} | ${us(c)} | ${procs} | ${pct(c.coreBusy[0])} / ${pct(c.coreBusy[1])} | ${c.postgresUsPerTxn?.toFixed(1) ?? "?"} (${c.core0UsPerTxn?.toFixed(1) ?? "?"}) | ${perCore} | ${load} |`;
}

function predictionRows(r: ScalingReport): string[] {
  const cases = [...new Map(r.cells.map((c) => [`${c.protocol}:${c.clients}`, c])).values()];
  const rows = [
    "| case | cores | model (µs/txn: PgBouncer, pgbun worker, PostgreSQL) | PgBouncer, one process | pgbun, best workers = k | pgbun ÷ PgBouncer |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of cases) {
    const m = modelFor(r.cells, c.protocol, c.clients);
    if (!m) continue;
    for (const cores of [2, 4, 8]) {
      const p = predict(m, cores);
      rows.push(
        `| ${c.protocol}, ${c.clients} clients | ${cores} | ${m.pgbouncerUs.toFixed(1)}, ${m.pgbunWorkerUs.toFixed(1)}, ${m.postgresUs.toFixed(1)} | ${int(p.pgbouncer.tps)} (${p.pgbouncer.bound} core${p.pgbouncer.bound === "pooler" ? "" : "s"} full) | ` +
          `${int(p.pgbun.tps)} with k = ${p.pgbun.workers} (${p.pgbun.bound} full) | ${(p.pgbun.tps / p.pgbouncer.tps).toFixed(2)}× |`,
      );
    }
  }
  return rows;
}

export function renderMarkdown(r: ScalingReport): string {
  const byKey = new Map(r.configs.map((c) => [c.key, c]));
  const highLoad = r.cells.filter((c) => c.load1Max !== null && c.load1Max > LOAD_WARNING).length;
  const others = r.cells.filter((c) => c.othersMax !== null && c.othersMax > OTHERS_WARNING).length;
  const irCells = r.cells.filter((c) => c.irLock).length;
  const lines = [
    `# Workers where the pooler has a core of its own (issue 14 item 4), ${r.date.slice(0, 16).replace("T", " ")} UTC`,
    "",
    `\`${r.command}\` (bench/workers-scaling.ts). ${r.nproc} cores (${r.cpuModel}), PostgreSQL ${r.postgres}, PgBouncer ${r.pgbouncer}, Bun ${r.bun}. ` +
      `pgbench -S (select-only), scale ${r.scale}, -T ${r.durationS}, ${r.rounds} round(s), medians; transaction mode, auth trust, default_pool_size ${r.poolSize} ` +
      `(pgbun with workers = 2: ${Math.ceil(r.poolSize / 2)} per worker), pgbun with its default plugins.`,
    ...(r.merged ? ["", `${r.merged.length} runs joined (medians over all ${r.rounds} rounds): ${r.merged.map((m) => `${m.date.slice(11, 16)} UTC (load ${m.load1.toFixed(2)} before its first cell)`).join(", ")}.`] : []),
    "",
    `Load: 1-minute average ${r.loadAtStart.load1.toFixed(2)} before the first run${r.merged ? " (the highest of the runs joined)" : ""} (${r.loadAtStart.othersRunnable.toFixed(1)} runnable threads of other work). ` +
      (highLoad === 0
        ? `Every cell started at a 1-minute load of at most ${LOAD_WARNING}.`
        : `${highLoad} of ${r.cells.length} cells had a run start at a 1-minute load above ${LOAD_WARNING} (marked ⚠); this benchmark's own runs keep that average high (pinned to core 0, PostgreSQL's busy backends and pgbench's threads queue there, and each one waiting counts), so the runnable threads of other work right before each run tell more: ` +
          (others === 0 ? `at most ${OTHERS_WARNING} before every cell.` : `above ${OTHERS_WARNING} before ${others} cell(s) (marked "others").`)) +
      (irCells > 0 ? ` Someone's callgrind run (/tmp/ir.lock held) was under way when ${irCells} cell(s) started (marked ir.lock).` : ""),
    "",
    "| case | pooler | tps | pooler CPU µs/txn | pooler cores used (per process) | core 0 / core 1 busy | PostgreSQL µs/txn (core 0's) | txn/s one pooler core holds (10⁶ ÷ µs/txn) | load before (max) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...r.cells.map((c) => cellRow(byKey.get(c.config)!, c)),
    "",
    "Columns: pooler CPU = utime + stime of the pooler's process tree (a pgbun supervisor and its workers) over the run ÷ transactions, as bench/run.ts counts it " +
      "(connecting pgbench's clients included). Pooler cores used = that CPU time ÷ the run's wall time (1.00 = one core's worth), per process for pgbun with 2 workers " +
      "(the supervisor is the ~0.00). Core busy = /proc/stat's per-CPU busy share (everything but idle and iowait) over the run, whoever used it: core 0 holds PostgreSQL, " +
      "pgbench and this script; core 1 the pooler (and anything else the machine ran there). PostgreSQL µs/txn = utime + stime of its postmaster's tree ÷ transactions; in parentheses all of core 0's busy time ÷ transactions " +
      "(PostgreSQL + pgbench + the rest there): where core 0 is near 100 % busy, 10⁶ ÷ that is the tps the table can reach, whatever the pooler. " +
      "The last column is the pooler's capacity on one core if its CPU per transaction stayed as measured.",
    "",
    "## Prediction for 4 and 8 cores (and 2, the check against the table)",
    "",
    ...predictionRows(r),
    "",
    "Model: a machine of C cores serves clients running elsewhere (pgbench's own CPU is left out). The pooler gets k cores and PostgreSQL the other C − k; each side serves at most " +
      "(its cores × 10⁶ ÷ its µs/txn) transactions a second and the smaller side sets the tps. PgBouncer is one single-threaded process: k = 1 whatever C is. pgbun runs " +
      "workers = k, one per core, each at the larger of the measured µs/txn of one worker alone on core 1 and of two workers sharing core 1 (the conservative figure), and k is the " +
      "split that serves most. PostgreSQL's µs/txn is the median over the three core-1 poolers' cells.",
    "",
    "Assumed, not measured here: (1) CPU per transaction stays flat as a side scales (PostgreSQL's select-only backends share little; a pooler's workers share nothing but " +
      "the kernel's SO_REUSEPORT spreading of connections); it is measured on cores that were not saturated, and a saturated event loop batches more per wake-up, so the pooler " +
      "capacities are if anything low; (2) connections spread evenly over the workers (with 10 clients over 8 workers they cannot: that case needs more clients); (3) the pool " +
      "is split per worker (default_pool_size ÷ workers, rounded up), so each worker needs enough servers for its share; (4) no hyper-threading siblings: a \"core\" is a full core.",
    "",
  ];
  if (r.problems.length > 0) lines.push("## Problems", "", ...r.problems.map((p) => `- ${p}`), "");
  return `${lines.join("\n")}\n`;
}
