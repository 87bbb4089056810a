// The pure parts of bench/cpu-split.ts: its options, medians, the runtime's / pgbun's own split, strace parsing, the report.
import { resolve } from "node:path";
import type { Protocol } from "./pgbench.ts";

export const POOLERS = ["pgbouncer", "passthrough", "minipool", "pgbun-minimal", "pgbun"] as const;
export type Pooler = (typeof POOLERS)[number];
export const POOLER_LABEL: Record<Pooler, string> = {
  pgbouncer: "PgBouncer 1.18",
  passthrough: "bare Bun pass-through",
  minipool: "least Bun pooler (bench/minipool.ts)",
  "pgbun-minimal": "pgbun, only auth + pool + transaction-detection",
  pgbun: "pgbun (default plugins)",
};

export interface SplitOptions {
  clients: number[];
  protocols: Protocol[];
  rounds: number;
  /** Transactions per measured run (all clients together); -t is this over the client count, rounded up. */
  transactions: number;
  /** Transactions of the unrecorded warm-up run per pooler and cell. */
  warmupTransactions: number;
  /** Transactions of the strace -c run per pooler and protocol (at straceClients). */
  straceTransactions: number;
  straceClients: number;
  /** Transactions of the perf record run per pooler and protocol (at straceClients). */
  perfTransactions: number;
  outDir: string;
}

export const SPLIT_USAGE = `usage: bun bench/cpu-split.ts [--clients 10,50] [--protocols simple,extended,prepared] [--rounds 3]
                             [--transactions N] [--strace-transactions N] [--perf-transactions N] [--out DIR]
  --clients N,N        client counts (default 10,50)
  --protocols P,P      pgbench -M values (default simple,extended; PgBouncer 1.18 skips prepared)
  --rounds N           measured runs per pooler and cell, the pooler order rotating each round (default 3)
  --transactions N     transactions per measured run, all clients together (default 100,000: a 10 ms tick per
                       process is then 0.1 µs per transaction)
  --strace-transactions N  transactions of the one strace -c run per pooler and protocol at 10 clients (default 20,000)
  --perf-transactions N    transactions of the one perf record run per pooler and protocol at 10 clients (default 50,000)
  --out DIR            where latest.md and latest.json go (default bench/results/cpu-split)`;

const PROTOCOLS: readonly Protocol[] = ["simple", "extended", "prepared"];

function positiveInt(v: string | undefined, flag: string): number {
  if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value\n${SPLIT_USAGE}`);
  const n = Number(v.replaceAll(",", "").replaceAll("_", ""));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive whole number, got ${v}`);
  return n;
}

function list(v: string | undefined, flag: string): string[] {
  if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value\n${SPLIT_USAGE}`);
  const items = v.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new Error(`${flag}: nothing given`);
  return items;
}

export function parseSplitArgs(argv: string[], defaultOut = resolve(import.meta.dir, "results", "cpu-split")): SplitOptions {
  const o: SplitOptions = {
    clients: [10, 50],
    protocols: ["simple", "extended"],
    rounds: 3,
    transactions: 100_000,
    warmupTransactions: 0,
    straceTransactions: 20_000,
    straceClients: 10,
    perfTransactions: 50_000,
    outDir: defaultOut,
  };
  let warmupGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === "--clients") o.clients = [...new Set(list(v, a).map((c) => positiveInt(c, a)))].sort((x, y) => x - y);
    else if (a === "--protocols") {
      const ps = list(v, a);
      const bad = ps.filter((p) => !(PROTOCOLS as readonly string[]).includes(p));
      if (bad.length > 0) throw new Error(`--protocols: unknown ${bad.join(", ")}; known: ${PROTOCOLS.join(", ")}`);
      o.protocols = [...new Set(ps)] as Protocol[];
    } else if (a === "--rounds") o.rounds = positiveInt(v, a);
    else if (a === "--transactions") o.transactions = positiveInt(v, a);
    else if (a === "--warmup-transactions") (o.warmupTransactions = positiveInt(v, a)), (warmupGiven = true);
    else if (a === "--strace-transactions") o.straceTransactions = positiveInt(v, a);
    else if (a === "--perf-transactions") o.perfTransactions = positiveInt(v, a);
    else if (a === "--out") {
      if (v === undefined || v.startsWith("--")) throw new Error(`--out needs a value\n${SPLIT_USAGE}`);
      o.outDir = resolve(v);
    } else if (a === "--help" || a === "-h") throw new Error(SPLIT_USAGE);
    else throw new Error(`unknown argument ${a}\n${SPLIT_USAGE}`);
    i++;
  }
  // a fifth of a run warms the JIT and fills the pool; more only costs the machine's time
  if (!warmupGiven) o.warmupTransactions = Math.max(1, Math.round(o.transactions / 5));
  return o;
}

export { perClient } from "./pgbench.ts";

/** One measured pgbench run against one pooler: what its process tree spent, per transaction. */
export interface RunSample {
  pooler: Pooler;
  clients: number;
  protocol: Protocol;
  round: number;
  transactions: number;
  tps: number;
  userUs: number;
  kernelUs: number;
  totalUs: number;
  /** What one clock tick per process is worth per transaction. */
  resolutionUs: number;
  minorFaultsPerTxn: number;
  /** Voluntary context switches (a thread went to sleep: epoll, futex) per transaction, over the tree's live threads. */
  voluntarySwitchesPerTxn: number;
  involuntarySwitchesPerTxn: number;
  /** By thread name (threads alive before and after the run): user and kernel µs, context switches, per transaction. */
  threads: Record<string, ThreadShare>;
  load1: number;
  othersRunnable: number;
}

export interface ThreadShare {
  userUs: number;
  kernelUs: number;
  /** Voluntary + involuntary context switches per transaction: how often the thread slept or was preempted. */
  switches: number;
}

/** ticks → µs per transaction. */
export const ticksToUs = (ticks: number, hz: number, transactions: number): number => (ticks * 1e6) / hz / transactions;

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface PoolerCell {
  runs: number;
  userUs: number;
  kernelUs: number;
  totalUs: number;
  tps: number;
  minorFaultsPerTxn: number;
  voluntarySwitchesPerTxn: number;
  involuntarySwitchesPerTxn: number;
  resolutionUs: number;
  threads: Record<string, ThreadShare>;
  load1Max: number;
  othersMax: number;
}

/** Medians of each figure over a pooler's runs of one cell (each figure its own median); null with no runs. */
export function poolerCell(runs: RunSample[]): PoolerCell | null {
  if (runs.length === 0) return null;
  const med = (f: (r: RunSample) => number) => median(runs.map(f))!;
  const names = new Set(runs.flatMap((r) => Object.keys(r.threads)));
  const threads: Record<string, ThreadShare> = {};
  for (const n of names) {
    threads[n] = { userUs: med((r) => r.threads[n]?.userUs ?? 0), kernelUs: med((r) => r.threads[n]?.kernelUs ?? 0), switches: med((r) => r.threads[n]?.switches ?? 0) };
  }
  return {
    runs: runs.length,
    userUs: med((r) => r.userUs),
    kernelUs: med((r) => r.kernelUs),
    totalUs: med((r) => r.totalUs),
    tps: med((r) => r.tps),
    minorFaultsPerTxn: med((r) => r.minorFaultsPerTxn),
    voluntarySwitchesPerTxn: med((r) => r.voluntarySwitchesPerTxn),
    involuntarySwitchesPerTxn: med((r) => r.involuntarySwitchesPerTxn),
    resolutionUs: Math.max(...runs.map((r) => r.resolutionUs)),
    threads,
    load1Max: Math.max(...runs.map((r) => r.load1)),
    othersMax: Math.max(...runs.map((r) => r.othersRunnable)),
  };
}

export interface UserKernel {
  user: number;
  kernel: number;
}

/**
 * pgbun − PgBouncer as the runtime's part (pass-through − PgBouncer: a Bun process relaying bytes and nothing else)
 * plus pgbun's own (pgbun − pass-through), in user and kernel µs per transaction. Medians of differences would not
 * add up; differences of medians do: runtime + own = gap exactly. Without a PgBouncer cell (-M prepared) only own.
 * pgbun's own part splits again at the least pooler (bench/minipool.ts): `pooling`, what walking headers and handing
 * servers out per transaction costs on this runtime at the least (minipool − pass-through), and `overPool`, what pgbun
 * costs beyond that (pgbun − minipool); pooling + overPool = own. overPool splits once more at pgbun with only the
 * plugins no pool can do without: `core` (pgbun-minimal − minipool) and `plugins`, the other default plugins
 * (pgbun − pgbun-minimal); core + plugins = overPool.
 */
export interface CellSplit {
  gap: UserKernel | null;
  runtime: UserKernel | null;
  own: UserKernel | null;
  pooling: UserKernel | null;
  overPool: UserKernel | null;
  core: UserKernel | null;
  plugins: UserKernel | null;
}

const minus = (a: PoolerCell, b: PoolerCell): UserKernel => ({ user: a.userUs - b.userUs, kernel: a.kernelUs - b.kernelUs });

export function splitOf(p: Partial<Record<Pooler, PoolerCell | null>>): CellSplit {
  const { pgbouncer, passthrough, minipool, pgbun } = p;
  const minimal = p["pgbun-minimal"];
  return {
    gap: pgbun && pgbouncer ? minus(pgbun, pgbouncer) : null,
    runtime: passthrough && pgbouncer ? minus(passthrough, pgbouncer) : null,
    own: pgbun && passthrough ? minus(pgbun, passthrough) : null,
    pooling: minipool && passthrough ? minus(minipool, passthrough) : null,
    overPool: pgbun && minipool ? minus(pgbun, minipool) : null,
    core: minimal && minipool ? minus(minimal, minipool) : null,
    plugins: pgbun && minimal ? minus(pgbun, minimal) : null,
  };
}

export interface CellResult {
  clients: number;
  protocol: Protocol;
  poolers: Partial<Record<Pooler, PoolerCell | null>>;
  /** Why a pooler has no figures in this cell (PgBouncer 1.18 and -M prepared in transaction mode). */
  skipped: Partial<Record<Pooler, string>>;
  split: CellSplit;
}

export const PREPARED_SKIP = "PgBouncer 1.18 cannot run -M prepared in transaction mode (protocol-level named statements need max_prepared_statements, 1.21+)";
export const MINIPOOL_PREPARED_SKIP = "bench/minipool.ts keeps no statement across servers: -M prepared's named statements fail on the next server";

/** Whether a pooler runs in a cell: neither PgBouncer 1.18 nor the least pooler runs -M prepared (transaction mode). */
export function skipReason(pooler: Pooler, protocol: Protocol): string | undefined {
  if (protocol !== "prepared") return undefined;
  return pooler === "pgbouncer" ? PREPARED_SKIP : pooler === "minipool" ? MINIPOOL_PREPARED_SKIP : undefined;
}

/** The runs of round `round` in order: round 0 as POOLERS, each next round shifted by one, so none is always first. */
export function roundOrder(round: number, poolers: readonly Pooler[] = POOLERS): Pooler[] {
  const k = round % poolers.length;
  return [...poolers.slice(k), ...poolers.slice(0, k)];
}

// ---- strace ----

/** Calls per transaction by system call, from `strace -c` output (its table: % time, seconds, usecs/call, calls, [errors], syscall). */
export function parseStraceSummary(text: string, transactions: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!/^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(line)) continue;
    const f = line.trim().split(/\s+/);
    const name = f[f.length - 1]!;
    if (name === "total") continue;
    out[name] = (out[name] ?? 0) + Number(f[3]) / transactions;
  }
  return out;
}

/**
 * The distinct socket options set or read in a `strace -e trace=setsockopt,getsockopt` log, with how often:
 * "setsockopt SOL_TCP TCP_NODELAY [1]". Lines of strace -f start with a pid; unfinished/resumed halves are skipped.
 */
export function parseSockopts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /\b(setsockopt|getsockopt)\(\d+,\s*([A-Z_]+),\s*([A-Z0-9_]+),\s*([^,]*),/.exec(line);
    if (!m) continue;
    const key = `${m[1]} ${m[2]} ${m[3]} ${m[4]!.trim()}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export interface StraceProfile {
  pooler: Pooler;
  protocol: Protocol;
  clients: number;
  transactions: number;
  callsPerTxn: Record<string, number>;
}

// ---- perf (where the kernel time goes) ----

/** One symbol of `perf report --stdio --children --sort sym -g none`: inclusive and self shares of all samples. */
export interface PerfSymbol {
  children: number;
  self: number;
  kernel: boolean;
  symbol: string;
}

/** The sampled CPU (Event count, ns of cpu-clock) and each symbol's line; unparsable lines are skipped. */
export function parsePerfReport(text: string): { eventNs: number; symbols: PerfSymbol[] } {
  const eventNs = Number(/Event count \(approx\.\):\s*(\d+)/.exec(text)?.[1] ?? 0);
  const symbols: PerfSymbol[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(.+?)\s*$/.exec(line);
    if (m) symbols.push({ children: Number(m[1]) / 100, self: Number(m[2]) / 100, kernel: m[3] === "k", symbol: m[4]! });
  }
  return { eventNs, symbols };
}

/**
 * Kernel functions whose inclusive time names what the kernel did for the pooler: the socket calls (a loopback send
 * also delivers to the peer's socket and wakes it, inside __sys_sendto), waiting in epoll, futexes (other threads),
 * page faults, and the scheduler (its share inside the others).
 */
export const KERNEL_GROUPS: ReadonlyArray<[label: string, symbols: string[]]> = [
  ["sendto (whole call: TCP, loopback delivery, peer wake-up)", ["__sys_sendto"]],
  ["  of which tcp_sendmsg", ["tcp_sendmsg"]],
  ["  of which waking a peer (try_to_wake_up)", ["try_to_wake_up"]],
  ["  of which loopback delivery (softirq: net_rx_action)", ["net_rx_action"]],
  ["recvfrom (whole call)", ["__sys_recvfrom"]],
  ["  of which tcp_recvmsg", ["tcp_recvmsg"]],
  ["epoll wait (do_epoll_wait)", ["do_epoll_wait"]],
  ["epoll_ctl", ["do_epoll_ctl"]],
  ["futex", ["do_futex"]],
  ["page faults (exc_page_fault)", ["exc_page_fault"]],
  ["madvise / munmap / mmap", ["do_madvise", "__vm_munmap", "do_mmap"]],
  ["scheduler (__schedule, inside the above)", ["__schedule"]],
  ["context switch: finish_task_switch (self)", ["finish_task_switch.isra.0", "finish_task_switch"]],
  ["irqs back on: _raw_spin_unlock_irqrestore (self: wake-ups and softirq work done with irqs off land here)", ["_raw_spin_unlock_irqrestore"]],
  ["system call entry/exit (self)", ["do_syscall_64", "entry_SYSCALL_64", "syscall_exit_to_user_mode", "entry_SYSCALL_64_after_hwframe"]],
];

export interface PerfProfile {
  pooler: Pooler;
  protocol: Protocol;
  clients: number;
  transactions: number;
  /** user and kernel µs/txn from the samples (self time of [.] and [k] symbols). */
  userUs: number;
  kernelUs: number;
  /** KERNEL_GROUPS label → µs/txn (inclusive; "self" for the entry/exit row). */
  groups: Record<string, number>;
  /** The kernel symbols with the most self time, µs/txn. */
  topKernel: Array<[string, number]>;
}

export function perfProfile(pooler: Pooler, protocol: Protocol, clients: number, transactions: number, text: string): PerfProfile {
  const { eventNs, symbols } = parsePerfReport(text);
  const us = (share: number) => (share * eventNs) / 1000 / transactions;
  const groups: Record<string, number> = {};
  for (const [label, names] of KERNEL_GROUPS) {
    const selfOnly = label.includes("(self");
    // inclusive shares of different symbols overlap when one calls the other: take the largest, not the sum
    let share = 0;
    for (const s of symbols) if (s.kernel && names.includes(s.symbol)) share = selfOnly ? share + s.self : Math.max(share, s.children);
    groups[label] = us(share);
  }
  const sum = (k: boolean) => symbols.filter((s) => s.kernel === k).reduce((a, s) => a + s.self, 0);
  const topKernel = symbols
    .filter((s) => s.kernel && s.self > 0)
    .sort((a, b) => b.self - a.self)
    .slice(0, 12)
    .map((s): [string, number] => [s.symbol, us(s.self)]);
  return { pooler, protocol, clients, transactions, userUs: us(sum(false)), kernelUs: us(sum(true)), groups, topKernel };
}

/** Kernel µs/txn by what it did, per pooler and protocol. */
export function perfTable(profiles: PerfProfile[]): string[] {
  if (profiles.length === 0) return ["(no perf runs)"];
  const lines = [`| µs/txn | ${profiles.map((p) => `${p.pooler} -M ${p.protocol}`).join(" | ")} |`, `| --- | ${profiles.map(() => "---:").join(" | ")} |`];
  lines.push(`| user (samples) | ${profiles.map((p) => f2(p.userUs)).join(" | ")} |`);
  lines.push(`| kernel (samples) | ${profiles.map((p) => f2(p.kernelUs)).join(" | ")} |`);
  for (const [label] of KERNEL_GROUPS) lines.push(`| ${label.replace(/^  /, "&nbsp;&nbsp;")} | ${profiles.map((p) => f2(p.groups[label])).join(" | ")} |`);
  return lines;
}

// ---- the report ----

export interface SplitReport {
  started: string;
  finished: string;
  machine: { cpuModel: string; nproc: number; kernel: string; bun: string; postgres: string; pgbouncer: string; pgbench: string; clockTicks: number };
  options: Omit<SplitOptions, "outDir">;
  cells: CellResult[];
  strace: StraceProfile[];
  sockopts: Partial<Record<Pooler, Record<string, number>>>;
  perf: PerfProfile[];
  runs: RunSample[];
  problems: string[];
}

const f1 = (n: number | null | undefined): string => (n === null || n === undefined ? "—" : n.toFixed(1));
const f2 = (n: number | null | undefined): string => (n === null || n === undefined ? "—" : n.toFixed(2));
const signed = (n: number | null | undefined): string => (n === null || n === undefined ? "—" : `${n >= 0 ? "+" : "−"}${Math.abs(n).toFixed(1)}`);
const int = (n: number): string => Math.round(n).toLocaleString("en-US");

/** The main table: per cell and pooler, median user / kernel / total µs per transaction, tps, faults, switches. */
export function cellTable(cells: CellResult[]): string[] {
  const lines = [
    "| -M | clients | pooler | user µs/txn | kernel µs/txn | total µs/txn | tps | minor faults/txn | vol. / invol. switches/txn | runs | max load1 / others runnable |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const c of cells) {
    for (const p of POOLERS) {
      const x = c.poolers[p];
      if (!x) {
        lines.push(`| ${c.protocol} | ${c.clients} | ${POOLER_LABEL[p]} | skipped: ${c.skipped[p] ?? "no runs"} | | | | | | | |`);
        continue;
      }
      lines.push(
        `| ${c.protocol} | ${c.clients} | ${POOLER_LABEL[p]} | ${f1(x.userUs)} | ${f1(x.kernelUs)} | ${f1(x.totalUs)} | ${int(x.tps)} | ${f2(x.minorFaultsPerTxn)} | ${f2(x.voluntarySwitchesPerTxn)} / ${f2(x.involuntarySwitchesPerTxn)} | ${x.runs} | ${x.load1Max.toFixed(2)} / ${x.othersMax.toFixed(1)} |`,
      );
    }
  }
  return lines;
}

/**
 * The split table: pgbun − PgBouncer = runtime's (pass-through − PgBouncer) + pgbun's own (pgbun − pass-through), and
 * pgbun's own = the least pooling on Bun (minipool − pass-through) + pgbun over the least pooler (pgbun − minipool).
 */
export function splitTable(cells: CellResult[]): string[] {
  const lines = [
    "| -M | clients | pgbun − PgBouncer user / kernel | runtime's user / kernel (pass-through − PgBouncer) | pgbun's own user / kernel (pgbun − pass-through) | of it, the least pooling on Bun (minipool − pass-through) | of it, pgbun over the least pooler (pgbun − minipool) | of that, pgbun's core with auth, pool, transaction-detection (minimal − minipool) | of that, the other default plugins (pgbun − minimal) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const uk = (x: UserKernel | null) => (x ? `${signed(x.user)} / ${signed(x.kernel)}` : "—");
  for (const c of cells) lines.push(`| ${c.protocol} | ${c.clients} | ${uk(c.split.gap)} | ${uk(c.split.runtime)} | ${uk(c.split.own)} | ${uk(c.split.pooling)} | ${uk(c.split.overPool)} | ${uk(c.split.core)} | ${uk(c.split.plugins)} |`);
  return lines;
}

/** System calls per transaction by pooler and protocol: every call seen at ≥ 0.01 per transaction, by any pooler. */
export function straceTable(profiles: StraceProfile[]): string[] {
  if (profiles.length === 0) return ["(no strace runs)"];
  const names = [...new Set(profiles.flatMap((p) => Object.entries(p.callsPerTxn).filter(([, v]) => v >= 0.01).map(([k]) => k)))].sort();
  const header = profiles.map((p) => `${p.pooler} -M ${p.protocol}`);
  const lines = [`| call | ${header.join(" | ")} |`, `| --- | ${profiles.map(() => "---:").join(" | ")} |`];
  for (const n of names) lines.push(`| ${n} | ${profiles.map((p) => (p.callsPerTxn[n] === undefined ? "0" : f2(p.callsPerTxn[n]))).join(" | ")} |`);
  lines.push(`| **all** | ${profiles.map((p) => f2(Object.values(p.callsPerTxn).reduce((a, b) => a + b, 0))).join(" | ")} |`);
  return lines;
}

/** CPU by thread name (median µs/txn) of one cell: where the extra threads' time goes. */
export function threadLines(cells: CellResult[]): string[] {
  const lines = ["| -M | clients | pooler | by thread: user / kernel µs/txn, context switches/txn (threads alive across the run) |", "| --- | ---: | --- | --- |"];
  for (const c of cells) {
    for (const p of POOLERS) {
      const x = c.poolers[p];
      if (!x) continue;
      const parts = Object.entries(x.threads)
        .sort((a, b) => b[1].userUs + b[1].kernelUs - a[1].userUs - a[1].kernelUs)
        .filter(([, v]) => v.userUs + v.kernelUs >= 0.05 || v.switches >= 0.01)
        .map(([k, v]) => `${k} ${f1(v.userUs)} / ${f1(v.kernelUs)}, ${f2(v.switches)} sw`);
      lines.push(`| ${c.protocol} | ${c.clients} | ${p} | ${parts.join(", ") || "—"} |`);
    }
  }
  return lines;
}

export function sockoptLines(s: SplitReport["sockopts"]): string[] {
  const lines: string[] = [];
  for (const p of POOLERS) {
    const o = s[p];
    if (!o) continue;
    const parts = Object.entries(o).map(([k, n]) => `\`${k}\` ×${n}`);
    lines.push(`- ${POOLER_LABEL[p]}: ${parts.join(", ") || "none"}`);
  }
  return lines;
}

/** latest.md: method, machine, the tables; `findings` is the written reading of the figures (none for a fresh run). */
export function renderSplit(r: SplitReport, findings: string[] = []): string {
  const o = r.options;
  return [
    "# Where each pooler's CPU per transaction goes: user and kernel",
    "",
    `Run ${r.started} – ${r.finished} by \`bun bench/cpu-split.ts --clients ${o.clients.join(",")} --protocols ${o.protocols.join(",")} --rounds ${o.rounds} --transactions ${o.transactions}\`.`,
    "",
    "## Method",
    "",
    `- One throwaway PostgreSQL ${r.machine.postgres} (pgbench -i -s 1), in front of it ${POOLERS.map((p) => POOLER_LABEL[p]).join(", ")}; transaction mode, pool 20 (the pass-through has a server per client). The least Bun pooler (bench/minipool.ts) does only what every transaction pooler must: it walks each message header both ways, takes a server for a client that has none and gives it back at ReadyForQuery 'I' once every Query and Sync sent is answered; no plugins, hooks, stats, timeouts or reset.`,
    `- Per cell: \`pgbench -n -S -M P -c C -j 2 -t ⌈${int(o.transactions)}/C⌉\`; an unrecorded warm-up run of ${int(o.warmupTransactions)} transactions per pooler first, then ${o.rounds} rounds, the pooler order rotating each round.`,
    `- The pooler's process tree's utime (user) and stime (kernel) from /proc/PID/stat before and after each run (${r.machine.clockTicks} ticks/s: one tick per process is ${f2(ticksToUs(1, r.machine.clockTicks, o.transactions))} µs/txn), minor faults (field 10), voluntary and involuntary context switches per thread (/proc/PID/task/*/status), the 1-minute load before each run. Figures are medians over the rounds, each its own median.`,
    `- Split: pgbun − PgBouncer = runtime's (pass-through − PgBouncer: what a Bun process that only relays bytes costs more) + pgbun's own (pgbun − pass-through), and pgbun's own = the least pooling on Bun (minipool − pass-through) + pgbun over the least pooler (pgbun − minipool), and that = pgbun's core with the plugins no pool can do without (pgbun-minimal − minipool) + the other default plugins (pgbun − pgbun-minimal). Differences of medians, so the parts add up to the gap.`,
    `- System calls: \`strace -c -f -p\` attached to each pooler's processes after the cells, for one run of ${int(o.straceTransactions)} transactions at ${o.straceClients} clients per protocol (strace slows the pooler: counts only, no times). Socket options: \`strace -f -e trace=setsockopt,getsockopt\` attached before each pooler's first client, so its client and server connections' set-up is seen.`,
    `- Kernel time by function: \`perf record -e cpu-clock -F 999 -g -p\` on each pooler's processes for one run of ${int(o.perfTransactions)} transactions at ${o.straceClients} clients per protocol, \`perf report --children\`: inclusive µs/txn of the kernel functions named (no hardware counters in this VM: cpu-clock only).`,
    `- Machine: ${r.machine.cpuModel}, ${r.machine.nproc} cores, Linux ${r.machine.kernel}, Bun ${r.machine.bun}, PgBouncer ${r.machine.pgbouncer}, ${r.machine.pgbench}. Shared with other work: the load column says how busy.`,
    "",
    ...(r.problems.length > 0 ? ["## Problems", "", ...r.problems.map((p) => `- ${p}`), ""] : []),
    "## CPU per transaction (medians)",
    "",
    ...cellTable(r.cells),
    "",
    "## The gap, split",
    "",
    ...splitTable(r.cells),
    "",
    ...(r.cells.some((c) => c.skipped.pgbouncer) ? [`-M prepared: ${PREPARED_SKIP}; only pgbun's own part is shown.`, ""] : []),
    "## System calls per transaction",
    "",
    ...straceTable(r.strace),
    "",
    "## Where the kernel time goes (perf, cpu-clock samples with call graphs)",
    "",
    ...perfTable(r.perf),
    "",
    "## Socket options set or read (from the first client on)",
    "",
    ...sockoptLines(r.sockopts),
    "",
    "## CPU by thread",
    "",
    ...threadLines(r.cells),
    "",
    ...(findings.length > 0 ? ["## What it says", "", ...findings, ""] : []),
  ].join("\n");
}
