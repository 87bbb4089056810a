// Instructions (valgrind callgrind Ir) per transaction of PgBouncer, the bare pass-through and pgbun variants.
// Usage: node_modules/.bin/bun bench/instructions.ts [--transactions N] [--clients N] [--protocol P] [--warm N] [--intervals N]
//        [--ablate] [--only ID,...] [--rev REV] [--annotate DIR] [--connect] [--scram] [--jit-log FILE]
//   --jit-log: pgbun under valgrind writes JSC's code log to FILE; `bun bench/jit-map.ts FILE DIR/callgrind.pgbun.1-01 N`
//   then names its JIT code per JS function (use with --annotate DIR; the logging itself adds Ir: compare within one run)
//        (its own PostgreSQL; each pooler under valgrind, then natively). --connect: pgbench -C, a new connection per
//        transaction, so Ir/txn is per login; --scram: both poolers with auth_type = scram-sha-256 (bench/login-files.ts).
import { appendFileSync, chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { waitForPort } from "../tests/harness/pgbun.ts";
import { freePort, harnessTempDir, type TestPostgres } from "../tests/harness/postgres.ts";
import { callgrindCommand, callgrindControl, formatIr, intervalsOf, irPerTransaction, latestDump, type Interval } from "./callgrind.ts";
import { cpuPerTransaction, sampleCpu } from "./cpu.ts";
import { pgClientEnv, startBenchPostgres, BENCH_DATABASE, type BenchPostgres } from "./database.ts";
import { postmasterPid, sampleLoad } from "./load.ts";
import { startMinipool, startPassthrough } from "./passthrough-process.ts";
import { loginFiles, type LoginFiles } from "./login-files.ts";
import { ablatedPlugins, pgbunConfig } from "./pgbun-process.ts";
import { startPgbouncer } from "./pgbouncer.ts";
import { cleanupAll, installSignalHandlers, killProcess, onCleanup, trackProcess } from "./processes.ts";
import type { Protocol } from "./pgbench.ts";
import { prepareBaselineTree } from "./worktree.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const DELIVER = resolve(import.meta.dir, "plugins", "deliver.ts");
const BUN = join(REPO_ROOT, "node_modules", ".bin", "bun");

/** How long a measured interval runs on after its transactions (see measureTarget). */
const SETTLE_MS = 2_000;
/** The longest idle interval (the baseline is pro rata, so it need not be as long as the run). */
const IDLE_MAX_MS = 8_000;

/** Default built-ins a pgbun variant may stand in for with a stub (auth, pool and transaction-detection always run). */
export const OPTIONAL_BUILTINS = [
  "parameter-tracking",
  "prepared-statements",
  "session-state",
  "pool-statement",
  "backoff",
  "health-check",
  "transaction-timeout",
  "routing",
  "stats",
  "admin",
  "metrics",
] as const;

export interface InstructionTarget {
  id: string;
  label: string;
  kind: "pgbouncer" | "passthrough" | "minipool" | "pgbun";
  /** pgbun: the built-ins' capabilities replaced by a stub (bench/plugins/stub.ts). */
  without?: string[];
  /** pgbun: plugins loaded besides (after the stub). */
  plus?: string[];
  /** Session mode: no hand-over per transaction (the difference to transaction mode is the hand-over's cost). */
  session?: boolean;
}

/** The targets of the phase: the three references, and with `ablate` pgbun without each optional built-in in turn. */
export function instructionTargets(ablate: boolean): InstructionTarget[] {
  const t: InstructionTarget[] = [
    { id: "pgbouncer", label: "PgBouncer", kind: "pgbouncer" },
    { id: "passthrough", label: "bare Bun pass-through", kind: "passthrough" },
    { id: "minipool", label: "least Bun pooler (bench/minipool.ts)", kind: "minipool" },
    { id: "pgbun-minimal", label: "pgbun, only auth + pool + transaction-detection", kind: "pgbun", without: [...OPTIONAL_BUILTINS] },
    { id: "pgbun", label: "pgbun, default plugins", kind: "pgbun" },
  ];
  if (ablate) {
    t.push({ id: "pgbouncer-session", label: "PgBouncer, session mode", kind: "pgbouncer", session: true });
    t.push({ id: "pgbun-session", label: "pgbun, default plugins, session mode", kind: "pgbun", session: true });
    t.push({ id: "pgbun-minimal-session", label: "pgbun, only auth + pool + transaction-detection, session mode", kind: "pgbun", without: [...OPTIONAL_BUILTINS], session: true });
    // the nine messages a -M extended transaction has that the default plugins' taps make the core deliver whole
    t.push({ id: "pgbun-minimal-deliver", label: "pgbun, only auth + pool + transaction-detection, plus no-op taps (bench/plugins/deliver.ts)", kind: "pgbun", without: [...OPTIONAL_BUILTINS], plus: [DELIVER] });
  }
  if (ablate) for (const b of OPTIONAL_BUILTINS) t.push({ id: `pgbun-no-${b}`, label: `pgbun, default plugins without ${b}`, kind: "pgbun", without: [b] });
  return t;
}

export interface InstructionOptions {
  transactions: number;
  clients: number;
  protocol: Protocol;
  /** Transactions run natively (no valgrind) for the CPU/txn beside the Ir: enough ticks to resolve 1 µs. */
  cpuTransactions: number;
  /**
   * Unmeasured transactions before the first interval (under valgrind): until the JIT's tiers are reached. After
   * 3,000 pgbun's intervals still fell (29k, 32k, 25k, 24k Ir/txn): the top tier comes later under valgrind.
   */
  warmTransactions: number;
  ablate: boolean;
  /** Measured intervals per target (each with its idle baseline); the table shows their median and each. */
  intervals: number;
  /** bin/pgbun.ts of another checkout (a worktree of a committed revision: bench/worktree.ts); this one's by default. */
  pgbunEntry?: string;
  /** Where to keep the callgrind dumps (for callgrind_annotate); a temporary directory when absent. */
  keepDir?: string;
  /** pgbench -C: a new connection per transaction (the cost of a login). */
  connect?: boolean;
  /** Both poolers with auth_type = scram-sha-256 and the user's SCRAM secret in auth_file (trust when absent). */
  scram?: LoginFiles;
  /** pgbun under valgrind appends JSC's code log (where each JS function's JIT code lies) here: bench/jit-map.ts. */
  jitLog?: string;
}

export interface InstructionRow {
  id: string;
  label: string;
  /** The main (event-loop) thread's Ir per transaction in each measured interval (two), idle baseline subtracted. */
  irPerTxn: number[];
  /** Every thread's (the JIT compiler's and the collector's helpers too): distorted by valgrind's slowdown. */
  allThreadsIrPerTxn: number[];
  /** Ir per second of the idle pooler's main thread (its timers), the baseline subtracted. */
  idleIrPerS: number | null;
  cpuUsPerTxn: number | null;
  load1: number[];
  error?: string;
}

interface PgbenchRun {
  protocol: Protocol;
  clients: number;
  transactions: number;
  connect?: boolean;
}

async function pgbench(db: BenchPostgres, port: number, o: PgbenchRun): Promise<number> {
  const perClient = Math.max(1, Math.round(o.transactions / o.clients));
  const args = ["-n", "-S", ...(o.connect ? ["-C"] : []), "-M", o.protocol, "-c", String(o.clients), "-j", "1", "-t", String(perClient), "-h", "127.0.0.1", "-p", String(port), "-U", db.pg.superuser, BENCH_DATABASE];
  const proc = trackProcess(Bun.spawn([db.pgbench, ...args], { env: pgClientEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const done = Number(/number of transactions actually processed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  if (code !== 0 || done !== perClient * o.clients) throw new Error(`pgbench ${args.join(" ")}: exit ${code}, ${done} transactions: ${(out + err).trim().slice(-400)}`);
  return done;
}

interface Running {
  pid: number;
  port: number;
  /** The OS user it runs as when not this process's (PgBouncer, when we are root). */
  as?: { uid: number; gid: number };
  stop(): Promise<void>;
}

async function startPgbunProcess(pg: TestPostgres, target: InstructionTarget, wrap: string[], entry: string, scram?: LoginFiles, jitLog?: string): Promise<Running> {
  const dir = await harnessTempDir("pgbun-ir");
  const port = await freePort();
  const variant = scram ? "scram" : target.session ? "session" : "plain";
  if (scram && target.session) throw new Error("--scram measures transaction mode only");
  const config = pgbunConfig(variant, pg, { poolSize: 20, maxClientConn: 1000, ...(scram ? { login: scram } : {}) }) as { pgbun: Record<string, unknown> };
  config.pgbun.listen_port = port;
  const plugins = ablatedPlugins(target.without ?? [], target.plus);
  if (plugins) config.pgbun.plugins = plugins;
  const file = join(dir, "pgbun.config.json");
  writeFileSync(file, JSON.stringify(config, null, 2));
  const out: string[] = [];
  const logJit = jitLog !== undefined && wrap.length > 0;
  const env = logJit ? { ...process.env, BUN_JSC_dumpDisassembly: "1", BUN_JSC_dumpDFGDisassembly: "1", BUN_JSC_dumpFTLDisassembly: "1" } : undefined;
  const proc = trackProcess(Bun.spawn([...wrap, BUN, entry, "start", "--config", file], { cwd: resolve(entry, "..", ".."), stdin: "ignore", stdout: "pipe", stderr: "pipe", ...(env ? { env } : {}) }));
  void (async () => {
    const d = new TextDecoder();
    for await (const c of proc.stderr) {
      const text = d.decode(c);
      if (logJit) appendFileSync(jitLog, text);
      if (out.length < 100) out.push(text);
    }
  })().catch(() => undefined);
  void (async () => {
    const d = new TextDecoder();
    for await (const c of proc.stdout) if (logJit) appendFileSync(jitLog, d.decode(c));
  })().catch(() => undefined);
  const ready = await Promise.race([waitForPort("127.0.0.1", port, 180_000).then(() => "up"), proc.exited.then(() => "exited")]);
  if (ready !== "up") throw new Error(`pgbun ${target.id} did not start: ${out.join("").slice(-800)}`);
  const stop = () => killProcess(proc, "SIGTERM", 20_000);
  onCleanup(stop);
  return { pid: proc.pid, port, stop };
}

async function startOne(db: BenchPostgres, target: InstructionTarget, wrap: string[], o: InstructionOptions): Promise<Running> {
  if (target.kind === "pgbouncer") {
    const b = await startPgbouncer("/usr/sbin/pgbouncer", db.pg, { poolMode: target.session ? "session" : "transaction", poolSize: 20, maxClientConn: 1000, wrap, ...(o.scram ? { scramAuthFile: o.scram.authFile } : {}) });
    const as = process.getuid?.() === 0 ? ownerOf(db.pg.dataDir) : undefined;
    return { pid: b.pid, port: b.port, ...(as ? { as } : {}), stop: () => killProcess(b.proc, "SIGTERM", 20_000) };
  }
  if (target.kind === "passthrough" || target.kind === "minipool") {
    const t = target.kind === "passthrough" ? await startPassthrough(db.pg, wrap) : await startMinipool(db.pg, 20, wrap);
    return { pid: t.proc.pid, port: t.port, stop: () => killProcess(t.proc, "SIGTERM", 20_000) };
  }
  return startPgbunProcess(db.pg, target, wrap, o.pgbunEntry ?? join(REPO_ROOT, "bin", "pgbun.ts"), o.scram, o.jitLog);
}

/** The owner of a file: PgBouncer runs as the OS user that owns PostgreSQL's data directory (bench/pgbouncer.ts). */
function ownerOf(path: string): { uid: number; gid: number } {
  const st = statSync(path);
  return { uid: st.uid, gid: st.gid };
}

/** The pid valgrind runs as: setpriv execs into valgrind, which keeps the pid, so the child's pid is it. */
async function intervalOf(p: Running, outFile: string, dir: string, base: string, work: () => Promise<unknown>): Promise<{ main: Interval; all: Interval }> {
  await callgrindControl(p.pid, "-z", p.as);
  const t0 = performance.now();
  await work();
  const wallMs = performance.now() - t0;
  await callgrindControl(p.pid, "-d", p.as);
  const dump = latestDump(dir, base);
  if (!dump) throw new Error(`no callgrind dump of ${outFile}`);
  return intervalsOf(dump, wallMs);
}

async function loadNow(db: BenchPostgres): Promise<number> {
  const pm = postmasterPid(db.pg.dataDir);
  return (await sampleLoad(pm === undefined ? [process.pid] : [process.pid, pm])).load1;
}

/** One target: under callgrind (warm, two measured intervals, each followed by an idle one), then natively for CPU/txn. */
export async function measureTarget(db: BenchPostgres, target: InstructionTarget, o: InstructionOptions): Promise<InstructionRow> {
  const row: InstructionRow = { id: target.id, label: target.label, irPerTxn: [], allThreadsIrPerTxn: [], idleIrPerS: null, cpuUsPerTxn: null, load1: [] };
  const dir = o.keepDir ?? (await harnessTempDir("callgrind", { forPostgres: true }));
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1777); // PgBouncer runs as the unprivileged OS user and writes its dumps here
  const base = `callgrind.${target.id}`;
  const outFile = join(dir, base);
  const run: PgbenchRun = { protocol: o.protocol, clients: o.clients, transactions: o.transactions, connect: o.connect === true };
  try {
    const p = await startOne(db, target, callgrindCommand(outFile), o);
    try {
      await pgbench(db, p.port, { ...run, transactions: o.warmTransactions }); // warm: JIT tiers reached, pool filled
      for (let i = 0; i < o.intervals; i++) {
        row.load1.push(await loadNow(db));
        let done = 0;
        // the interval runs on for SETTLE_MS after pgbench: work the transactions left behind (collection, sweeping)
        // is theirs; the idle interval that follows, as long, is the baseline of timers alone
        const busy = await intervalOf(p, outFile, dir, base, async () => {
          done = await pgbench(db, p.port, run);
          await Bun.sleep(SETTLE_MS);
        });
        const idle = await intervalOf(p, outFile, dir, base, () => Bun.sleep(Math.min(busy.main.wallMs, IDLE_MAX_MS)));
        row.idleIrPerS = (idle.main.ir * 1000) / idle.main.wallMs;
        row.irPerTxn.push(irPerTransaction(busy.main, idle.main, done) ?? NaN);
        row.allThreadsIrPerTxn.push(irPerTransaction(busy.all, idle.all, done) ?? NaN);
      }
    } finally {
      await p.stop();
    }
    const n = await startOne(db, target, [], o);
    try {
      await pgbench(db, n.port, { ...run, transactions: Math.min(o.cpuTransactions, 5000) });
      const before = sampleCpu(n.pid);
      const done = await pgbench(db, n.port, { ...run, transactions: o.cpuTransactions });
      row.cpuUsPerTxn = cpuPerTransaction(before, sampleCpu(n.pid), done)?.usPerTxn ?? null;
    } finally {
      await n.stop();
    }
  } catch (err) {
    row.error = err instanceof Error ? err.message : String(err);
  }
  return row;
}

export function median(xs: number[]): number | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** The phase's table: Ir/txn (both intervals), CPU/txn natively, and Ir/txn relative to PgBouncer and to the pass-through. */
export function instructionTable(rows: InstructionRow[], o: Pick<InstructionOptions, "clients" | "protocol" | "transactions" | "connect" | "scram">): string[] {
  // the median: a collection on the main thread lands in one interval and inflates it (seen: +5k Ir/txn)
  const mean = (r: InstructionRow) => median(r.irPerTxn);
  const ref = (id: string) => mean(rows.find((r) => r.id === id) ?? { irPerTxn: [] } as unknown as InstructionRow);
  const bouncer = ref("pgbouncer");
  const pass = ref("passthrough");
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? `${(a / b).toFixed(2)}×` : "–");
  const lines = [
    `Instructions per transaction (valgrind callgrind, the pooler's process, idle baseline subtracted): pgbench -S${o.connect ? " -C" : ""} -M ${o.protocol} -c ${o.clients} -t ${Math.round(o.transactions / o.clients)} per client${o.scram ? ", auth_type = scram-sha-256" : ""}; CPU/txn measured natively in the same phase`,
    "",
    "| pooler | main-thread Ir/txn, median (each interval) | vs PgBouncer | vs pass-through | all threads Ir/txn | idle Ir/s | CPU µs/txn (native) | load before |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const m = mean(r);
    if (r.error) lines.push(`| ${r.label} | failed: ${r.error.replace(/[|\n]/g, " ").slice(0, 200)} | | | | | | |`);
    else
      lines.push(
        `| ${r.label} | ${formatIr(m)} (${r.irPerTxn.map(formatIr).join(", ")}) | ${ratio(m, bouncer)} | ${ratio(m, pass)} | ${r.allThreadsIrPerTxn.map(formatIr).join(", ")} | ${formatIr(r.idleIrPerS)} | ${r.cpuUsPerTxn?.toFixed(1) ?? "–"} | ${r.load1.map((l) => l.toFixed(2)).join(", ")} |`,
      );
  }
  return lines;
}

export async function measureInstructions(db: BenchPostgres, o: InstructionOptions, log: (m: string) => void = () => {}): Promise<InstructionRow[]> {
  const rows: InstructionRow[] = [];
  for (const t of instructionTargets(o.ablate)) {
    const t0 = Date.now();
    const r = await measureTarget(db, t, o);
    rows.push(r);
    log(`${t.id}: ${r.error ? `failed: ${r.error.slice(0, 300)}` : `${r.irPerTxn.map(formatIr).join(", ")} Ir/txn, CPU ${r.cpuUsPerTxn?.toFixed(1)} µs/txn`} (${Math.round((Date.now() - t0) / 1000)} s)`);
  }
  return rows;
}

if (import.meta.main) {
  installSignalHandlers();
  const argv = process.argv.slice(2);
  const arg = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  // a login costs ~10 transactions: fewer of them resolve it as well, and 10,000 logins under valgrind take minutes
  const connect = argv.includes("--connect");
  const o: InstructionOptions = {
    transactions: Number(arg("--transactions") ?? (connect ? 500 : 2000)),
    clients: Number(arg("--clients") ?? 1),
    warmTransactions: Number(arg("--warm") ?? (connect ? 2000 : 10000)),
    protocol: (arg("--protocol") ?? "simple") as Protocol,
    cpuTransactions: Number(arg("--cpu-transactions") ?? (connect ? 5000 : 30000)),
    connect,
    ablate: argv.includes("--ablate"),
    intervals: Number(arg("--intervals") ?? 2),
    ...(arg("--annotate") ? { keepDir: resolve(arg("--annotate")!) } : {}),
    ...(arg("--jit-log") ? { jitLog: resolve(arg("--jit-log")!) } : {}),
  };
  const only = arg("--only")?.split(",");
  try {
    if (arg("--rev")) {
      const tree = await prepareBaselineTree(arg("--rev")!);
      o.pgbunEntry = tree.entry;
      console.error(`bench: pgbun from ${tree.label} (${tree.dir})`);
    }
    const db = await startBenchPostgres({ maxConnections: 200, scale: 1 });
    if (argv.includes("--scram")) o.scram = await loginFiles(db.pg);
    const rows: InstructionRow[] = [];
    for (const t of instructionTargets(o.ablate).filter((t) => !only || only.includes(t.id))) {
      const t0 = Date.now();
      const r = await measureTarget(db, t, o);
      rows.push(r);
      console.error(`bench: ${t.id}: ${r.error ?? r.irPerTxn.map(formatIr).join(", ")} (${Math.round((Date.now() - t0) / 1000)} s)`);
    }
    console.log(instructionTable(rows, o).join("\n"));
  } finally {
    await cleanupAll();
  }
}
