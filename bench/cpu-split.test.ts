// bench/cpu-split.ts's pure parts: its options, medians, the runtime's / pgbun's own split, strace parsing, the tables.
import { describe, expect, test } from "bun:test";
import {
  cellTable,
  median,
  parseSockopts,
  parseSplitArgs,
  parseStraceSummary,
  perfProfile,
  perClient,
  poolerCell,
  PREPARED_SKIP,
  renderSplit,
  roundOrder,
  skipReason,
  splitOf,
  splitTable,
  straceTable,
  ticksToUs,
  type CellResult,
  type PoolerCell,
  type RunSample,
  type SplitReport,
} from "./cpu-split-report.ts";

const th = (userUs: number, kernelUs = 0, switches = 0) => ({ userUs, kernelUs, switches });

const run = (over: Partial<RunSample>): RunSample => ({
  pooler: "pgbun",
  clients: 10,
  protocol: "extended",
  round: 0,
  transactions: 100_000,
  tps: 20_000,
  userUs: 3,
  kernelUs: 17,
  totalUs: 20,
  resolutionUs: 0.1,
  minorFaultsPerTxn: 0.01,
  voluntarySwitchesPerTxn: 0.2,
  involuntarySwitchesPerTxn: 0.1,
  threads: { bun: th(2, 17) },
  load1: 1.2,
  othersRunnable: 0,
  ...over,
});

const cell = (userUs: number, kernelUs: number): PoolerCell => poolerCell([run({ userUs, kernelUs, totalUs: userUs + kernelUs })])!;

describe("cpu-split options", () => {
  test("defaults: 10 and 50 clients, simple and extended, 3 rounds, 100,000 transactions, a fifth of that to warm up", () => {
    const o = parseSplitArgs([], "/out");
    expect(o).toEqual({ clients: [10, 50], protocols: ["simple", "extended"], rounds: 3, transactions: 100_000, warmupTransactions: 20_000, straceTransactions: 20_000, straceClients: 10, perfTransactions: 50_000, outDir: "/out" });
  });

  test("flags override; client counts sorted and deduplicated; thousands separators accepted", () => {
    const o = parseSplitArgs(["--clients", "50,10,50", "--protocols", "prepared,simple", "--rounds", "1", "--transactions", "2,000", "--out", "/tmp/x"], "/out");
    expect(o).toMatchObject({ clients: [10, 50], protocols: ["prepared", "simple"], rounds: 1, transactions: 2000, warmupTransactions: 400, outDir: "/tmp/x" });
    expect(parseSplitArgs(["--transactions", "10", "--warmup-transactions", "3"], "/o").warmupTransactions).toBe(3);
  });

  test("bad input is refused with the reason", () => {
    expect(() => parseSplitArgs(["--protocols", "simple,batch"])).toThrow(/unknown batch/);
    expect(() => parseSplitArgs(["--rounds"])).toThrow(/--rounds needs a value/);
    expect(() => parseSplitArgs(["--rounds", "--clients", "10"])).toThrow(/--rounds needs a value/);
    expect(() => parseSplitArgs(["--transactions", "0"])).toThrow(/positive whole number/);
    expect(() => parseSplitArgs(["--clients", "1.5"])).toThrow(/positive whole number/);
    expect(() => parseSplitArgs(["--bogus"])).toThrow(/unknown argument --bogus/);
  });

  test("pgbench -t rounds up so all clients together do at least the total", () => {
    expect(perClient(100_000, 10)).toBe(10_000);
    expect(perClient(100_000, 30)).toBe(3334);
    expect(perClient(5, 50)).toBe(1);
  });
});

describe("cpu-split arithmetic", () => {
  test("ticks to µs per transaction: one 100 Hz tick over 100,000 transactions is 0.1 µs", () => {
    expect(ticksToUs(1, 100, 100_000)).toBeCloseTo(0.1, 10);
    expect(ticksToUs(250, 100, 100_000)).toBeCloseTo(25, 10);
  });

  test("medians: odd and even counts; each figure of a cell is its own median", () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const c = poolerCell([
      run({ userUs: 1, kernelUs: 30, tps: 10, threads: { bun: th(5, 1, 0.5), JITWorker: th(1) } }),
      run({ userUs: 2, kernelUs: 10, tps: 30, load1: 2.5, threads: { bun: th(7, 3, 0.1) } }),
      run({ userUs: 9, kernelUs: 20, tps: 20, threads: { bun: th(6, 2, 0.3), JITWorker: th(3) } }),
    ])!;
    expect(c).toMatchObject({ runs: 3, userUs: 2, kernelUs: 20, tps: 20, load1Max: 2.5 });
    // a thread missing from a run counts 0 there
    expect(c.threads).toEqual({ bun: th(6, 2, 0.3), JITWorker: th(1) });
    expect(poolerCell([])).toBeNull();
  });

  test("the gap is the runtime's part plus pgbun's own, in user and kernel separately", () => {
    const s = splitOf({ pgbouncer: cell(1, 14), passthrough: cell(2, 16), pgbun: cell(4.5, 17) });
    expect(s.runtime!.user).toBeCloseTo(1, 10);
    expect(s.runtime!.kernel).toBeCloseTo(2, 10);
    expect(s.own!.user).toBeCloseTo(2.5, 10);
    expect(s.own!.kernel).toBeCloseTo(1, 10);
    expect(s.gap!.user).toBeCloseTo(s.runtime!.user + s.own!.user, 10);
    expect(s.gap!.kernel).toBeCloseTo(s.runtime!.kernel + s.own!.kernel, 10);
  });

  test("without PgBouncer (-M prepared) only pgbun's own part exists", () => {
    expect(skipReason("pgbouncer", "prepared")).toBe(PREPARED_SKIP);
    expect(skipReason("pgbouncer", "extended")).toBeUndefined();
    expect(skipReason("pgbun", "prepared")).toBeUndefined();
    const s = splitOf({ passthrough: cell(2, 16), pgbun: cell(5, 18) });
    expect(s.gap).toBeNull();
    expect(s.runtime).toBeNull();
    expect(s.own).toEqual({ user: 3, kernel: 2 });
    expect(skipReason("minipool", "prepared")).toContain("bench/minipool.ts");
    expect(skipReason("minipool", "simple")).toBeUndefined();
  });

  test("pgbun's own part is the least pooling on Bun plus pgbun over the least pooler", () => {
    const s = splitOf({ pgbouncer: cell(1, 14), passthrough: cell(2, 16), minipool: cell(2.75, 16.5), pgbun: cell(4.5, 17) });
    expect(s.pooling!.user).toBeCloseTo(0.75, 10);
    expect(s.overPool!.user).toBeCloseTo(1.75, 10);
    expect(s.pooling!.user + s.overPool!.user).toBeCloseTo(s.own!.user, 10);
    expect(s.pooling!.kernel + s.overPool!.kernel).toBeCloseTo(s.own!.kernel, 10);
    expect(s.core).toBeNull(); // no pgbun-minimal cell
    const m = splitOf({ minipool: cell(2.75, 16.5), "pgbun-minimal": cell(3, 16), pgbun: cell(4.5, 17) });
    expect(m.core!.user).toBeCloseTo(0.25, 10);
    expect(m.plugins!.user).toBeCloseTo(1.5, 10);
    expect(m.core!.kernel + m.plugins!.kernel).toBeCloseTo(m.overPool!.kernel, 10);
    // without the least pooler's cell neither part exists
    const t = splitOf({ pgbouncer: cell(1, 14), passthrough: cell(2, 16), pgbun: cell(4.5, 17) });
    expect(t.pooling).toBeNull();
    expect(t.overPool).toBeNull();
  });

  test("rounds rotate the pooler order so each pooler goes first once in five rounds", () => {
    expect(roundOrder(0)).toEqual(["pgbouncer", "passthrough", "minipool", "pgbun-minimal", "pgbun"]);
    expect(roundOrder(1)).toEqual(["passthrough", "minipool", "pgbun-minimal", "pgbun", "pgbouncer"]);
    expect(roundOrder(4)).toEqual(["pgbun", "pgbouncer", "passthrough", "minipool", "pgbun-minimal"]);
    expect(roundOrder(5)).toEqual(roundOrder(0));
    expect(roundOrder(1, ["passthrough", "pgbun"])).toEqual(["pgbun", "passthrough"]);
  });
});

const STRACE_C = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 52.10    0.412000          10     40800           sendto
 40.01    0.316000           7     41200      1200 recvfrom
  6.00    0.047000           4     11000           epoll_pwait2
  0.10    0.000800           8       100           futex
------ ----------- ----------- --------- --------- ----------------
100.00    0.775800           8     93100      1200 total
`;

describe("cpu-split strace parsing", () => {
  test("strace -c: calls per transaction by call, errors column or not, no total row", () => {
    const s = parseStraceSummary(STRACE_C, 20_000);
    expect(s).toEqual({ sendto: 2.04, recvfrom: 2.06, epoll_pwait2: 0.55, futex: 0.005 });
  });

  test("socket options: distinct (call, level, option, value) with counts, strace -f pid prefixes and resumed halves", () => {
    const log = [
      "1234  setsockopt(12, SOL_TCP, TCP_NODELAY, [1], 4) = 0",
      "1234  setsockopt(13, SOL_TCP, TCP_NODELAY, [1], 4) = 0",
      "1235  setsockopt(14, SOL_SOCKET, SO_KEEPALIVE, [1], 4 <unfinished ...>",
      "1235  <... setsockopt resumed>) = 0",
      "getsockopt(9, SOL_SOCKET, SO_ERROR, [0], [4]) = 0",
    ].join("\n");
    expect(parseSockopts(log)).toEqual({ "setsockopt SOL_TCP TCP_NODELAY [1]": 2, "setsockopt SOL_SOCKET SO_KEEPALIVE [1]": 1, "getsockopt SOL_SOCKET SO_ERROR [0]": 1 });
  });
});

describe("cpu-split tables", () => {
  const cells: CellResult[] = [
    { clients: 10, protocol: "extended", poolers: { pgbouncer: cell(1, 14), passthrough: cell(2, 16), pgbun: cell(4.5, 17) }, skipped: {}, split: splitOf({ pgbouncer: cell(1, 14), passthrough: cell(2, 16), pgbun: cell(4.5, 17) }) },
    { clients: 10, protocol: "prepared", poolers: { passthrough: cell(2, 16), pgbun: cell(5, 15) }, skipped: { pgbouncer: PREPARED_SKIP }, split: splitOf({ passthrough: cell(2, 16), pgbun: cell(5, 15) }) },
  ];

  test("the main table has a row per pooler and cell, the skipped one saying why", () => {
    const t = cellTable(cells);
    expect(t).toHaveLength(2 + 10);
    expect(t[2]).toBe("| extended | 10 | PgBouncer 1.18 | 1.0 | 14.0 | 15.0 | 20,000 | 0.01 | 0.20 / 0.10 | 1 | 1.20 / 0.0 |");
    expect(t[4]).toContain("skipped: no runs"); // the least pooler's row of a cell without its runs
    expect(t[7]).toContain("skipped: PgBouncer 1.18 cannot run -M prepared");
  });

  test("the split table signs each part; without PgBouncer the gap and the runtime's part are dashes", () => {
    const t = splitTable(cells);
    expect(t[2]).toBe("| extended | 10 | +3.5 / +3.0 | +1.0 / +2.0 | +2.5 / +1.0 | — | — | — | — |");
    expect(t[3]).toBe("| prepared | 10 | — | — | +3.0 / −1.0 | — | — | — | — |");
  });

  test("the strace table lists each call any pooler makes, 0 where one does not, and a total", () => {
    const t = straceTable([
      { pooler: "pgbouncer", protocol: "simple", clients: 10, transactions: 10, callsPerTxn: { recvfrom: 2, epoll_wait: 0.5 } },
      { pooler: "pgbun", protocol: "simple", clients: 10, transactions: 10, callsPerTxn: { recvfrom: 2, epoll_pwait2: 1, madvise: 0.001 } },
    ]);
    expect(t).toEqual([
      "| call | pgbouncer -M simple | pgbun -M simple |",
      "| --- | ---: | ---: |",
      "| epoll_pwait2 | 0 | 1.00 |",
      "| epoll_wait | 0.50 | 0 |",
      "| recvfrom | 2.00 | 2.00 |",
      "| **all** | 2.50 | 3.00 |",
    ]);
  });

  test("the report names the method, the skip and the findings", () => {
    const r: SplitReport = {
      started: "a",
      finished: "b",
      machine: { cpuModel: "cpu", nproc: 2, kernel: "k", bun: "1.4.5", postgres: "15", pgbouncer: "1.18.0", pgbench: "pgbench 15", clockTicks: 100 },
      options: { clients: [10], protocols: ["extended", "prepared"], rounds: 3, transactions: 100_000, warmupTransactions: 20_000, straceTransactions: 20_000, straceClients: 10, perfTransactions: 50_000 },
      cells,
      strace: [],
      sockopts: { pgbun: { "setsockopt SOL_TCP TCP_NODELAY [1]": 4 } },
      perf: [],
      runs: [],
      problems: [],
    };
    const md = renderSplit(r, ["- finding one"]);
    expect(md).toContain("one tick per process is 0.10 µs/txn");
    expect(md).toContain("-M prepared: PgBouncer 1.18 cannot run");
    expect(md).toContain("`setsockopt SOL_TCP TCP_NODELAY [1]` ×4");
    expect(md).toContain("## What it says\n\n- finding one");
    expect(renderSplit(r)).not.toContain("## What it says");
  });
});

describe("cpu.ts user/kernel split", () => {
  test("a process's user and kernel ticks add up to ticksOf's figure; a gone process reads null", async () => {
    const { processSplit, sampleCpuSplit, ticksOf } = await import("./cpu.ts");
    const started = performance.now();
    while (performance.now() - started < 60) Math.sqrt(Math.random()); // some user time to read
    const s = processSplit(process.pid)!;
    const t = ticksOf(process.pid);
    expect(s.user).toBeGreaterThan(0);
    expect(Math.abs(s.user + s.kernel - t)).toBeLessThanOrEqual(1);
    expect(s.minorFaults).toBeGreaterThan(0);
    const tree = sampleCpuSplit(process.pid)!;
    expect(tree.processes).toBeGreaterThanOrEqual(1);
    expect(tree.userTicks).toBeGreaterThanOrEqual(s.user);
    expect(processSplit(2 ** 22 + 12345)).toBeNull();
    expect(sampleCpuSplit(2 ** 22 + 12345)).toBeNull();
  });
});

const PERF_REPORT = `# Samples: 500  of event 'cpu-clock'
# Event count (approx.): 1000000000
#
# Children      Self  Symbol
# ........  ........  ...............
#
    60.00%     1.00%  [k] __sys_sendto
    50.00%     5.00%  [k] tcp_sendmsg
    20.00%     0.00%  [.] 0x00007ff30f0f6c6c
    10.00%    10.00%  [.] Bun::something
     8.00%     8.00%  [k] _raw_spin_unlock_irqrestore
     4.00%     2.00%  [k] do_epoll_wait
     1.00%     0.50%  [k] do_syscall_64
     0.50%     0.50%  [k] entry_SYSCALL_64
`;

describe("cpu-split perf parsing", () => {
  test("a perf report's symbols and sampled CPU become µs/txn: user and kernel from self time, groups from inclusive time", () => {
    // 1 s of samples over 10,000 transactions: 100 µs/txn in all; 1% is 1 µs/txn
    const p = perfProfile("pgbun", "extended", 10, 10_000, PERF_REPORT);
    expect(p.userUs).toBeCloseTo(10, 6);
    expect(p.kernelUs).toBeCloseTo(17, 6);
    expect(p.groups["sendto (whole call: TCP, loopback delivery, peer wake-up)"]).toBeCloseTo(60, 6);
    expect(p.groups["  of which tcp_sendmsg"]).toBeCloseTo(50, 6);
    expect(p.groups["epoll wait (do_epoll_wait)"]).toBeCloseTo(4, 6);
    expect(p.groups["futex"]).toBe(0);
    // self rows add their symbols' self time, not the inclusive
    expect(p.groups["system call entry/exit (self)"]).toBeCloseTo(1, 6);
    expect(p.topKernel[0]).toEqual(["_raw_spin_unlock_irqrestore", expect.closeTo(8, 6)]);
    expect(p.topKernel).toHaveLength(6);
  });
});
