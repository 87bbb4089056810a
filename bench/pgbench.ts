// Runs one pgbench measurement against a host:port and reads tps, latency and p99 from its output and its logs.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { PoolerCpu } from "./cpu.ts";
import { BENCH_DATABASE, pgClientEnv, type BenchPostgres } from "./database.ts";
import type { LoadSample } from "./load.ts";
import { killProcess, trackProcess } from "./processes.ts";

export type Protocol = "simple" | "extended" | "prepared";
/** A pgbench script of our own (`-f`), written to the run's temporary directory. */
export interface CustomScript {
  /** A file name and a few words for the command line shown in the results. */
  name: string;
  /** The script: one SQL command per line (pgbench's format). */
  text: string;
}

/** pgbench's built-in -S, its default TPC-B-like script, or a custom one. */
export type Script = "select-only" | "tpcb-like" | CustomScript;

export interface PgbenchSpec {
  clients: number;
  protocol: Protocol;
  script: Script;
  /** `-C`: a new connection for every transaction. */
  reconnect: boolean;
  durationS: number;
  /** Log every transaction (not a sample): needed to count which clients got served. */
  logAll?: boolean;
  /** libpq's sslmode for pgbench's connections (PGSSLMODE); libpq's default (prefer) when absent. */
  sslmode?: "require";
}

export interface Endpoint {
  host: string;
  port: number;
  database: string;
  user: string;
}

export interface PgbenchResult {
  ok: boolean;
  /** Why the run does not count: pgbench exit code, aborted clients, failed transactions, a hang. */
  error?: string;
  tps: number | null;
  latencyAvgMs: number | null;
  p99Ms: number | null;
  transactions: number;
  failedTransactions: number;
  /** How many per-transaction log lines the p99 came from. */
  samples: number;
  /** pgbench's "average connection time" (only -C runs report it). */
  connectMs: number | null;
  /** pgbench's "initial connection time": opening all clients before the first transaction. */
  initialConnectMs: number | null;
  /** Seconds added to -T to make room for the initial connections. */
  connectAllowanceS: number;
  /** Distinct clients that finished a transaction within the timed run (logAll runs only; else null). */
  clientsServed: number | null;
  wallS: number;
  command: string;
  /** The pooler's CPU over the run (utime + stime, its whole process tree); absent for direct runs. */
  poolerCpu?: PoolerCpu | null;
  /** How busy the machine was right before the run (bench/load.ts). */
  load?: LoadSample;
}

/** Fraction of transactions written to the --log files; p99 needs a few thousand samples, not every line. */
function samplingRate(spec: PgbenchSpec): number {
  return spec.logAll || spec.reconnect || spec.clients >= 200 ? 1 : 0.1;
}

/**
 * `-T` is durationS plus `connectS`: pgbench's -T clock runs while its clients connect (see runPgbench). A custom
 * script is read from `scriptFile` (see writeScript).
 */
export function pgbenchArgs(spec: PgbenchSpec, target: Endpoint, logPrefix: string, connectS = 0, scriptFile?: string): string[] {
  const args = ["-n", "-c", String(spec.clients), "-j", String(Math.min(2, spec.clients)), "-T", String(spec.durationS + connectS)];
  args.push("-M", spec.protocol);
  if (spec.script === "select-only") args.push("-S");
  else if (typeof spec.script === "object") {
    if (scriptFile === undefined) throw new Error(`pgbench script ${spec.script.name}: no file written for it`);
    args.push("-f", scriptFile);
  }
  if (spec.reconnect) args.push("-C");
  args.push("--log", `--log-prefix=${logPrefix}`, `--sampling-rate=${samplingRate(spec)}`);
  args.push("-h", target.host, "-p", String(target.port), "-U", target.user, target.database);
  return args;
}

function num(text: string, re: RegExp): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

export interface LogStats {
  p99Ms: number | null;
  samples: number;
  /** Distinct clients with a transaction that ended within durationS of the first transaction's start. */
  clientsServed: number;
}

/**
 * From pgbench's per-transaction logs: the 99th percentile (nearest rank) of transaction time, in ms, and how many
 * clients got a transaction done within the run. In -C runs the logged time excludes the connection set-up.
 */
export function readTransactionLogs(dir: string, durationS: number): LogStats {
  const values: number[] = [];
  const ends: Array<[client: number, endUs: number]> = [];
  let firstStartUs = Infinity;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith("pgbench_log")) continue;
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      // client_id transaction_no time script_no time_epoch time_us [...]; time is "failed"/"skipped" when it did not run
      const f = line.split(" ", 6);
      const time = Number(f[2]);
      if (f.length < 6 || !Number.isFinite(time)) continue;
      values.push(time);
      const endUs = Number(f[4]) * 1e6 + Number(f[5]);
      ends.push([Number(f[0]), endUs]);
      firstStartUs = Math.min(firstStartUs, endUs - time);
    }
  }
  if (values.length === 0) return { p99Ms: null, samples: 0, clientsServed: 0 };
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1);
  const deadline = firstStartUs + durationS * 1e6;
  const served = new Set(ends.filter(([, end]) => end <= deadline).map(([client]) => client));
  return { p99Ms: sorted[rank]! / 1000, samples: sorted.length, clientsServed: served.size };
}

/** Writes a custom script into `dir` (the run's temporary directory); its path, or undefined for a built-in script. */
export function writeScript(spec: PgbenchSpec, dir: string): string | undefined {
  if (typeof spec.script !== "object") return undefined;
  const file = join(dir, `${spec.script.name}.sql`);
  writeFileSync(file, spec.script.text.endsWith("\n") ? spec.script.text : `${spec.script.text}\n`);
  return file;
}

/** First stderr lines worth reporting when a run failed (pgbench repeats the same error per client). */
function errorSummary(stderr: string): string {
  const lines = [...new Set(stderr.split("\n").map((l) => l.trim()).filter((l) => l.length > 0))];
  const interesting = lines.filter((l) => /error|abort|fatal|failed|could not/i.test(l));
  return (interesting.length > 0 ? interesting : lines).slice(0, 3).join(" | ").slice(0, 400);
}

/**
 * Runs pgbench; a run still going `graceS` after its duration is killed and reported as hung. pgbench 15 starts its
 * -T clock before its clients connect, so where connecting takes long (1000 direct clients: a fork each) -T gets
 * `connectS` more seconds, leaving about durationS of transactions; tps excludes the connection time either way.
 */
export async function runPgbench(pgbench: string, spec: PgbenchSpec, target: Endpoint, connectS = 0, graceS = 90): Promise<PgbenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "pgbun-bench-log-"));
  const script = writeScript(spec, dir);
  const args = pgbenchArgs(spec, target, join(dir, "pgbench_log"), connectS, script);
  // the temporary script path means nothing once the run is over: the results show the file's name
  const shown = args.map((a) => (a === script ? basename(a) : a));
  const command = `${spec.sslmode ? `PGSSLMODE=${spec.sslmode} ` : ""}pgbench ${shown.join(" ").replace(/ --log.*?--sampling-rate=\S+/, "")}`;
  const started = performance.now();
  try {
    const proc = trackProcess(Bun.spawn([pgbench, ...args], { cwd: dir, env: { ...pgClientEnv(), ...(spec.sslmode ? { PGSSLMODE: spec.sslmode } : {}) }, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      void killProcess(proc, "SIGINT", 5_000);
    }, (spec.durationS + connectS + graceS) * 1000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    const wallS = (performance.now() - started) / 1000;
    const transactions = num(out, /number of transactions actually processed: (\d+)/) ?? 0;
    const failedTransactions = num(out, /number of failed transactions: (\d+)/) ?? 0;
    const initialConnectMs = num(out, /initial connection time = ([\d.]+) ms/);
    const logs = readTransactionLogs(dir, spec.durationS + connectS - (initialConnectMs ?? 0) / 1000);
    const result: PgbenchResult = {
      ok: true,
      tps: num(out, /^tps = ([\d.]+)/m),
      latencyAvgMs: num(out, /latency average = ([\d.]+) ms/),
      p99Ms: logs.p99Ms,
      transactions,
      failedTransactions,
      samples: logs.samples,
      connectMs: num(out, /average connection time = ([\d.]+) ms/),
      initialConnectMs,
      connectAllowanceS: connectS,
      clientsServed: samplingRate(spec) === 1 ? logs.clientsServed : null,
      wallS,
      command,
    };
    const problems: string[] = [];
    if (hung) problems.push(`hung: still running ${graceS} s after its ${spec.durationS + connectS} s, killed`);
    else if (code !== 0) problems.push(`pgbench exit ${code}`);
    if (/aborted/i.test(err) || /aborted/i.test(out)) problems.push("clients aborted");
    if (failedTransactions > 0) problems.push(`${failedTransactions} failed transactions`);
    if (result.tps === null && !hung) problems.push(`no tps in the output (${transactions} transactions): ${out.trim().split("\n").slice(-3).join(" ⏎ ")}`);
    if (problems.length > 0) {
      result.ok = false;
      result.error = `${problems.join(", ")}: ${errorSummary(err)}`;
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** pgbench -t: transactions per client so that all clients together do at least `total`. */
export const perClient = (total: number, clients: number): number => Math.max(1, Math.ceil(total / clients));

/** A fixed-count run's outcome (runTransactions). */
export interface CountedRun {
  transactions: number;
  tps: number;
  wallS: number;
}

/**
 * `pgbench -n -S -M protocol -c clients -t ⌈total/clients⌉` against 127.0.0.1:port as the benchmark's superuser: a
 * fixed number of select-only transactions (the CPU-per-transaction tools: cpu-split, ab, perf-js). Throws on a
 * failed, aborted or empty run.
 */
export async function runTransactions(db: BenchPostgres, port: number, protocol: Protocol, clients: number, total: number): Promise<CountedRun> {
  const args = ["-n", "-S", "-M", protocol, "-c", String(clients), "-j", String(Math.min(2, clients)), "-t", String(perClient(total, clients))];
  args.push("-h", "127.0.0.1", "-p", String(port), "-U", db.pg.superuser, BENCH_DATABASE);
  const started = performance.now();
  const proc = trackProcess(Bun.spawn([db.pgbench, ...args], { env: pgClientEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const wallS = (performance.now() - started) / 1000;
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  if (code !== 0 || transactions === 0 || failed > 0 || /aborted/i.test(out + err)) {
    throw new Error(`pgbench ${args.join(" ")} failed (exit ${code}, ${transactions} transactions, ${failed} failed): ${err.trim().split("\n").slice(0, 3).join(" | ")}`);
  }
  return { transactions, tps: Number(/^tps = ([\d.]+)/m.exec(out)?.[1] ?? transactions / wallS), wallS };
}
