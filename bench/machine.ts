// Describes the machine and software versions a benchmark ran on, for the results file.
import { readFileSync } from "node:fs";
import { availableParallelism, release } from "node:os";

export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  ramGiB: number;
  kernel: string;
  postgres: string;
  pgbench: string;
  pgbouncer: string;
  bun: string;
  /** 1-minute load averages sampled before each pgbench run: other work on the machine skews the numbers. */
  load: { min: number; median: number; max: number };
  /**
   * The share of the machine's CPU time the hypervisor gave to others (steal) while the benchmark ran, from /proc/stat;
   * null where the kernel does not count it. Other virtual machines on the host: no load average shows it.
   */
  steal: number | null;
}

/** The machine's CPU ticks so far (/proc/stat's first line): steal and the sum of all fields. */
export function cpuTicks(): { steal: number; total: number } | null {
  const f = /^cpu\s+(.*)$/m.exec(readOr("/proc/stat"))?.[1]?.trim().split(/\s+/).map(Number);
  if (f === undefined || f.length < 8 || f.some((n) => !Number.isFinite(n))) return null;
  // user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user and nice]
  return { steal: f[7]!, total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/** Steal as a share of all CPU time between two readings; null without both. */
export function stealShare(before: ReturnType<typeof cpuTicks>, after: ReturnType<typeof cpuTicks>): number | null {
  if (before === null || after === null || after.total <= before.total) return null;
  return (after.steal - before.steal) / (after.total - before.total);
}

function readOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

async function versionLine(cmd: string[]): Promise<string> {
  try {
    const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return (out + err).split("\n")[0]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

function loadSummary(samples: number[]): MachineInfo["load"] {
  const s = [...samples].sort((a, b) => a - b);
  const round = (n: number | undefined) => Math.round((n ?? 0) * 100) / 100;
  return { min: round(s[0]), median: round(s[Math.floor(s.length / 2)]), max: round(s.at(-1)) };
}

export interface MachineFacts {
  /** When the run started. */
  started: Date;
  postgres: string;
  pgbench: string;
  pgbouncer: string;
  loadSamples: number[];
  /** cpuTicks() when the run started. */
  ticksAtStart: ReturnType<typeof cpuTicks>;
}

export async function describeMachine(v: MachineFacts): Promise<MachineInfo> {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readOr("/proc/cpuinfo"))?.[1]?.trim() ?? "unknown";
  const memKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readOr("/proc/meminfo"))?.[1] ?? 0);
  return {
    date: v.started.toISOString(),
    nproc: availableParallelism(),
    cpuModel,
    ramGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    kernel: release(),
    postgres: v.postgres,
    pgbench: await versionLine([v.pgbench, "--version"]),
    pgbouncer: v.pgbouncer,
    bun: Bun.version,
    load: loadSummary(v.loadSamples),
    steal: stealShare(v.ticksAtStart, cpuTicks()),
  };
}
