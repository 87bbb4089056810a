// Reads a process tree's CPU time from /proc (utime + stime in clock ticks), for µs of pooler CPU per transaction.
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** A process tree's CPU time at one moment. */
export interface CpuSample {
  ticks: number;
  /** Processes read (a supervisor and its workers); each reading is truncated to a whole tick. */
  processes: number;
}

/** What the pooler spent during one pgbench run. */
export interface PoolerCpu {
  /** utime + stime over the run, summed over the process tree, in seconds. */
  seconds: number;
  usPerTxn: number;
  /** What one clock tick per process is worth per transaction: the finest step the figure supports. */
  resolutionUs: number;
  processes: number;
}

let ticksPerSecond: number | undefined;

/** `getconf CLK_TCK` (100 on nearly every Linux), read once. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    const out = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
    const n = Number(out.stdout.toString().trim());
    ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** A /proc file's text, or null once the process (or the file) is gone. */
export function readOr(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** utime + stime of one process; null when it is gone. Fields are counted after the ")" closing its name. */
function processTicks(pid: number): number | null {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : null;
}

/** utime + stime of one process in ticks, 0 once it is gone (bench/workers-scaling.ts, per process). */
export function ticksOf(pid: number): number {
  return processTicks(pid) ?? 0;
}

/** `pid` and its descendants that still exist, over every thread's children list. */
export function processTree(root: number): number[] {
  const out: number[] = [];
  const pending = [root];
  const seen = new Set<number>();
  while (pending.length > 0) {
    const pid = pending.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    if (!existsSync(`/proc/${pid}/task`)) continue;
    out.push(pid);
    pending.push(...childrenOf(pid));
  }
  return out;
}

/** Every live thread of `root`'s process tree, as its /proc/PID/task/TID directory (bench/cpu-split.ts, workers-scaling.ts). */
export function treeThreads(root: number): Array<{ pid: number; tid: string; dir: string }> {
  const out: Array<{ pid: number; tid: string; dir: string }> = [];
  for (const pid of processTree(root)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) out.push({ pid, tid, dir: `/proc/${pid}/task/${tid}` });
  }
  return out;
}

/** Children of every thread of `pid` (a child belongs to the thread that forked it). */
function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    const text = readOr(`/proc/${pid}/task/${tid}/children`);
    if (text) for (const c of text.trim().split(/\s+/)) if (c !== "") out.push(Number(c));
  }
  return out;
}

/** CPU ticks of `pid` and all its descendants; null when `pid` itself is gone. */
export function sampleCpu(pid: number): CpuSample | null {
  const root = processTicks(pid);
  if (root === null) return null;
  let ticks = root;
  let processes = 1;
  const pending = childrenOf(pid);
  const seen = new Set([pid]);
  while (pending.length > 0) {
    const child = pending.pop()!;
    if (seen.has(child)) continue;
    seen.add(child);
    const t = processTicks(child);
    if (t === null) continue;
    ticks += t;
    processes++;
    pending.push(...childrenOf(child));
  }
  return { ticks, processes };
}

/** The CPU between two samples per transaction; null when either sample is missing or nothing ran. */
export function cpuPerTransaction(before: CpuSample | null, after: CpuSample | null, transactions: number): PoolerCpu | null {
  if (!before || !after || transactions <= 0 || after.ticks < before.ticks) return null;
  const hz = clockTicksPerSecond();
  const seconds = (after.ticks - before.ticks) / hz;
  const processes = Math.max(before.processes, after.processes);
  return {
    seconds,
    usPerTxn: (seconds * 1e6) / transactions,
    resolutionUs: (processes * 1e6) / hz / transactions,
    processes,
  };
}

/** The smallest of 1, 2, 5, 10, 20, 50… at or above `resolutionUs`: the step a figure is rounded to. */
export function cpuStep(resolutionUs: number): number {
  if (!(resolutionUs > 1)) return 1;
  const base = 10 ** Math.floor(Math.log10(resolutionUs));
  for (const m of [1, 2, 5]) if (m * base >= resolutionUs) return m * base;
  return 10 * base;
}

/**
 * µs per transaction rounded to what the ticks support: whole µs when a tick is worth at most 1 µs per transaction
 * (100 Hz over 50,000 transactions: 0.2 µs), else to a coarser step (a short run of 2,000 transactions prints 40).
 */
export function formatCpuUs(usPerTxn: number, resolutionUs: number): string {
  const step = cpuStep(resolutionUs);
  return (Math.round(usPerTxn / step) * step).toLocaleString("en-US");
}

/** One process's CPU split by mode, and its minor page faults (bench/cpu-split.ts). */
export interface CpuSplitSample {
  /** utime over the tree, clock ticks: user mode. */
  userTicks: number;
  /** stime over the tree, clock ticks: the kernel on the process's behalf (system calls, faults, softirqs charged). */
  kernelTicks: number;
  /** minflt (/proc stat field 10) over the tree: page faults served without I/O. */
  minorFaults: number;
  processes: number;
}

/** utime, stime and minflt of one process (all its threads, exited ones included); null when it is gone. */
export function processSplit(pid: number): { user: number; kernel: number; minorFaults: number } | null {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): minflt is field 10, utime 14, stime 15
  const minorFaults = Number(fields[7]);
  const user = Number(fields[11]);
  const kernel = Number(fields[12]);
  return Number.isFinite(user) && Number.isFinite(kernel) && Number.isFinite(minorFaults) ? { user, kernel, minorFaults } : null;
}

/** processSplit summed over `root`'s process tree (processTree); null when `root` itself is gone. */
export function sampleCpuSplit(root: number): CpuSplitSample | null {
  if (processSplit(root) === null) return null;
  const s: CpuSplitSample = { userTicks: 0, kernelTicks: 0, minorFaults: 0, processes: 0 };
  for (const pid of processTree(root)) {
    const p = processSplit(pid);
    if (p === null) continue;
    s.userTicks += p.user;
    s.kernelTicks += p.kernel;
    s.minorFaults += p.minorFaults;
    s.processes++;
  }
  return s;
}

/** One thread's counters: CPU ticks and context switches. */
export interface ThreadCounters {
  comm: string;
  user: number;
  kernel: number;
  voluntary: number;
  involuntary: number;
}

/** Every live thread of `root`'s process tree, keyed pid/tid (bench/cpu-split.ts, bench/jit-exits.ts). */
export function threadCounters(root: number): Map<string, ThreadCounters> {
  const out = new Map<string, ThreadCounters>();
  for (const { pid, tid, dir } of treeThreads(root)) {
    const stat = readOr(`${dir}/stat`);
    const status = readOr(`${dir}/status`);
    if (stat === null || status === null) continue;
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(`${pid}/${tid}`, {
      // a thread's name without its number: "HTTP Client 3" and "HTTP Client 4" are one row
      comm: comm.replace(/\s*\d+$/, "") || comm,
      user: Number(f[11]),
      kernel: Number(f[12]),
      voluntary: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
      involuntary: Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
    });
  }
  return out;
}
