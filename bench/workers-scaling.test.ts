// The workers benchmark's pure helpers: /proc/stat busy shares, CPU lists, cell medians, the core-count prediction, options.
import { describe, expect, test } from "bun:test";
import { CONFIGS, parseOptions } from "./workers-scaling.ts";
import { busyShares, mergeReports, modelFor, parseCpuList, parseProcStat, predict, renderMarkdown, summarizeCells, type CellRun, type ScalingReport } from "./workers-report.ts";

const STAT_A = `cpu  300 0 100 1000 0 0 0 0 0 0
cpu0 100 0 50 500 0 0 0 0 0 0
cpu1 200 5 50 500 10 0 5 0 40 0
intr 12345`;
const STAT_B = `cpu  600 0 200 1100 0 0 0 0 0 0
cpu0 130 0 60 560 0 0 0 0 0 0
cpu1 290 5 60 500 10 0 5 0 80 0`;

function run(config: string, over: Partial<CellRun> = {}): CellRun {
  return {
    config,
    clients: 10,
    protocol: "simple",
    round: 1,
    ok: true,
    tps: 30_000,
    transactions: 240_000,
    wallS: 8,
    poolerSeconds: 4,
    poolerUsPerTxn: 16,
    poolerResolutionUs: 0.04,
    processSeconds: [4],
    postgresUsPerTxn: 20,
    coreBusy: [0.9, 0.5],
    load1: 1,
    othersRunnable: 0,
    irLock: false,
    waitedS: 0,
    quiet: true,
    ...over,
  };
}

describe("per-core busy time", () => {
  test("reads the cpuN lines only, guest time not counted twice, idle and iowait as not busy", () => {
    const a = parseProcStat(STAT_A);
    expect([...a.keys()]).toEqual([0, 1]);
    expect(a.get(0)).toEqual({ busy: 150, total: 650 });
    // user 200 + nice 5 + system 50 + softirq 5 busy; idle 500 + iowait 10; guest 40 ignored (already in user)
    expect(a.get(1)).toEqual({ busy: 260, total: 770 });
  });

  test("busy share between two readings, per core; null for a core not read or no ticks passed", () => {
    const shares = busyShares(parseProcStat(STAT_A), parseProcStat(STAT_B), [0, 1, 2]);
    expect(shares[0]).toBeCloseTo(40 / 100); // 40 busy ticks of 100
    expect(shares[1]).toBe(1); // 100 busy of 100: saturated
    expect(shares[2]).toBeNull();
    expect(busyShares(parseProcStat(STAT_A), parseProcStat(STAT_A), [0])).toEqual([null]);
  });

  test("kernel CPU lists", () => {
    expect(parseCpuList("1")).toEqual([1]);
    expect(parseCpuList("0-1")).toEqual([0, 1]);
    expect(parseCpuList("0,2-4,3\n")).toEqual([0, 2, 3, 4]);
  });
});

describe("cells", () => {
  test("medians over the runs that counted; a failed run counts in runs, not in the figures", () => {
    const runs = [
      run("pgbun-w2-split", { tps: 28_000, processSeconds: [0.01, 1.6, 2.4], poolerSeconds: 4 }),
      run("pgbun-w2-split", { tps: 32_000, processSeconds: [0.01, 2.0, 2.0], poolerSeconds: 4.4, round: 2 }),
      run("pgbun-w2-split", { ok: false, tps: 1, round: 3, load1: 3.2, irLock: true, quiet: false }),
    ];
    const [c] = summarizeCells(CONFIGS, runs);
    expect(c!.runs).toBe(3);
    expect(c!.okRuns).toBe(2);
    expect(c!.tps).toBe(30_000);
    expect(c!.poolerCores).toBeCloseTo(4.2 / 8);
    // 90 % of core 0 over 8 s for 240,000 transactions: 30 µs each (core 0 could not go past 33,333 tps)
    expect(c!.core0UsPerTxn).toBeCloseTo(30);
    // per process, each position's median, largest first: the supervisor last
    expect(c!.processCores.map((x) => Number(x.toFixed(3)))).toEqual([0.275, 0.225, 0.001]);
    // the load and lock of every run, failed ones too: they describe the conditions
    expect(c!.load1Max).toBe(3.2);
    expect(c!.irLock).toBe(true);
    expect(c!.notQuiet).toBe(1);
  });
});

describe("prediction", () => {
  const m = { pgbouncerUs: 16, pgbunWorkerUs: 18, postgresUs: 24 };

  test("PgBouncer stops at one core's worth however many cores; pgbun takes the split that serves most", () => {
    const p8 = predict(m, 8);
    expect(p8.pgbouncer.tps).toBeCloseTo(1e6 / 16); // 62,500: its one core full, PostgreSQL's 7 cores could do 291,667
    expect(p8.pgbouncer.bound).toBe("pooler");
    // k = 3: pooler 166,667, PostgreSQL 5 cores 208,333 → 166,667; k = 4: pooler 222,222, PostgreSQL 166,667 → 166,667 (not more)
    expect(p8.pgbun.workers).toBe(3);
    expect(p8.pgbun.tps).toBeCloseTo(3e6 / 18);
    expect(p8.pgbun.bound).toBe("pooler");
    const p2 = predict(m, 2);
    expect(p2.pgbouncer.bound).toBe("postgres"); // one PostgreSQL core: 41,667 < 62,500
    expect(p2.pgbun.tps).toBeCloseTo(1e6 / 24);
    expect(p2.pgbun.workers).toBe(1);
  });

  test("the model takes the larger of one worker alone and two sharing a core", () => {
    const cells = summarizeCells(CONFIGS, [
      run("pgbouncer-split", { poolerUsPerTxn: 15, postgresUsPerTxn: 22 }),
      run("pgbun-w1-split", { poolerUsPerTxn: 17, postgresUsPerTxn: 24 }),
      run("pgbun-w2-split", { poolerUsPerTxn: 19, postgresUsPerTxn: 23 }),
    ]);
    expect(modelFor(cells, "simple", 10)).toEqual({ pgbouncerUs: 15, pgbunWorkerUs: 19, postgresUs: 23 });
    expect(modelFor(cells, "extended", 10)).toBeNull();
  });

  test("the report has a row per cell and the prediction rows", () => {
    const runs = ["pgbouncer-split", "pgbun-w1-split", "pgbun-w2-split", "pgbouncer-both", "pgbun-w2-both"].map((k) => run(k));
    const report: ScalingReport = {
      date: "2026-12-01T17:00:00.000Z",
      command: "bun bench/workers-scaling.ts",
      durationS: 8,
      rounds: 1,
      poolSize: 20,
      scale: 10,
      nproc: 2,
      cpuModel: "x",
      postgres: "15",
      pgbouncer: "1.18.0",
      bun: "1.4.5",
      loadAtStart: { load1: 0.3, othersRunnable: 0 },
      configs: CONFIGS,
      cells: summarizeCells(CONFIGS, runs),
      runs,
      problems: [],
    };
    const md = renderMarkdown(report);
    expect(md.match(/^\| simple, 10 clients \| /gm)?.length).toBe(5 + 3);
    expect(md).toContain("| simple, 10 clients | pgbun, workers = 2, pooler on cores 0,1 | 30,000 | 16.0 |");
    expect(md).toContain("Every cell started at a 1-minute load of at most 1.5.");
  });
});

describe("joining runs", () => {
  const report = (date: string, load1: number, tps: number[]): ScalingReport => ({
    date,
    command: "bun bench/workers-scaling.ts",
    durationS: 8,
    rounds: tps.length,
    poolSize: 20,
    scale: 10,
    nproc: 2,
    cpuModel: "x",
    postgres: "15",
    pgbouncer: "1.18.0",
    bun: "1.4.5",
    loadAtStart: { load1, othersRunnable: 0 },
    configs: CONFIGS,
    cells: [],
    runs: tps.map((t, i) => run("pgbouncer-split", { tps: t, round: i + 1 })),
    problems: [],
  });

  test("rounds numbered on, medians over every run, the worst load at start, each run named", () => {
    const m = mergeReports([report("2026-12-01T17:34:00.000Z", 1.9, [10_000, 12_000]), report("2026-12-01T17:44:00.000Z", 4.1, [20_000, 22_000])]);
    expect(m.rounds).toBe(4);
    expect(m.runs.map((r) => r.round)).toEqual([1, 2, 3, 4]);
    expect(m.cells[0]!.tps).toBe(16_000);
    expect(m.loadAtStart.load1).toBe(4.1);
    expect(m.merged?.map((x) => x.load1)).toEqual([1.9, 4.1]);
    expect(renderMarkdown(m)).toContain("2 runs joined (medians over all 4 rounds): 17:34 UTC (load 1.90 before its first cell), 17:44 UTC");
    expect(() => mergeReports([report("a", 1, [1]), { ...report("b", 1, [1]), durationS: 2 }])).toThrow();
  });
});

describe("options", () => {
  test("defaults are the brief's full run; bad values are refused", () => {
    const o = parseOptions([]);
    expect([o.durationS, o.rounds, o.clients, o.protocols]).toEqual([8, 2, [10, 50], ["simple", "extended"]]);
    expect(parseOptions(["--duration", "2", "--rounds", "1", "--clients", "10"]).clients).toEqual([10]);
    expect(() => parseOptions(["--rounds", "0"])).toThrow();
    expect(() => parseOptions(["--duration"])).toThrow();
  });
});
