// Issue 14 item 4: pgbun workers = 1 vs 2 against one PgBouncer process when the pooler has a core of its own (taskset).
// Usage: node_modules/.bin/bun bench/workers-scaling.ts [--duration S] [--rounds N] [--clients 10,50] [--warmup S]
//        [--wait-quiet S] [--out DIR]   or: --render a.json,b.json [--out DIR] (earlier runs joined, nothing run)   (defaults: 8 s, 2 rounds, 10 and 50 clients, 2 s warm-ups, up to 60 s per cell)
// PostgreSQL, pgbench and this process run on core 0; the pooler on core 1 ("split"), or on cores 0,1 ("both").
// Take `mkdir /tmp/bench.lock` around a run (rmdir after). Writes DIR/latest.md and DIR/latest.json (bench/workers-report.ts).
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { cpuPerTransaction, clockTicksPerSecond, processTree, readOr, sampleCpu, ticksOf, treeThreads } from "./cpu.ts";
import { startBenchPostgres, type BenchPostgres } from "./database.ts";
import { postmasterPid, QUIET_OTHERS, QUIET_POLL_MS, sampleLoad } from "./load.ts";
import { runPgbench, type PgbenchSpec, type Protocol } from "./pgbench.ts";
import { ensurePgbouncer, pgbouncerVersion } from "./pgbouncer.ts";
import { cleanupAll, installSignalHandlers } from "./processes.ts";
import { startTarget, type Target } from "./targets.ts";
import type { TargetId } from "./cases.ts";
import {
  busyShares,
  mergeReports,
  parseCpuList,
  parseProcStat,
  renderMarkdown,
  summarizeCells,
  type CellRun,
  type Layout,
  type PoolerConfig,
  type ScalingReport,
} from "./workers-report.ts";

/** Both poolers' pool: the issue's transaction-mode cells (pgbun with 2 workers gives each worker 10). */
const POOL_SIZE = 20;
const SCALE = 10;
/** PostgreSQL's core (its postmaster, so every backend it forks), pgbench's and this process's. */
const PG_CORE = [0];
const LAYOUT_CPUS: Record<Layout, number[]> = { split: [1], both: [0, 1] };
/** All the --wait-quiet waits of one run together stop after this (a machine busy for minutes: measure, and say so). */
const WAIT_BUDGET_S = 180;
/** An instance idle for longer than this gets a short unrecorded run first (JIT, caches: see bench/run.ts). */
const REWARM_AFTER_MS = 30_000;

export const CONFIGS: PoolerConfig[] = [
  { key: "pgbouncer-split", layout: "split", pooler: "pgbouncer", workers: 1, target: "pgbouncer" },
  { key: "pgbun-w1-split", layout: "split", pooler: "pgbun", workers: 1, target: "pgbun" },
  { key: "pgbun-w2-split", layout: "split", pooler: "pgbun", workers: 2, target: "pgbun-workers2" },
  { key: "pgbouncer-both", layout: "both", pooler: "pgbouncer", workers: 1, target: "pgbouncer" },
  { key: "pgbun-w2-both", layout: "both", pooler: "pgbun", workers: 2, target: "pgbun-workers2" },
];

const log = (msg: string) => console.error(`workers-scaling: ${msg}`);
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

interface Options {
  durationS: number;
  rounds: number;
  clients: number[];
  protocols: Protocol[];
  warmupS: number;
  /** Longest wait before a cell for other work to stop (QUIET_OTHERS runnable threads, no /tmp/ir.lock); 0: none. */
  waitQuietS: number;
  outDir: string;
  /** --render a.json,b.json: no run; those runs' latest.json joined into one report (mergeReports). */
  render?: string[];
}

export function parseOptions(argv: string[]): Options {
  const o: Options = { durationS: 8, rounds: 2, clients: [10, 50], protocols: ["simple", "extended"], warmupS: 2, waitQuietS: 60, outDir: resolve(import.meta.dir, "results", "workers") };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const n = Number(value);
    if (flag === "--duration" && n >= 1) o.durationS = Math.round(n);
    else if (flag === "--rounds" && n >= 1) o.rounds = Math.round(n);
    else if (flag === "--warmup" && n >= 0) o.warmupS = Math.round(n);
    else if (flag === "--wait-quiet" && n >= 0) o.waitQuietS = Math.round(n);
    else if (flag === "--clients") o.clients = value.split(",").map(Number).filter((c) => Number.isInteger(c) && c > 0);
    else if (flag === "--out") o.outDir = resolve(value);
    else if (flag === "--render") o.render = value.split(",").map((f) => resolve(f));
    else throw new Error(`unknown or bad option ${flag} ${value}`);
    i++;
  }
  if (o.clients.length === 0) throw new Error("--clients: no client counts");
  return o;
}


/** Pins every thread of every process in `root`'s tree to `cpus` (children forked later inherit it). */
function pinTree(root: number, cpus: number[]): void {
  for (const pid of processTree(root)) {
    const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpus.join(","), String(pid)], { stdout: "ignore", stderr: "pipe" });
    if (r.exitCode !== 0 && existsSync(`/proc/${pid}`)) throw new Error(`taskset -a -p -c ${cpus.join(",")} ${pid} failed: ${r.stderr.toString().trim()}`);
  }
}

/** Threads in `root`'s tree whose allowed CPUs are not `cpus`, as "pid/tid: list" (empty when all are pinned right). */
function misPinned(root: number, cpus: number[]): string[] {
  const want = cpus.join(",");
  const wrong: string[] = [];
  for (const { pid, tid, dir } of treeThreads(root)) {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readOr(`${dir}/status`) ?? "");
    if (m && parseCpuList(m[1]!).join(",") !== want) wrong.push(`${pid}/${tid}: ${m[1]}`);
  }
  return wrong;
}

interface Instance {
  config: PoolerConfig;
  target: Target;
  lastRun: number;
}

/** Starts a pooler, waits for a pgbun supervisor's workers to exist, pins its tree to its layout's cores. */
async function startInstance(config: PoolerConfig, db: BenchPostgres, pgbouncer: string): Promise<Instance> {
  const target = await startTarget(config.target as TargetId, db.pg, pgbouncer, { poolSize: POOL_SIZE, maxClientConn: 1_000, widePoolSize: POOL_SIZE });
  const want = config.workers > 1 ? 1 + config.workers : 1;
  const deadline = Date.now() + 15_000;
  while (processTree(target.pid!).length < want) {
    if (Date.now() > deadline) throw new Error(`${config.key}: ${want - 1} workers did not appear within 15 s`);
    await Bun.sleep(100);
  }
  // the port answers once one worker listens: give the others time to bind theirs too
  if (config.workers > 1) await Bun.sleep(1_500);
  pinTree(target.pid!, LAYOUT_CPUS[config.layout]);
  return { config, target, lastRun: 0 };
}

/**
 * Waits up to `limitS` until no other work runs: at most QUIET_OTHERS runnable threads outside this benchmark's and
 * PostgreSQL's processes, and no callgrind run holding /tmp/ir.lock. The 1-minute load average is not waited for: this
 * benchmark's own back-to-back runs keep it near 2. Returns the seconds waited and whether it got quiet.
 */
async function waitForOthers(limitS: number, roots: number[]): Promise<{ waitedS: number; quiet: boolean }> {
  const started = Date.now();
  for (;;) {
    const s = await sampleLoad(roots);
    const quiet = s.othersRunnable <= QUIET_OTHERS && !existsSync("/tmp/ir.lock");
    const waitedS = (Date.now() - started) / 1000;
    if (quiet || waitedS + QUIET_POLL_MS / 1000 > limitS) return { waitedS, quiet };
    await Bun.sleep(QUIET_POLL_MS);
  }
}

const spec = (clients: number, protocol: Protocol, durationS: number): PgbenchSpec => ({ clients, protocol, script: "select-only", reconnect: false, durationS });

/** One measured pgbench run on `inst`: tps, the pooler's CPU (and each of its processes'), PostgreSQL's, per-core busy. */
async function measure(inst: Instance, db: BenchPostgres, s: PgbenchSpec, round: number, waitQuietS: number): Promise<CellRun> {
  const postmaster = postmasterPid(db.pg.dataDir);
  const roots = postmaster === undefined ? [process.pid] : [process.pid, postmaster];
  // with no wait left, one reading still says whether other work was running
  const wait = await waitForOthers(Math.max(0, waitQuietS), roots);
  const problems = misPinned(inst.target.pid!, LAYOUT_CPUS[inst.config.layout]);
  if (postmaster !== undefined) problems.push(...misPinned(postmaster, PG_CORE).map((w) => `PostgreSQL ${w}`));
  const load = await sampleLoad(roots);
  const irLock = existsSync("/tmp/ir.lock");
  const pids = processTree(inst.target.pid!);
  const perBefore = pids.map(ticksOf);
  const before = sampleCpu(inst.target.pid!);
  const pgBefore = postmaster === undefined ? null : sampleCpu(postmaster);
  const statBefore = parseProcStat(readOr("/proc/stat") ?? "");
  const t0 = performance.now();
  const r = await runPgbench(db.pgbench, s, inst.target.endpoint, 0, 60);
  const wallS = (performance.now() - t0) / 1000;
  const statAfter = parseProcStat(readOr("/proc/stat") ?? "");
  const after = sampleCpu(inst.target.pid!);
  const pgAfter = postmaster === undefined ? null : sampleCpu(postmaster);
  const hz = clockTicksPerSecond();
  const pooler = cpuPerTransaction(before, after, r.transactions);
  const pg = cpuPerTransaction(pgBefore, pgAfter, r.transactions);
  const died = inst.target.exitStatus();
  return {
    config: inst.config.key,
    clients: s.clients,
    protocol: s.protocol,
    round,
    ok: r.ok && !died && problems.length === 0,
    ...(r.error || died || problems.length > 0 ? { error: [r.error, died && `${inst.config.key} ${died}`, problems.length > 0 && `mis-pinned: ${problems.slice(0, 4).join("; ")}`].filter(Boolean).join("; ") } : {}),
    tps: r.tps,
    transactions: r.transactions,
    wallS,
    poolerSeconds: pooler?.seconds ?? null,
    poolerUsPerTxn: pooler?.usPerTxn ?? null,
    poolerResolutionUs: pooler?.resolutionUs ?? null,
    processSeconds: pids.map((pid, i) => (ticksOf(pid) - perBefore[i]!) / hz),
    postgresUsPerTxn: pg?.usPerTxn ?? null,
    coreBusy: busyShares(statBefore, statAfter, [0, 1]),
    load1: load.load1,
    othersRunnable: load.othersRunnable,
    irLock,
    waitedS: wait.waitedS,
    quiet: wait.quiet,
  };
}

async function main(o: Options): Promise<void> {
  const started = new Date();
  if (!existsSync("/sys/devices/system/cpu/cpu1")) throw new Error("this benchmark needs two cores (cpu0 and cpu1)");
  // this process and everything it starts (PostgreSQL's postmaster, pgbench, the poolers before their own pinning)
  pinTree(process.pid, PG_CORE);
  const loadAtStart = await sampleLoad([process.pid]);
  log(`load at start ${loadAtStart.load1.toFixed(2)}, ${loadAtStart.othersRunnable.toFixed(1)} runnable threads of other work`);
  const pgbouncer = await ensurePgbouncer();
  const pgbouncerVer = await pgbouncerVersion(pgbouncer);
  log(`starting PostgreSQL and pgbench -i -s ${SCALE}`);
  const db = await startBenchPostgres({ maxConnections: 300, scale: SCALE });
  const postmaster = postmasterPid(db.pg.dataDir);
  if (postmaster === undefined) throw new Error("no postmaster.pid");
  pinTree(postmaster, PG_CORE);
  const instances: Instance[] = [];
  for (const c of CONFIGS) {
    instances.push(await startInstance(c, db, pgbouncer));
    log(`${c.key}: pid ${instances.at(-1)!.target.pid}, ${processTree(instances.at(-1)!.target.pid!).length} process(es) pinned to ${LAYOUT_CPUS[c.layout].join(",")}`);
  }
  const cases = o.protocols.flatMap((protocol) => o.clients.map((clients) => ({ protocol, clients })));
  const runs: CellRun[] = [];
  const problems: string[] = [];
  let waited = 0;
  log(`${o.rounds} round(s) × ${instances.length} poolers × ${cases.length} cases of ${o.durationS} s`);
  for (let round = 0; round < o.rounds; round++) {
    const order = instances.map((_, i) => instances[(i + round) % instances.length]!);
    for (const inst of order) {
      if (o.warmupS > 0 && Date.now() - inst.lastRun > REWARM_AFTER_MS) await runPgbench(db.pgbench, spec(10, "simple", o.warmupS), inst.target.endpoint, 0, 30);
      for (const c of cases) {
        const r = await measure(inst, db, spec(c.clients, c.protocol, o.durationS), round + 1, Math.min(o.waitQuietS, WAIT_BUDGET_S - waited));
        waited += r.waitedS;
        inst.lastRun = Date.now();
        runs.push(r);
        if (!r.ok) problems.push(`round ${round + 1}, ${inst.config.key}, ${c.protocol} ${c.clients}c: ${r.error}`);
        const busy = r.coreBusy.map((b) => (b === null ? "?" : `${Math.round(b * 100)}%`)).join("/");
        log(`[${round + 1}/${o.rounds}] ${inst.config.key} ${c.protocol} ${c.clients}c: ${Math.round(r.tps ?? 0)} tps, ${r.poolerUsPerTxn?.toFixed(1) ?? "?"} µs/txn, cores 0/1 busy ${busy}, load ${r.load1.toFixed(2)}${r.waitedS >= 1 ? `, waited ${Math.round(r.waitedS)} s${r.quiet ? "" : " NOT QUIET"}` : ""}${r.ok ? "" : ` FAILED ${r.error}`}`);
        await Bun.sleep(300);
      }
    }
  }
  for (const inst of instances) await inst.target.stop();
  const report: ScalingReport = {
    date: started.toISOString(),
    command: `bun bench/workers-scaling.ts ${process.argv.slice(2).join(" ")}`.trim(),
    durationS: o.durationS,
    rounds: o.rounds,
    poolSize: POOL_SIZE,
    scale: SCALE,
    nproc: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(readOr("/proc/cpuinfo") ?? "")?.[1]?.trim() ?? "unknown",
    postgres: db.version,
    pgbouncer: pgbouncerVer,
    bun: Bun.version,
    loadAtStart: { load1: loadAtStart.load1, othersRunnable: loadAtStart.othersRunnable },
    configs: CONFIGS,
    cells: summarizeCells(CONFIGS, runs),
    runs,
    problems,
  };
  writeReport(o.outDir, report);
  log(`done in ${Math.round((Date.now() - started.getTime()) / 1000)} s`);
}

function writeReport(dir: string, report: ScalingReport): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, "latest.md"), renderMarkdown(report));
  log(`wrote ${join(dir, "latest.md")} and latest.json`);
}

if (import.meta.main) {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(errText(err));
    process.exit(2);
  }
  installSignalHandlers();
  let code = 0;
  try {
    if (opts.render) writeReport(opts.outDir, mergeReports(opts.render.map((f) => JSON.parse(readFileSync(f, "utf8")) as ScalingReport)));
    else await main(opts);
  } catch (err) {
    console.error(`workers-scaling: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    code = 1;
  } finally {
    await cleanupAll();
  }
  process.exit(code);
}
