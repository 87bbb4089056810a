// Turns the benchmark's outcomes into the one results table, the results document and the raw JSON.
import { SETTINGS } from "../plugin-sdk/index.ts";
import { COLUMNS, type BenchCase, type CaseGroup, type Column } from "./cases.ts";
import { efficiencyRows, resetRows } from "./derived-rows.ts";
import { cpuText, int, mib, ms, okCpu, okTps, ratio } from "./format.ts";
import { loadMark, loadWarning } from "./load.ts";
import type { MachineInfo } from "./machine.ts";
import type { MemoryResult } from "./memory.ts";
import type { PgbenchResult } from "./pgbench.ts";
import type { CellSummary } from "./summary.ts";

export interface CaseOutcome {
  case: BenchCase;
  cells: Record<Column, CellSummary>;
  /** Raw runs per column, round by round (empty for n/a and same-as cells). */
  runs: Record<Column, PgbenchResult[]>;
  /** The case's baseline (plain pgbun run beside the variant), when it has one. */
  baseline?: CellSummary;
  baselineRuns?: PgbenchResult[];
}

/** na: a measurement this pooler cannot make (said in its cell), e.g. named statements on a PgBouncer before 1.21. */
export type MemoryOutcome = MemoryResult | { error: string } | { na: string };

/** The memory test's outcomes per pooler; pgbunRev: pgbun of --baseline-rev, when given. */
export interface MemoryOutcomes {
  pgbouncer: MemoryOutcome | null;
  pgbun: MemoryOutcome | null;
  pgbunRev?: MemoryOutcome | null;
}

export interface BenchSettings {
  mode: "full" | "quick" | "smoke";
  durationS: number;
  rounds: number;
  scale: number;
  poolSize: number;
  maxClientConn: number;
  idleClients: number;
  maxConnections: number;
  command: string;
  /** --only: the groups this run was limited to. */
  only?: CaseGroup[];
  /** --baseline-rev, as the before/after rows name it. */
  baselineRev?: string;
}

export interface ReportInput {
  machine: MachineInfo;
  settings: BenchSettings;
  cases: CaseOutcome[];
  /** Clients that only logged in; prepared: clients that prepared `statements` named statements after login. */
  memory: MemoryOutcomes & { prepared?: MemoryOutcomes & { statements: number } };
  /** Problems outside any one cell: an instance that did not start, a pgbun crash, warnings in its log. */
  problems: string[];
  /** --instructions: the instruction-count phase's table (bench/instructions.ts instructionTable). */
  instructions?: string[];
}

export interface TableRow {
  label: string;
  cells: Record<Column, string>;
  ratioPgbouncer: string;
  ratioDirect: string;
}

/** Collects failure details under numbered notes; cells refer to them as [n]. */
class Notes {
  readonly list: string[] = [];
  add(text: string): number {
    const at = this.list.indexOf(text);
    if (at >= 0) return at + 1;
    this.list.push(text);
    return this.list.length;
  }
}

/** Above this share of CPU time taken by the hypervisor the run is not a quiet machine's, whatever the load says. */
export const STEAL_WARNING = 0.02;

/** The header's words on steal time: the share, and a loud warning above STEAL_WARNING. */
export function stealNote(steal: number | null | undefined): string {
  if (steal === null || steal === undefined) return "";
  const pct = `${(steal * 100).toFixed(1)} %`;
  return steal > STEAL_WARNING
    ? ` **⚠ CPU steal ${pct}: the hypervisor gave that share of the machine's CPU time to other virtual machines during the run; every figure is lowered and scattered by it.**`
    : ` CPU steal (time the hypervisor gave to other virtual machines) during the run: ${pct}.`;
}

function tpsCell(s: CellSummary, where: string, notes: Notes): string {
  if (s.status === "na") return s.notes[0] ?? "n/a";
  if (s.status === "failed") return `FAILED [${notes.add(`${where}: ${s.notes.join(" / ")}`)}]`;
  const connect = s.connectMs === null ? "" : `, connect ${ms(s.connectMs)} ms`;
  const cpu = cpuText(s) === null ? "" : `, CPU ${cpuText(s)}`;
  const text = `${int(s.tps ?? 0)} tps (avg ${ms(s.latencyAvgMs)} ms, p99 ${ms(s.p99Ms)} ms${connect}${cpu})${loadMark(s.load)}`;
  if (s.status === "partial") return `${text}, ${s.failedRuns}/${s.runs} runs FAILED [${notes.add(`${where}: ${s.notes.join(" / ")}`)}]`;
  return text;
}

/** The tps ratio, followed by the CPU-per-transaction ratio when both sides measured it. */
function tpsAndCpuRatio(pgbun: CellSummary, other: CellSummary): string {
  const tps = ratio(okTps(pgbun), okTps(other));
  const a = okCpu(pgbun);
  const b = okCpu(other);
  return a === null || b === null ? tps : `${tps} (CPU/txn ${ratio(a, b)})`;
}

/** "(0.57× of plain pgbun run beside it: 10,006 tps, CPU 36 µs/txn; CPU/txn 1.61×)" */
function baselineNote(o: CaseOutcome & { baseline: CellSummary }): string {
  const base = okTps(o.baseline);
  const name = o.case.baselineName ?? o.case.baseline ?? "baseline";
  if (base === null) return ` (${name} run beside it failed)`;
  const cpu = cpuText(o.baseline);
  const cpuRatio = okCpu(o.cells.pgbun) !== null && okCpu(o.baseline) !== null ? `; CPU/txn ${ratio(okCpu(o.cells.pgbun), okCpu(o.baseline))}` : "";
  return ` (${ratio(okTps(o.cells.pgbun), base)} of ${name} run beside it: ${int(base)} tps${cpu === null ? "" : `, CPU ${cpu}`}${cpuRatio}${loadMark(o.baseline.load)})`;
}

function caseRows(outcomes: CaseOutcome[], notes: Notes): TableRow[] {
  const rows: TableRow[] = [];
  for (const o of outcomes) {
    const cells = {} as Record<Column, string>;
    for (const col of COLUMNS) cells[col] = tpsCell(o.cells[col], `${col}, ${o.case.label}`, notes);
    const label = o.baseline ? o.case.label + baselineNote({ ...o, baseline: o.baseline }) : o.case.label;
    rows.push({
      label,
      cells,
      ratioPgbouncer: tpsAndCpuRatio(o.cells.pgbun, o.cells.pgbouncer),
      ratioDirect: ratio(okTps(o.cells.pgbun), okTps(o.cells.direct)),
    });
  }
  return rows;
}

/**
 * One row for pooler CPU per transaction across the plain comparisons (rows without a baseline: both poolers as
 * configured, nothing else changed): the µs ranges and the median of the per-row pgbun ÷ PgBouncer ratios.
 */
function cpuRows(outcomes: CaseOutcome[]): TableRow[] {
  const pairs = outcomes
    .filter((o) => !o.baseline)
    .map((o) => ({ bouncer: okCpu(o.cells.pgbouncer), pgbun: okCpu(o.cells.pgbun) }))
    .filter((p): p is { bouncer: number; pgbun: number } => p.bouncer !== null && p.pgbun !== null && p.bouncer > 0);
  if (pairs.length === 0) return [];
  const ratios = pairs.map((p) => p.pgbun / p.bouncer).sort((a, b) => a - b);
  const mid = Math.floor(ratios.length / 2);
  const med = ratios.length % 2 === 1 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
  const range = (v: number[]) => {
    const [lo, hi] = [int(Math.min(...v)), int(Math.max(...v))];
    return lo === hi ? `${lo} µs/txn` : `${lo}–${hi} µs/txn`;
  };
  const spread = ratios.length > 1 ? ` (${ratios[0]!.toFixed(2)}× to ${ratios.at(-1)!.toFixed(2)}×)` : "";
  return [
    {
      label: `pooler CPU per transaction (utime + stime ÷ transactions), pgbun ÷ PgBouncer: median over the ${pairs.length} row${pairs.length === 1 ? "" : "s"} above where both ran`,
      cells: { direct: "n/a (no pooler)", pgbouncer: range(pairs.map((p) => p.bouncer)), pgbun: range(pairs.map((p) => p.pgbun)) },
      ratioPgbouncer: `${med.toFixed(2)}×${spread}`,
      ratioDirect: "—",
    },
  ];
}

function memoryRows(memory: ReportInput["memory"], idleClients: number, notes: Notes, rev: string | undefined): TableRow[] {
  const pick = (m: MemoryOutcome | null | undefined, f: (r: MemoryResult) => string, where: string): string => {
    if (!m) return "not measured";
    if ("na" in m) return m.na;
    if (!("requested" in m)) return `FAILED [${notes.add(`${where}: ${m.error}`)}]`;
    const value = f(m);
    return m.ok ? value : `${value}, FAILED [${notes.add(`${where}: ${m.error ?? "failed"}`)}]`;
  };
  const num = (m: MemoryOutcome | null | undefined, f: (r: MemoryResult) => number | null) => (m && "requested" in m ? f(m) : null);
  const n = idleClients.toLocaleString("en-US");
  const na = "n/a (no pooler)";
  const perClient = (r: MemoryResult) => r.perClientBytes;
  const perClientText = (r: MemoryResult) => (r.perClientBytes === null ? "?" : `${int(r.perClientBytes)} B`);
  const specs: Array<[string, (r: MemoryResult) => number | null, (r: MemoryResult) => string]> = [
    ["pooler RSS at rest (after a warm-up login)", (r) => r.rssBeforeKb, (r) => mib(r.rssBeforeKb)],
    [`pooler RSS holding ${n} idle logged-in clients`, (r) => r.rssAfterKb, (r) => `${mib(r.rssAfterKb)} (${int(r.opened)} open)`],
    [`memory per idle client ((after − before) / ${n})`, perClient, perClientText],
  ];
  const rows = specs.map(([label, value, text]) => ({
    label,
    cells: {
      direct: na,
      pgbouncer: pick(memory.pgbouncer, text, `pgbouncer, ${label}`),
      pgbun: pick(memory.pgbun, text, `pgbun, ${label}`),
    },
    ratioPgbouncer: ratio(num(memory.pgbun, value), num(memory.pgbouncer, value)),
    ratioDirect: "—",
  }));
  // the same test on a fresh pgbun of --baseline-rev: the before/after figure for idle clients
  const revRow = (label: string, m: MemoryOutcomes, text = perClientText): TableRow => ({
    label,
    cells: { direct: na, pgbouncer: "n/a (pgbun against pgbun)", pgbun: pick(m.pgbunRev, text, `pgbun at ${rev}, ${label}`) },
    ratioPgbouncer: `this tree ÷ ${rev}: ${ratio(num(m.pgbun, perClient), num(m.pgbunRev, perClient))}`,
    ratioDirect: "—",
  });
  const hasRev = rev !== undefined && memory.pgbunRev !== undefined;
  if (hasRev) rows.push(revRow(`memory per idle client, pgbun at ${rev} (a fresh instance, the same ${n} idle clients); ratio: this tree ÷ ${rev}`, memory));
  const p = memory.prepared;
  if (!p) return rows;
  // a realistic idle client: it ran extended-protocol queries, so the pooler also keeps its statement names
  const k = p.statements;
  const label =
    `memory per idle client after ${k} prepared statements (extended protocol: Parse "s0".."s${k - 1}", Bind, Execute, Sync once ` +
    `after login; (after − before) / ${n}). Kept per client beyond a login's: pgbun its name → statement map ` +
    "(pgbun:prepared-statements: query text, parameter types, its server statement); PgBouncer 1.21+ " +
    `(max_prepared_statements ${SETTINGS.max_prepared_statements.default}) a hash of its names → statements shared by query text. ` +
    "Statements prepared on the servers are per server, not per client";
  /** "15,782 B (+11,389 B for the statements)": beside the login-only figure of the same pooler. */
  const withStatements = (loginOnly: MemoryOutcome | null | undefined) => (r: MemoryResult) => {
    const base = num(loginOnly, perClient);
    if (r.perClientBytes === null || base === null) return perClientText(r);
    const extra = r.perClientBytes - base;
    return `${int(r.perClientBytes)} B (${extra < 0 ? "−" : "+"}${int(Math.abs(extra))} B for the statements)`;
  };
  rows.push({
    label,
    cells: {
      direct: na,
      pgbouncer: pick(p.pgbouncer, withStatements(memory.pgbouncer), `pgbouncer, ${label}`),
      pgbun: pick(p.pgbun, withStatements(memory.pgbun), `pgbun, ${label}`),
    },
    ratioPgbouncer: ratio(num(p.pgbun, perClient), num(p.pgbouncer, perClient)),
    ratioDirect: "—",
  });
  if (rev !== undefined && p.pgbunRev !== undefined) {
    const revLabel = `memory per idle client after ${k} prepared statements, pgbun at ${rev} (a fresh instance, the same ${n} clients); ratio: this tree ÷ ${rev}`;
    rows.push(revRow(revLabel, p, withStatements(memory.pgbunRev)));
  }
  return rows;
}

export function buildTable(input: ReportInput): { rows: TableRow[]; notes: string[] } {
  const notes = new Notes();
  const rows = [
    ...caseRows(input.cases, notes),
    ...cpuRows(input.cases),
    ...resetRows(input.cases),
    ...efficiencyRows(input.cases, input.settings.poolSize, input.settings.durationS),
    ...memoryRows(input.memory, input.settings.idleClients, notes, input.settings.baselineRev),
  ];
  return { rows, notes: notes.list };
}

const escapeCell = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");

export function markdownTable(rows: TableRow[]): string {
  const lines = ["| case | direct | pgbouncer | pgbun | pgbun/pgbouncer | pgbun/direct |", "| --- | --- | --- | --- | --- | --- |"];
  for (const r of rows) {
    const cells = [r.label, r.cells.direct, r.cells.pgbouncer, r.cells.pgbun, r.ratioPgbouncer, r.ratioDirect];
    lines.push(`| ${cells.map(escapeCell).join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Every measured cell (a column or a baseline with runs), named as the load warning lists them. */
function measuredCells(cases: CaseOutcome[]): Array<{ where: string; load: CellSummary["load"] }> {
  const out: Array<{ where: string; load: CellSummary["load"] }> = [];
  for (const o of cases) {
    for (const col of COLUMNS) if (o.runs[col].length > 0) out.push({ where: `${col}, "${o.case.label}"`, load: o.cells[col].load });
    if (o.baseline && (o.baselineRuns?.length ?? 0) > 0) out.push({ where: `${o.case.baselineName ?? "baseline"}, "${o.case.label}"`, load: o.baseline.load });
  }
  return out;
}

export function markdownDocument(input: ReportInput, table: string, notes: string[]): string {
  const m = input.machine;
  const s = input.settings;
  const warning = loadWarning(measuredCells(input.cases), m.nproc);
  const lines = [
    `# pgbun benchmark: ${m.date.slice(0, 10)} (${s.mode} run${s.only ? `, only ${s.only.join(", ")}` : ""})`,
    "",
    ...(warning.length > 0 ? [...warning, ""] : []),
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.ramGiB} GiB RAM, Linux ${m.kernel}. PostgreSQL ${m.postgres}, ${m.pgbench}, PgBouncer ${m.pgbouncer}, Bun ${m.bun}. Started ${m.date}. 1-minute load average before each run: median ${m.load.median}, min ${m.load.min}, max ${m.load.max}${m.load.max > m.nproc ? ` (above ${m.nproc}: other work on the machine lowered and scattered the numbers)` : ""}.${stealNote(m.steal)}`,
    "",
    `Method: \`${s.command}\`. pgbench \`-n -j 2 -T ${s.durationS}\` at scale ${s.scale}, ${s.rounds} round${s.rounds === 1 ? "" : "s"}; ` +
      "within a round each case runs direct, PgBouncer and pgbun back to back, in an order that rotates from round to round; " +
      "a cell is the median over rounds. pgbench 15 counts its clients' initial connections inside -T, so where they took " +
      "more than a tenth of the run (1000 direct clients fork 1000 backends) -T is lengthened by that time; tps excludes it. " +
      "Both poolers: transaction mode unless the row says session or statement, pool size " +
      `${s.poolSize} unless the row says otherwise, max_client_conn ${s.maxClientConn}, auth trust (PostgreSQL too, so direct logins pay no SCRAM). ` +
      `PostgreSQL max_connections = ${s.maxConnections}. Latency: pgbench's average, and p99 from its --log per-transaction files ` +
      "(in -C storm runs the logged time excludes the connection set-up, which pgbench reports separately as connect). " +
      "pgbench, PostgreSQL and the pooler share the same cores, so a pooler's own CPU use lowers everyone's throughput.",
    "",
    "CPU: every pooler cell ends with the pooler's CPU per transaction: utime + stime of its process tree (a pgbun supervisor " +
      "and its workers summed) read from /proc right before and right after pgbench, divided by the transactions pgbench processed, " +
      "median over rounds, rounded to what the clock ticks support (including the work of accepting pgbench's connections). " +
      "It counts only the pooler's own work, so on a loaded machine its pgbun ÷ PgBouncer ratio (in parentheses in the ratio column) " +
      "is much steadier than the tps ratio, which also moves with whatever else holds the cores.",
    "",
    "Ratios compare tps (higher: pgbun faster) in the throughput rows, transactions per server connection in the efficiency rows, " +
      "and RSS (lower: pgbun leaner) in the memory rows. Rows that name a run beside them measure pgbun against a baseline run " +
      "right before it in every round: the plugin rows against plain pgbun, the workers = 2 rows against pgbun with one worker, " +
      'the REFERENCE row a plain pgbun against bench/passthrough.ts, the verify rows pgbun with session_state = "verify" against plain pgbun' +
      `${s.baselineRev ? `, and the before/after rows this tree's plain pgbun against plain pgbun started from a git worktree of ${s.baselineRev} (same settings, same Bun)` : ""}. ` +
      "Both sides of such a row are instances of their own, started " +
      "together and used only in that row, so they sit idle and are warmed alike (an instance idle for minutes runs slower for a " +
      "while; compared with the main pgbun, busy in every row, an idle variant looked 10-20 % slower whatever it was). " +
      "bench/passthrough.ts, a bare Bun TCP pass-through (no protocol parsing, no pooling: each client " +
      "its own PostgreSQL connection, bytes forwarded as they arrive), the least any proxy on this runtime costs; it is not a pooler. " +
      "The direct cell of the session-mode rows, and the direct and PgBouncer cells of the plugin, workers and reference rows, " +
      "repeat the matching transaction-mode row (direct has no pool mode; those rows change only pgbun).",
    "",
    "End-of-session reset: two connection storms (-C: every pgbench transaction is a new client that runs the script and leaves), " +
      "one whose clients leave a LISTEN behind (the session pins its server; pgbun resets it with DISCARD ALL and checks it " +
      "before anyone else gets it) and one with the same two round trips and nothing left behind. PgBouncer in transaction mode " +
      "resets nothing (server_reset_query applies to session mode), so the next client gets the LISTEN: its cost row shows " +
      "LISTEN alone. The cost row divides the two storms' tps and subtracts their CPU per transaction, which in a -C run is " +
      "per connection.",
    "",
    "Connection efficiency: transactions per server connection = tps × run seconds ÷ server connections (a pooler's pool size, " +
      "capped at the client count; direct PostgreSQL one per client), transaction mode and statement mode (pgbench -S sends " +
      "no BEGIN, so each of its statements is a transaction there too) at the pool above against session mode " +
      "with a pool of one server connection per client, the only way session mode serves every client. Session mode at the " +
      "pool above serves only as many clients as it has servers, the others wait the whole run (its clients-served row), so its " +
      "transactions per server connection would say nothing about serving all of them. The one-server-per-client poolers " +
      "run after all the rounds, alone: every other pooler stopped first, then PgBouncer's and pgbun's in turn, each started, " +
      "its servers opened in warm-up runs of its own case with up to 100 more clients each (PostgreSQL forks too slowly on " +
      "2 cores for 1000 logins at once) and kept (server_idle_timeout 0), measured in as many runs as there are rounds " +
      "(median), and stopped before the next starts; so the rounds ran without their idle backends, and max_connections " +
      "leaves room for one such pool, not for one beside the others.",
    "",
    "Memory: each memory figure is a fresh instance of its pooler (one that served other clients may keep their freed memory " +
      "resident and lend it to the next), its RSS (VmRSS) read after a warm-up of 5 clients like the measured ones and again " +
      `while ${s.idleClients.toLocaleString("en-US")} such clients are open and idle, opened 200 at a time by bench/idle-connector.ts. ` +
      `Login-only clients stop at ReadyForQuery; the prepared-statement rows' clients then each run ${input.memory.prepared?.statements ?? 5} named statements as a ` +
      "driver does, in one write, as a client of an application that has run its queries once would have.",
    "",
    table,
    "",
    ...(input.instructions ? [...input.instructions, ""] : []),
  ];
  if (notes.length > 0 || input.problems.length > 0) {
    lines.push("Failures and problems:", "");
    notes.forEach((n, i) => lines.push(`- [${i + 1}] ${n}`));
    for (const p of input.problems) lines.push(`- ${p}`);
    lines.push("");
  }
  return lines.join("\n");
}
