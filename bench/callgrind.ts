// Instruction counts of a pooler process under valgrind's callgrind: the command line, dumps on demand, their totals.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * valgrind's callgrind around a pooler. Bun's JIT writes code into anonymous memory, which valgrind only re-reads
 * with --smc-check=all-non-file; collection runs from the start and is zeroed and dumped by callgrind_control.
 * Threads run one at a time under valgrind, so a multi-threaded runtime is counted whole (every thread's Ir).
 */
export function callgrindCommand(outFile: string): string[] {
  return [
    "valgrind",
    "--tool=callgrind",
    "--smc-check=all-non-file",
    `--callgrind-out-file=${outFile}`,
    "--dump-instr=no",
    // one dump file per thread: the event-loop thread's count scales with the transactions; the JIT compiler's and
    // the collector's helper threads run by time and heuristics, which valgrind's slowdown distorts
    "--separate-threads=yes",
    "--trace-children=no",
    "--error-limit=no",
    "-q",
  ];
}

/**
 * The instructions (Ir) a callgrind dump counted: its `totals:` line (or `summary:` in older formats), first event.
 * null when the text has neither.
 */
export function dumpTotal(text: string): number | null {
  const m = /^(?:totals|summary):\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** One dump of a process run with --separate-threads=yes: Ir per thread (1 is the main thread). */
export interface Dump {
  n: number;
  threads: Map<number, number>;
}

/**
 * The dump files' names of one callgrind process grouped by dump: `<base>.<n>-<tt>` (n from 1, tt the thread, from
 * 01), in dump order; `<base>.<n>` (no threads) counts as thread 1.
 */
export function groupDumpFiles(names: string[], base: string): Array<{ n: number; files: Array<{ thread: number; name: string }> }> {
  const byDump = new Map<number, Array<{ thread: number; name: string }>>();
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(name.slice(base.length + 1));
    if (!m) continue;
    const n = Number(m[1]);
    if (!byDump.has(n)) byDump.set(n, []);
    byDump.get(n)!.push({ thread: m[2] === undefined ? 1 : Number(m[2]), name });
  }
  return [...byDump.entries()].sort((a, b) => a[0] - b[0]).map(([n, files]) => ({ n, files }));
}

/** The latest dump of one callgrind process in `dir`, read; null when there is none. */
export function latestDump(dir: string, base: string): Dump | null {
  const groups = groupDumpFiles(readdirSync(dir), base);
  const last = groups[groups.length - 1];
  if (!last) return null;
  const threads = new Map<number, number>();
  for (const f of last.files) threads.set(f.thread, readDump(join(dir, f.name)));
  return { n: last.n, threads };
}

const CONTROL_TIMEOUT_MS = 60_000;

/**
 * Zeroes (`-z`) or dumps (`-d`) the counters of a callgrind process; throws with callgrind_control's output on
 * failure. `as`: the OS user valgrind runs as (vgdb finds its FIFOs by user name: run it as that user).
 */
export async function callgrindControl(pid: number, action: "-z" | "-d", as?: { uid: number; gid: number }): Promise<void> {
  const cmd = ["callgrind_control", action, String(pid)];
  const user = as ? ["setpriv", `--reuid=${as.uid}`, `--regid=${as.gid}`, "--clear-groups"] : [];
  const proc = Bun.spawn([...user, ...cmd], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), CONTROL_TIMEOUT_MS); // vgdb waits forever for a process it cannot reach
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0 || /error|not found|no active/i.test(out + err)) throw new Error(`callgrind_control ${action} ${pid} failed (exit ${code}): ${(out + err).trim().slice(0, 400)}`);
}

/** One measured interval: the Ir a dump counted since the last zeroing, and how long it lasted. */
export interface Interval {
  ir: number;
  wallMs: number;
}

/** A dump as two intervals: the main (event-loop) thread's Ir, and every thread's. */
export function intervalsOf(d: Dump, wallMs: number): { main: Interval; all: Interval } {
  let all = 0;
  for (const ir of d.threads.values()) all += ir;
  return { main: { ir: d.threads.get(1) ?? 0, wallMs }, all: { ir: all, wallMs } };
}

/**
 * Instructions per transaction: the run's Ir minus what the process does idle in as much time (its timers, the
 * runtime's housekeeping; measured right after, pro rata), divided by the transactions. null without transactions.
 */
export function irPerTransaction(run: Interval, idle: Interval | null, transactions: number): number | null {
  if (!(transactions > 0)) return null;
  const idleIr = idle && idle.wallMs > 0 ? (idle.ir * run.wallMs) / idle.wallMs : 0;
  return Math.max(0, run.ir - idleIr) / transactions;
}

/** Ir per transaction for a table: thousands with one decimal under 100k ("41.3k"), else whole thousands. */
export function formatIr(ir: number | null): string {
  if (ir === null) return "–";
  const k = ir / 1000;
  return k < 100 ? `${k.toFixed(1)}k` : `${Math.round(k).toLocaleString("en-US")}k`;
}

export function readDump(file: string): number {
  const n = dumpTotal(readFileSync(file, "utf8"));
  if (n === null) throw new Error(`${file}: no totals line`);
  return n;
}
