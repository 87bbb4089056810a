// How busy the machine was before each pgbench run: the 1-minute load average, and the other work seen right then.
import { readdirSync } from "node:fs";
import { readOr } from "./cpu.ts";

/** A cell whose 1-minute load average was above this before one of its runs gets a loud warning in the report. */
export const LOAD_WARNING = 1.5;
/**
 * Runnable threads besides the benchmark's and its PostgreSQL's, on average right before a run, above which the report
 * says other work was running. The 1-minute average alone cannot say it: the benchmark's own back-to-back runs
 * (pgbench, PostgreSQL and a pooler on every core) keep it near the core count, and it decays over a minute, not in
 * the pause between runs.
 */
export const OTHERS_WARNING = 0.5;

export interface LoadSample {
  /** The 1-minute load average (/proc/loadavg, first field). */
  load1: number;
  /**
   * Runnable threads (state R) outside the benchmark's own processes (its process tree: the poolers, pgbench, the
   * idle connector) and PostgreSQL's, on average over a few readings right before the run: someone else's work.
   */
  othersRunnable: number;
}

const READINGS = 5;
const READING_GAP_MS = 20;


/** The fields after a /proc stat line's "(name)": [0] is the state, [1] the parent pid. */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(")") + 2).split(" ", 2);
}

/** Threads in state R whose process descends from none of `roots`, in one pass over /proc. */
function othersRunnableNow(roots: ReadonlySet<number>): number {
  const parent = new Map<number, number>();
  const running: number[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  for (const d of pids) {
    const pid = Number(d);
    const stat = readOr(`/proc/${pid}/stat`);
    if (stat === null) continue;
    parent.set(pid, Number(statFields(stat)[1]));
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const t = tid === d ? stat : readOr(`/proc/${pid}/task/${tid}/stat`);
      if (t !== null && statFields(t)[0] === "R") running.push(pid);
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) if (roots.has(p)) return true;
    return false;
  };
  return running.filter((pid) => !ours(pid)).length;
}

/**
 * Samples the machine's load; takes about READINGS × READING_GAP_MS. `roots`: the pids whose process trees are the
 * benchmark's own (this process, PostgreSQL's postmaster).
 */
export async function sampleLoad(roots: number[]): Promise<LoadSample> {
  const own = new Set(roots);
  let others = 0;
  for (let i = 0; i < READINGS; i++) {
    if (i > 0) await Bun.sleep(READING_GAP_MS);
    others += othersRunnableNow(own);
  }
  const load1 = Number(readOr("/proc/loadavg")?.split(" ")[0]) || 0;
  return { load1, othersRunnable: others / READINGS };
}

/** The pid in a PostgreSQL data directory's postmaster.pid (its first line); undefined while it has none. */
export function postmasterPid(dataDir: string): number | undefined {
  const pid = Number(readOr(`${dataDir}/postmaster.pid`)?.split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The worst load before any run of one cell: the figures its warning is about. */
export interface CellLoad {
  load1Max: number | null;
  othersMax: number | null;
}

export function cellLoad(samples: Array<LoadSample | undefined>): CellLoad {
  const got = samples.filter((s): s is LoadSample => s !== undefined);
  if (got.length === 0) return { load1Max: null, othersMax: null };
  return { load1Max: Math.max(...got.map((s) => s.load1)), othersMax: Math.max(...got.map((s) => s.othersRunnable)) };
}

/** " ⚠ load 2.31" for a cell measured at a 1-minute load average above LOAD_WARNING; "" otherwise. */
export function loadMark(l: CellLoad): string {
  if (l.load1Max === null || l.load1Max <= LOAD_WARNING) return "";
  const others = l.othersMax !== null && l.othersMax > OTHERS_WARNING ? `, OTHER WORK ${l.othersMax.toFixed(1)} runnable` : "";
  return ` ⚠ load ${l.load1Max.toFixed(2)}${others}`;
}

/**
 * The report's loud warning when any cell ran at a 1-minute load average above LOAD_WARNING, or [] when none did:
 * how many cells, the worst, and whether work other than the benchmark's was seen before them.
 */
export function loadWarning(cells: Array<{ where: string; load: CellLoad }>, nproc: number): string[] {
  const high = cells.filter((c) => c.load.load1Max !== null && c.load.load1Max > LOAD_WARNING);
  if (high.length === 0) return [];
  const worst = Math.max(...high.map((c) => c.load.load1Max!));
  const disturbed = cells.filter((c) => c.load.othersMax !== null && c.load.othersMax > OTHERS_WARNING);
  const lines = [
    `> **⚠ WARNING: LOAD. Before ${high.length} of ${cells.length} measured cells the 1-minute load average was above ${LOAD_WARNING} ` +
      `(worst ${worst.toFixed(2)} on ${nproc} cores); those cells are marked ⚠ load.** The benchmark's own back-to-back runs keep this ` +
      "average near the core count, so it is high on a quiet machine too; what tells other work apart is the count of runnable threads " +
      "outside the benchmark's processes and its PostgreSQL's, read right before each run: " +
      (disturbed.length === 0
        ? `at most ${OTHERS_WARNING} before every cell (no other work seen).`
        : `above ${OTHERS_WARNING} before ${disturbed.length} cell(s), marked OTHER WORK: DO NOT TRUST THOSE FIGURES.`),
  ];
  for (const c of disturbed.slice(0, 20)) lines.push(`> - OTHER WORK before ${c.where}: ${c.load.othersMax!.toFixed(1)} runnable threads, load ${c.load.load1Max?.toFixed(2) ?? "?"}`);
  if (disturbed.length > 20) lines.push(`> - … and ${disturbed.length - 20} more`);
  return lines;
}

/** --wait-quiet: a cell starts once the 1-minute load average is below this… */
export const QUIET_LOAD = 1;
/**
 * …and at most this many threads outside the benchmark's were runnable on average over the readings (one reading of
 * five seeing one: a kernel worker's blip, not work).
 */
export const QUIET_OTHERS = 0.2;
/** How often the wait reads the load again. */
export const QUIET_POLL_MS = 2_000;

/** Whether one sample is quiet enough to measure in. */
export const isQuiet = (s: LoadSample): boolean => s.load1 < QUIET_LOAD && s.othersRunnable <= QUIET_OTHERS;

/** The wait's next step: start the cell (quiet), read again (wait), or start it anyway and say so (gave-up). */
export function quietStep(s: LoadSample, waitedMs: number, limitMs: number): "quiet" | "wait" | "gave-up" {
  if (isQuiet(s)) return "quiet";
  return waitedMs + QUIET_POLL_MS <= limitMs ? "wait" : "gave-up";
}

export interface QuietWait {
  quiet: boolean;
  waitedMs: number;
  /** The sample the decision was made on. */
  last: LoadSample;
}

/**
 * Waits up to `limitMs` for a quiet machine (isQuiet), reading the load every QUIET_POLL_MS. `sample` and `sleep`
 * are sampleLoad and Bun.sleep outside the unit test.
 */
export async function waitForQuiet(
  limitMs: number,
  sample: () => Promise<LoadSample>,
  sleep: (ms: number) => Promise<unknown> = Bun.sleep,
): Promise<QuietWait> {
  let waitedMs = 0;
  for (;;) {
    const last = await sample();
    const step = quietStep(last, waitedMs, limitMs);
    if (step !== "wait") return { quiet: step === "quiet", waitedMs, last };
    await sleep(QUIET_POLL_MS);
    waitedMs += QUIET_POLL_MS;
  }
}

/** The loud line for a cell that started on a machine that was not quiet after the wait. */
export function notQuietMessage(where: string, w: QuietWait): string {
  return (
    `NOT QUIET: ${where} started after waiting ${Math.round(w.waitedMs / 1000)} s with the 1-minute load at ${w.last.load1.toFixed(2)} ` +
    `(quiet: below ${QUIET_LOAD}) and ${w.last.othersRunnable.toFixed(1)} runnable threads of other work (quiet: at most ${QUIET_OTHERS}): its figures are not a quiet run's`
  );
}
