// Benchmark entry: direct PostgreSQL vs PgBouncer vs pgbun under pgbench, pooler CPU per transaction, idle-client memory.
// Usage: node_modules/.bin/bun bench/run.ts [--quick] [--smoke] [--duration S] [--rounds N] [--idle N] [--clients N,N]
//        [--only GROUP,...] [--baseline-rev REV] [--out DIR]   (bench/args.ts: USAGE)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { SETTINGS } from "../plugin-sdk/index.ts";
import { parseArgs, type BenchOptions } from "./args.ts";
import { buildCases, COLUMNS, selectCases, targetsOf, type BenchCase, type Column, type TargetId } from "./cases.ts";
import { tpsChart } from "./chart.ts";
import { cpuPerTransaction, formatCpuUs, sampleCpu } from "./cpu.ts";
import { startBenchPostgres, type BenchPostgres } from "./database.ts";
import { notQuietMessage, postmasterPid, sampleLoad, waitForQuiet } from "./load.ts";
import { instructionTable, measureInstructions, type InstructionOptions } from "./instructions.ts";
import { cpuTicks, describeMachine } from "./machine.ts";
import { measureIdleMemory } from "./memory.ts";
import { runPgbench, type PgbenchResult, type PgbenchSpec } from "./pgbench.ts";
import { ensurePgbouncer, hasMaxPreparedStatements, pgbouncerVersion } from "./pgbouncer.ts";
import { NO_VERIFY_MODE, variantAvailable } from "./pgbun-process.ts";
import { cleanupAll, installSignalHandlers } from "./processes.ts";
import { buildTable, markdownDocument, markdownTable, type CaseOutcome, type MemoryOutcome, type ReportInput } from "./report.ts";
import { notApplicable, summarize, type CellSummary } from "./summary.ts";
import { isWideTarget, startTarget, type PoolerSettings, type Target } from "./targets.ts";
import { prepareBaselineTree, type BaselineTree } from "./worktree.ts";

/** Both poolers' settings; the session-wide targets (efficiency phase) get a pool of opts.efficiencyClients instead. */
const POOLER = { poolSize: 20, maxClientConn: 11_000 } as const;
const poolerSettings = (opts: BenchOptions, tree: BaselineTree | undefined): PoolerSettings => ({
  ...POOLER,
  widePoolSize: opts.efficiencyClients,
  ...(tree ? { baselineEntry: tree.entry } : {}),
});
/** Named statements each client of the realistic idle-memory test prepares after login (extended protocol). */
const IDLE_PREPARED = 5;
/** Connections PostgreSQL keeps for superusers, plus slack for our own psql calls. */
const RESERVED_CONNECTIONS = 10;
const FD_LIMIT = 65_536;

const log = (msg: string) => console.error(`bench: ${msg}`);
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

function nofileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return !m || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

/** Raises this process's open-file limit (inherited by PgBouncer, pgbun, pgbench and the idle connector). */
async function raiseFdLimit(): Promise<number> {
  if (nofileLimit() < FD_LIMIT && Bun.which("prlimit")) {
    const proc = Bun.spawn(["prlimit", `--pid=${process.pid}`, `--nofile=${FD_LIMIT}:${FD_LIMIT}`], { stdout: "ignore", stderr: "ignore" });
    await proc.exited;
  }
  return nofileLimit();
}

/** A failed run that never started, so a missing instance shows up in its cells. */
function notRun(error: string): PgbenchResult {
  return {
    ok: false,
    error,
    tps: null,
    latencyAvgMs: null,
    p99Ms: null,
    transactions: 0,
    failedTransactions: 0,
    samples: 0,
    connectMs: null,
    initialConnectMs: null,
    connectAllowanceS: 0,
    clientsServed: null,
    wallS: 0,
    command: "",
  };
}

/** A run in the progress log: tps, and the pooler's CPU per transaction when measured. */
function brief(r: PgbenchResult): string {
  const cpu = r.poolerCpu ? `, CPU ${formatCpuUs(r.poolerCpu.usPerTxn, r.poolerCpu.resolutionUs)} µs/txn` : "";
  return `${Math.round(r.tps ?? 0)} tps${cpu}`;
}

function logTail(text: string, lines = 5): string {
  return text.trim().split("\n").slice(-lines).join(" ⏎ ").slice(0, 600);
}

/**
 * Seconds to add to -T so the initial connections leave about durationS of transactions (pgbench 15 runs its -T clock
 * while connecting); 0 when they took under a tenth of the run. No transactions and no connection time printed
 * means connecting took the whole run.
 */
function connectRoomNeeded(r: PgbenchResult, spec: PgbenchSpec, allowance: number): number {
  if (r.initialConnectMs !== null) {
    const connectS = r.initialConnectMs / 1000;
    return connectS - allowance > 0.1 * spec.durationS ? Math.ceil(connectS * 1.3) : 0;
  }
  const starved = r.transactions === 0 && r.tps === null && !/hung/.test(r.error ?? "");
  return starved ? Math.ceil(Math.max(spec.durationS, spec.clients * 0.05, allowance * 2)) : 0;
}

/** An instance idle for longer than this gets a warm-up run again before its next measured run. */
const REWARM_AFTER_MS = 30_000;
/**
 * Servers a pool with a server per client is asked for at once while it fills (one step per warm-up run). Asked for
 * 1000 at once, PostgreSQL on 2 cores forked them so slowly that pgbun's logins hit server_connect_timeout (15 s)
 * and its pool stalled at 300 to 460 servers; PgBouncer opens one at a time anyway (3 to 12 a second here).
 */
const FILL_STEP = 100;
/** Seconds of warm-up runs such a pool gets to open all its servers (PgBouncer: 80 s for 1000 on a quiet machine). */
const fillLimitS = (clients: number) => Math.max(60, clients * 0.5);
/** How long the efficiency phase waits for a stopped pooler's backends to exit before it starts the next. */
const RELEASE_WAIT_MS = 30_000;

/** A case with a session-wide target in a column: run in the efficiency phase, after the rounds, not in them. */
const isWideCase = (c: BenchCase) => COLUMNS.some((col) => c.cells[col].kind === "run" && isWideTarget((c.cells[col] as { target: TargetId }).target));

class Bench {
  readonly targets = new Map<TargetId, Target>();
  readonly targetErrors = new Map<TargetId, string>();
  /** Targets this code cannot have (a pgbun without session_state = "verify"): their rows are n/a, not failed. */
  readonly unavailable = new Map<TargetId, string>();
  readonly runs = new Map<string, Record<Column, PgbenchResult[]>>();
  readonly baselines = new Map<string, PgbenchResult[]>();
  /** The 1-minute load average before each run. */
  readonly loadSamples: number[] = [];
  readonly problems: string[] = [];
  /** Seconds of -T each target and client count needs for its initial connections, learnt from earlier runs. */
  readonly connectAllowance = new Map<string, number>();
  /** Instances that had their warm-up run since they (re)started. */
  readonly warmed = new Set<TargetId>();
  /** When each instance last ran pgbench (ms): one idle for longer than REWARM_AFTER_MS is warmed again. */
  readonly lastRun = new Map<TargetId, number>();
  /** The case a warm-up runs (shortened to opts.warmupS); a session-wide target's fills its pool instead (see fill). */
  warmCase: BenchCase | undefined;
  readonly pooler: PoolerSettings;

  constructor(
    readonly opts: BenchOptions,
    readonly db: BenchPostgres,
    readonly pgbouncerBinary: string | null,
    tree: BaselineTree | undefined,
  ) {
    this.pooler = poolerSettings(opts, tree);
  }

  async start(id: TargetId): Promise<void> {
    try {
      this.targets.set(id, await startTarget(id, this.db.pg, this.pgbouncerBinary, this.pooler));
      this.targetErrors.delete(id);
      this.warmed.delete(id);
    } catch (err) {
      this.targets.delete(id);
      if (id === "pgbun-verify" && NO_VERIFY_MODE.test(errText(err))) {
        this.unavailable.set(id, 'n/a: this pgbun has no session_state = "verify" (its start-up refused the setting)');
        return log(`${id}: ${this.unavailable.get(id)!}; its rows are skipped`);
      }
      this.targetErrors.set(id, `${id} could not be started: ${errText(err)}`.slice(0, 800));
      log(this.targetErrors.get(id)!);
    }
  }

  private roots(): number[] {
    const postmaster = postmasterPid(this.db.pg.dataDir);
    return postmaster === undefined ? [process.pid] : [process.pid, postmaster];
  }

  /** --wait-quiet: waits for a quiet machine before a cell's run (and its warm-up); says loudly when none came. */
  private async waitQuiet(where: string): Promise<void> {
    if (!(this.opts.waitQuietS > 0)) return;
    const w = await waitForQuiet(this.opts.waitQuietS * 1000, () => sampleLoad(this.roots()));
    if (w.quiet) {
      if (w.waitedMs > 0) log(`${where}: quiet after ${Math.round(w.waitedMs / 1000)} s (load ${w.last.load1.toFixed(2)})`);
      return;
    }
    const msg = notQuietMessage(where, w);
    this.problems.push(msg);
    log(`⚠ ${msg}`);
  }

  /** pgbench with the pooler's CPU (its process tree's utime + stime) read right before and right after. */
  private async measure(target: Target, spec: PgbenchSpec, allowance: number, grace: number): Promise<PgbenchResult> {
    const load = await sampleLoad(this.roots());
    this.loadSamples.push(load.load1);
    const before = target.pid === undefined ? null : sampleCpu(target.pid);
    const result = await runPgbench(this.db.pgbench, spec, target.endpoint, allowance, grace);
    result.load = load;
    if (target.pid !== undefined) result.poolerCpu = cpuPerTransaction(before, sampleCpu(target.pid), result.transactions);
    return result;
  }

  /**
   * One measured pgbench run (an instance not yet warmed up since it started gets its warm-up first); a pooler that
   * died during it is reported in the run's error and restarted. `learn` false: a warm-up (no -T adjustment).
   */
  async runOn(id: TargetId, c: BenchCase, learn = true): Promise<PgbenchResult> {
    if (learn) await this.waitQuiet(`"${c.label}" on ${id}`);
    if (learn) await this.warm(id, c);
    const target = this.targets.get(id);
    if (!target) return notRun(this.targetErrors.get(id) ?? `${id} is not running`);
    const grace = c.spec.clients >= 200 ? 120 : 60;
    const key = `${id}:${c.spec.clients}`;
    let allowance = c.spec.reconnect ? 0 : (this.connectAllowance.get(key) ?? 0);
    let result = await this.measure(target, c.spec, allowance, grace);
    this.lastRun.set(id, Date.now());
    for (let retry = 0; retry < 2 && learn && !c.spec.reconnect && !target.exitStatus(); retry++) {
      const needed = connectRoomNeeded(result, c.spec, allowance);
      if (needed <= allowance) break;
      const took = result.initialConnectMs === null ? "the whole run" : `${(result.initialConnectMs / 1000).toFixed(1)} s`;
      log(`${id}, ${c.spec.clients} clients: connecting took ${took}; again with -T ${c.spec.durationS}+${needed}`);
      allowance = needed;
      this.connectAllowance.set(key, needed);
      result = await this.measure(target, c.spec, needed, grace);
      this.lastRun.set(id, Date.now());
    }
    const died = target.exitStatus();
    if (died) {
      const msg = `${id} ${died} during "${c.label}"; its last log lines: ${logTail(target.logs())}`;
      this.problems.push(msg);
      log(`${msg}; restarting it`);
      result.ok = false;
      result.error = `${msg}; ${result.error ?? ""}`;
      await this.start(id);
    }
    return result;
  }

  /**
   * A short unrecorded run (JIT, caches) on an instance that has not had one since it started, or that sat idle
   * for more than REWARM_AFTER_MS while other cases ran: a pooler used only by a late row (the plugin, workers
   * and reference rows) otherwise pays in its measured run for having been idle (measured: 10 µs/txn more).
   * A session-wide target is instead filled once on its case `c` (see fill).
   */
  private async warm(id: TargetId, c: BenchCase): Promise<void> {
    const wide = isWideTarget(id);
    const warm = wide ? c : this.warmCase;
    const idle = Date.now() - (this.lastRun.get(id) ?? 0);
    if (!warm || (this.warmed.has(id) && (wide || idle <= REWARM_AFTER_MS)) || !this.targets.has(id)) return;
    this.warmed.add(id);
    if (wide) return this.fill(id, warm);
    const r = await this.runOn(id, { ...warm, spec: { ...warm.spec, durationS: this.opts.warmupS } }, false);
    if (!r.ok) log(`warm-up of ${id} failed: ${(r.error ?? "").slice(0, 200)}`);
  }

  /**
   * Warm-up runs of a session-wide target's own case until one serves every client, its pool then holding a server
   * per client (kept: server_idle_timeout 0), as a long-running session pooler's are (else the measured run would
   * include forking a backend per client). Each run asks for at most FILL_STEP servers more than the pool holds.
   */
  private async fill(id: TargetId, c: BenchCase): Promise<void> {
    const total = c.spec.clients;
    const started = Date.now();
    let held = 0;
    let clients = Math.min(total, FILL_STEP);
    for (let runs = 1; this.targets.has(id); runs++) {
      const r = await this.runOn(id, { ...c, spec: { ...c.spec, clients, durationS: this.opts.warmupS } }, false);
      const served = r.clientsServed ?? clients;
      if (!r.ok) log(`warm-up of ${id} with ${clients} clients: ${served} served; ${(r.error ?? "").slice(0, 160)}`);
      if (served >= clients) held = clients;
      const took = Math.round((Date.now() - started) / 1000);
      if (served >= total) return log(`warm-up of ${id}: ${runs} run(s) (${took} s) until all ${total} clients got a server`);
      if (took > fillLimitS(total)) {
        const msg = `${id}: after ${runs} warm-up runs (${took} s) its pool held ${held} of ${total} servers, so it was measured with fewer (the rest of its clients wait)`;
        this.problems.push(msg);
        return log(msg);
      }
      if (served >= clients) clients = Math.min(total, clients + FILL_STEP);
    }
  }

  /** Warms every instance before round 1 (each pgbun variant, baselines and the pass-through included). */
  async warmUp(ids: TargetId[], cases: BenchCase[]): Promise<void> {
    this.warmCase = cases.find((c) => c.id === "tx-simple-10") ?? cases[0];
    for (const id of ids) if (this.warmCase) await this.warm(id, this.warmCase);
  }

  async rounds(cases: BenchCase[]): Promise<void> {
    for (const c of cases) {
      this.runs.set(c.id, { direct: [], pgbouncer: [], pgbun: [] });
      if (c.baseline) this.baselines.set(c.id, []);
    }
    for (let round = 0; round < this.opts.rounds; round++) {
      const order = COLUMNS.map((_, i) => COLUMNS[(i + round) % COLUMNS.length]!);
      for (const c of cases) {
        if (this.unavailableIn(c)) continue;
        const parts: string[] = [];
        if (c.baseline) {
          const r = await this.runOn(c.baseline, c);
          this.baselines.get(c.id)!.push(r);
          parts.push(`baseline ${c.baseline} ${r.ok ? brief(r) : "FAILED"}`);
          await Bun.sleep(300);
        }
        for (const col of order) {
          const cell = c.cells[col];
          if (cell.kind !== "run") continue;
          const r = await this.runOn(cell.target, c);
          this.runs.get(c.id)![col].push(r);
          parts.push(`${col} ${r.ok ? brief(r) : `FAILED (${(r.error ?? "").slice(0, 160)})`}`);
          await Bun.sleep(300);
        }
        log(`[round ${round + 1}/${this.opts.rounds}] ${c.label}: ${parts.join(", ")}`);
      }
    }
  }

  /**
   * The session-wide cases, after the rounds: every other instance stopped and its backends gone, then each column's
   * target alone: started, its pool filled (runOn's warm-up), measured opts.rounds times, stopped. PostgreSQL thus
   * holds one pool of a server per client at a time, and the rounds ran without those idle backends.
   */
  async efficiency(cases: BenchCase[]): Promise<void> {
    if (cases.length === 0) return;
    for (const id of [...this.targets.keys()]) await this.stop(id);
    await this.serversReleased();
    for (const c of cases) {
      this.runs.set(c.id, { direct: [], pgbouncer: [], pgbun: [] });
      for (const col of COLUMNS) {
        const cell = c.cells[col];
        if (cell.kind !== "run") continue;
        await this.start(cell.target);
        for (let round = 0; round < this.opts.rounds; round++) {
          const r = await this.runOn(cell.target, c);
          this.runs.get(c.id)![col].push(r);
          log(`[efficiency ${round + 1}/${this.opts.rounds}] ${c.label}: ${col} ${r.ok ? brief(r) : `FAILED (${(r.error ?? "").slice(0, 160)})`}`);
          await Bun.sleep(300);
        }
        await this.stop(cell.target);
        await this.serversReleased();
      }
    }
  }

  /** Why a case cannot run on this code (one of its targets is unavailable), or undefined. */
  unavailableIn(c: BenchCase): string | undefined {
    for (const col of COLUMNS) {
      const cell = c.cells[col];
      if (cell.kind === "run" && this.unavailable.has(cell.target)) return this.unavailable.get(cell.target);
    }
    return undefined;
  }

  /** Stops every instance (the instruction phase runs its own, one at a time); memory() starts fresh ones anyway. */
  async stopAll(): Promise<void> {
    for (const id of [...this.targets.keys()]) await this.stop(id);
  }

  /** Stops an instance, keeping what pgbun logged (see noteLogs). */
  private async stop(id: TargetId): Promise<void> {
    const t = this.targets.get(id);
    if (!t) return;
    this.noteLogs(t);
    this.targets.delete(id);
    await t.stop();
  }

  /** Waits (up to RELEASE_WAIT_MS) until PostgreSQL has no client backend but the one asking. */
  private async serversReleased(): Promise<void> {
    const sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";
    const deadline = Date.now() + RELEASE_WAIT_MS;
    for (;;) {
      let open: number;
      try {
        open = Number(await this.db.pg.psql(sql));
      } catch (err) {
        return log(`could not count PostgreSQL's backends: ${errText(err)}`);
      }
      if (open === 0) return;
      if (Date.now() > deadline) return log(`${open} backend(s) still open ${RELEASE_WAIT_MS / 1000} s after the poolers stopped`);
      await Bun.sleep(200);
    }
  }

  outcomes(cases: BenchCase[]): CaseOutcome[] {
    const byId = new Map(cases.map((c) => [c.id, c]));
    const summaryOf = (c: BenchCase, col: Column): CellSummary => {
      const cell = c.cells[col];
      if (cell.kind === "na") return notApplicable(cell.reason);
      if (cell.kind === "run" && this.unavailable.has(cell.target)) return notApplicable(this.unavailable.get(cell.target)!);
      if (cell.kind === "same-as") {
        const other = byId.get(cell.caseId);
        return other ? summaryOf(other, col) : notApplicable("n/a");
      }
      return summarize(this.runs.get(c.id)?.[col] ?? []);
    };
    return cases.map((c) => ({
      case: c,
      cells: Object.fromEntries(COLUMNS.map((col) => [col, summaryOf(c, col)])) as Record<Column, CellSummary>,
      runs: this.runs.get(c.id) ?? { direct: [], pgbouncer: [], pgbun: [] },
      ...(c.baseline && !this.unavailableIn(c) ? { baseline: summarize(this.baselines.get(c.id) ?? []), baselineRuns: this.baselines.get(c.id) ?? [] } : {}),
    }));
  }

  /**
   * A fresh pooler instance per measurement, so the RSS is not that of a process that just served the throughput
   * runs or the other kind of idle clients (memory a process freed may stay resident and be reused). `prepared` > 0:
   * each client prepares that many named statements after login; PgBouncer then gets pgbun's max_prepared_statements
   * (pgbun's targets run with its default), and one older than 1.21, which has no such setting, is n/a: in
   * transaction mode it passes the statements through, and the next client's Parse "s0" on a server fails (42P05).
   */
  async memory(id: "pgbouncer" | "pgbun" | "pgbun-rev", idle: number, prepared = 0): Promise<MemoryOutcome | null> {
    if (id === "pgbouncer" && !this.pgbouncerBinary) return { error: "pgbouncer is not available" };
    let settings = this.pooler;
    if (id === "pgbouncer" && prepared > 0) {
      const version = await pgbouncerVersion(this.pgbouncerBinary!);
      if (!hasMaxPreparedStatements(version)) {
        return { na: `n/a: PgBouncer ${version} has no max_prepared_statements (1.21+); in transaction mode the next client's Parse "s0" on a server fails with 42P05` };
      }
      settings = { ...this.pooler, pgbouncerMaxPreparedStatements: SETTINGS.max_prepared_statements.default };
    }
    let target: Target;
    try {
      target = await startTarget(id, this.db.pg, this.pgbouncerBinary, settings);
    } catch (err) {
      return { error: `could not start a fresh ${id}: ${errText(err)}` };
    }
    const what = prepared > 0 ? `idle clients after ${prepared} prepared statements each` : "idle clients";
    log(`memory: ${id} with ${idle.toLocaleString("en-US")} ${what}`);
    try {
      const r = await measureIdleMemory(target.pid!, target.endpoint, idle, prepared);
      const died = target.exitStatus();
      if (died) {
        r.ok = false;
        r.error = `${id} ${died} while holding idle clients; last log lines: ${logTail(target.logs())} ${r.error ?? ""}`;
      }
      return r;
    } catch (err) {
      return { error: `${errText(err)}${target.exitStatus() ? `; ${id} ${target.exitStatus()}: ${logTail(target.logs())}` : ""}` };
    } finally {
      await target.stop();
    }
  }

  /** pgbun runs at log_level warn and the pass-through logs nothing: anything they wrote is worth a line. */
  private noteLogs(t: Target): void {
    const text = t.logs().trim();
    if (!t.id.startsWith("pgbun-") && t.id !== "pgbun" && t.id !== "passthrough") return;
    if (text === "") return;
    const lines = text.split("\n");
    this.problems.push(`${t.id} logged ${lines.length} line(s) at warn or above, e.g.: ${lines.slice(0, 3).join(" ⏎ ").slice(0, 600)}`);
  }

  /** noteLogs of every instance still running (the stopped ones had theirs noted when they stopped). */
  collectPgbunLogs(): void {
    for (const t of this.targets.values()) this.noteLogs(t);
  }
}

function directCapacity(db: BenchPostgres, poolerTargets: number): number {
  return db.maxConnections - RESERVED_CONNECTIONS - poolerTargets * POOLER.poolSize;
}

async function main(opts: BenchOptions): Promise<void> {
  const startedAt = new Date();
  const ticksAtStart = cpuTicks();
  const fdLimit = await raiseFdLimit();
  if (fdLimit < opts.idleClients + 1_000) {
    log(`open-file limit ${fdLimit} is too low for ${opts.idleClients} idle clients; capping (run as root to raise it)`);
    opts.idleClients = Math.max(100, fdLimit - 1_000);
  }
  const problems: string[] = [];
  let pgbouncerBinary: string | null = null;
  let pgbouncerVer = "not available";
  try {
    pgbouncerBinary = await ensurePgbouncer();
    pgbouncerVer = await pgbouncerVersion(pgbouncerBinary);
  } catch (err) {
    problems.push(`PgBouncer unavailable, its column is empty: ${errText(err)}`);
    log(problems.at(-1)!);
  }

  let tree: BaselineTree | undefined;
  if (opts.baselineRev) {
    tree = await prepareBaselineTree(opts.baselineRev);
    log(`--baseline-rev ${opts.baselineRev}: ${tree.commit} checked out in ${tree.dir} (node_modules: ${tree.modules})`);
  }
  const all = buildCases({
    durationS: opts.durationS,
    clients: opts.clients,
    efficiencyClients: opts.efficiencyClients,
    smoke: opts.mode === "smoke",
    auditLog: variantAvailable("audit-log"),
    poolSize: POOLER.poolSize,
    ...(tree ? { baselineRev: tree.label } : {}),
  });
  const cases = selectCases(all, opts.only);
  if (cases.length === 0) throw new Error(`--only ${opts.only?.join(",")}: no such rows in a ${opts.mode} run`);
  const wideCases = cases.filter(isWideCase);
  const roundCases = cases.filter((c) => !isWideCase(c));
  const ids = [...targetsOf(roundCases)];
  const maxClients = Math.max(...cases.map((c) => c.spec.clients));
  // the most direct clients beside every pool of the rounds and the memory test's two; the efficiency phase's pool of
  // a server per client runs alone (everything else stopped), so it needs room only for itself
  const shared = Math.max(300, maxClients + RESERVED_CONNECTIONS + (ids.length + 2) * POOLER.poolSize);
  const maxConnections = wideCases.length > 0 ? Math.max(shared, opts.efficiencyClients + RESERVED_CONNECTIONS) : shared;
  log(`starting PostgreSQL (max_connections ${maxConnections}) and pgbench -i -s ${opts.scale}`);
  const db = await startBenchPostgres({ maxConnections, scale: opts.scale });

  const capacity = directCapacity(db, ids.length + 2);
  for (const c of cases) {
    if (c.cells.direct.kind === "run" && c.spec.clients > capacity) {
      c.cells.direct = { kind: "na", reason: `skipped: ${c.spec.clients} clients exceed PostgreSQL's max_connections (${db.maxConnections})` };
    }
  }

  const bench = new Bench(opts, db, pgbouncerBinary, tree);
  bench.problems.push(...problems);
  log(`starting ${ids.join(", ")}`);
  for (const id of ids) await bench.start(id);
  const runsOf = (list: BenchCase[]) =>
    list.reduce((n, c) => n + COLUMNS.filter((col) => c.cells[col].kind === "run").length + (c.baseline ? 1 : 0), 0) * opts.rounds;
  const runCount = runsOf(roundCases);
  const efficiency = wideCases.length > 0 ? `then the efficiency phase (${runsOf(wideCases)} runs, each pool filled first), ` : "";
  log(`${runCount} pgbench runs of ${opts.durationS} s (about ${Math.ceil((runCount * (opts.durationS + 2)) / 60)} min), ${efficiency}then memory`);
  await bench.warmUp(ids, roundCases);
  await bench.rounds(roundCases);
  await bench.efficiency(wideCases);
  bench.collectPgbunLogs();
  let instructions: string[] | undefined;
  if (opts.instructions) {
    // the poolers of the rounds are stopped first: the callgrind phase runs one pooler at a time, alone
    await bench.stopAll();
    const io: InstructionOptions = { transactions: 2000, clients: 1, protocol: "simple", cpuTransactions: 20_000, warmTransactions: 10_000, ablate: false, intervals: 3 };
    const rows = await measureInstructions(db, io, (m) => log(`instructions: ${m}`));
    instructions = instructionTable(rows, io);
  }
  const memory = {
    pgbouncer: await bench.memory("pgbouncer", opts.idleClients),
    pgbun: await bench.memory("pgbun", opts.idleClients),
    ...(tree ? { pgbunRev: await bench.memory("pgbun-rev", opts.idleClients) } : {}),
    // the same clients, each having prepared IDLE_PREPARED named statements after login, on fresh instances again
    prepared: {
      statements: IDLE_PREPARED,
      pgbouncer: await bench.memory("pgbouncer", opts.idleClients, IDLE_PREPARED),
      pgbun: await bench.memory("pgbun", opts.idleClients, IDLE_PREPARED),
      ...(tree ? { pgbunRev: await bench.memory("pgbun-rev", opts.idleClients, IDLE_PREPARED) } : {}),
    },
  };

  const machine = await describeMachine({
    started: startedAt,
    postgres: db.version,
    pgbench: db.pgbench,
    pgbouncer: pgbouncerVer,
    loadSamples: bench.loadSamples,
    ticksAtStart,
  });
  const input: ReportInput = {
    machine,
    settings: {
      mode: opts.mode,
      durationS: opts.durationS,
      rounds: opts.rounds,
      scale: opts.scale,
      poolSize: POOLER.poolSize,
      maxClientConn: POOLER.maxClientConn,
      idleClients: opts.idleClients,
      maxConnections: db.maxConnections,
      command: `bun bench/run.ts ${process.argv.slice(2).join(" ")}`.trim(),
      ...(opts.only ? { only: opts.only } : {}),
      ...(tree ? { baselineRev: tree.label } : {}),
    },
    cases: bench.outcomes(cases),
    memory,
    problems: bench.problems,
    ...(instructions ? { instructions } : {}),
  };
  writeResults(opts, input);
  log(`done in ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s`);
}

function writeResults(opts: BenchOptions, input: ReportInput): void {
  const { rows, notes } = buildTable(input);
  const table = markdownTable(rows);
  const doc = markdownDocument(input, table, notes);
  const suffix = opts.mode === "full" ? "" : `-${opts.mode}`;
  const date = input.machine.date.slice(0, 10);
  mkdirSync(opts.outDir, { recursive: true });
  const json = `${JSON.stringify({ ...input, table: rows, notes }, null, 2)}\n`;
  const svg = tpsChart(input.cases, `pgbench tps: direct vs PgBouncer vs pgbun (${date}, ${input.machine.nproc} cores)`);
  const files: Array<[string, string]> = [
    [`${date}${suffix}.md`, doc],
    [`${date}${suffix}.json`, json],
    [`latest${suffix}.md`, doc],
    [`latest${suffix}.json`, json],
    [`latest${suffix}.svg`, svg],
  ];
  for (const [name, text] of files) writeFileSync(join(opts.outDir, name), text);
  console.log(`\n${table}\n`);
  if (notes.length > 0 || input.problems.length > 0) console.log([...notes.map((n, i) => `[${i + 1}] ${n}`), ...input.problems].join("\n"));
  log(`wrote ${files.map(([n]) => relative(process.cwd(), join(opts.outDir, n))).join(", ")}`);
}

let opts: BenchOptions;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(errText(err));
  process.exit(2);
}
installSignalHandlers();
let code = 0;
try {
  await main(opts);
} catch (err) {
  console.error(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  code = 1;
} finally {
  await cleanupAll();
}
process.exit(code);
