// The benchmark matrix: which pgbench runs make each table row, and which server instance fills each column.
import type { CustomScript, PgbenchSpec, Protocol } from "./pgbench.ts";

export const COLUMNS = ["direct", "pgbouncer", "pgbun"] as const;
export type Column = (typeof COLUMNS)[number];

/** Server instances a run can target: PostgreSQL itself, or one pooler process each. */
export type TargetId =
  | "direct"
  | "pgbouncer"
  | "pgbouncer-session"
  | "pgbun"
  | "pgbun-session"
  /** Session mode with a server connection for every client of the efficiency case (default_pool_size = its clients). */
  | "pgbouncer-session-wide"
  | "pgbun-session-wide"
  /**
   * Plain pgbun instances that only serve as a comparison row's other side: each started, warmed and left idle
   * exactly like the variant it is compared with. Compared with the main pgbun, which runs in every row, a variant
   * used once a round lost 10-20 % to having sat idle (measured: idle plain pgbun and idle pgbun with 10 no-op
   * plugins ran alike, both slower than a busy plain one), which the plugin rows had put on the plugins.
   */
  | "pgbun-twin-noop10"
  | "pgbun-twin-audit-log"
  | "pgbun-twin-workers2"
  | "pgbun-twin-floor"
  | "pgbun-noop10"
  | "pgbun-audit-log"
  | "pgbun-workers2"
  /** Statement mode (pool_mode statement) at the bench's pool size: the efficiency rows' third mode. */
  | "pgbouncer-statement"
  | "pgbun-statement"
  /** session_state = "verify" (issue 9, item 6), and the plain twin it is compared with. */
  | "pgbun-verify"
  | "pgbun-twin-verify"
  /**
   * pgbun started from a git worktree of --baseline-rev (bench/worktree.ts), same settings as plain pgbun, and the
   * plain pgbun of this tree it is compared with (a twin: both used only in the before/after rows).
   */
  | "pgbun-rev"
  | "pgbun-twin-rev"
  /**
   * Client authentication and TLS (issue 11): both poolers with auth_type = scram-sha-256 and the user's SCRAM secret
   * from pg_authid in their auth_file; and both with client_tls_sslmode = require and a throwaway self-signed cert.
   */
  /** pgbun:metrics listening and scraped 10 times a second (issue 13), and its plain twin. */
  | "pgbun-metrics"
  | "pgbun-twin-metrics"
  /** pgbun:health-check with server_check_delay = 0: a check before every hand-out (issue 12), and its plain twin. */
  | "pgbun-check0"
  | "pgbun-twin-check0"
  | "pgbouncer-scram"
  | "pgbun-scram"
  | "pgbouncer-tls"
  | "pgbun-tls"
  /** bench/passthrough.ts: bytes forwarded, nothing parsed or pooled (a reference, not a pooler). */
  | "passthrough";

export type Cell =
  | { kind: "run"; target: TargetId }
  /** The value of the same column in another case of the same round (no second run of the same thing). */
  | { kind: "same-as"; caseId: string }
  | { kind: "na"; reason: string };

/** What `--only` selects by: every case belongs to one group. */
export const CASE_GROUPS = ["transaction", "session", "tpcb", "storm", "reset", "pipeline", "verify", "workers", "before-after", "floor", "efficiency", "login", "tls", "metrics", "health"] as const;
export type CaseGroup = (typeof CASE_GROUPS)[number];

export interface BenchCase {
  id: string;
  label: string;
  /** A few words for the chart's axis. */
  short: string;
  group: CaseGroup;
  spec: PgbenchSpec;
  cells: Record<Column, Cell>;
  /** Run right before the case's pgbun column in every round, for a ratio measured side by side. */
  baseline?: TargetId;
  /** How the row names the baseline ("plain pgbun", "1-worker pgbun", "the pass-through"). */
  baselineName?: string;
  /** default_pool_size of the pooler columns when it is not the bench's (the session-wide case: one per client). */
  poolSize?: number;
  /** Cases a summary row computed from this one also needs, run with it under --only (the efficiency rows: the transaction-mode row). */
  needs?: string[];
}

export interface MatrixOptions {
  durationS: number;
  /** Client counts of the transaction-mode select-only matrix. */
  clients: number[];
  /**
   * Clients of the session-vs-transaction efficiency cases: session mode at the bench's pool size (more clients than
   * servers: the rest starve) and at a pool of one server per client (every client served, what the ratio uses).
   */
  efficiencyClients: number;
  smoke: boolean;
  auditLog: boolean;
  /** default_pool_size of both poolers (the workers rows say how it is split). */
  poolSize: number;
  /** How the before/after rows name --baseline-rev; no such rows without it. */
  baselineRev?: string;
}

const PROTOCOLS: Protocol[] = ["simple", "extended", "prepared"];
const run = (target: TargetId): Cell => ({ kind: "run", target });
const sameAs = (caseId: string): Cell => ({ kind: "same-as", caseId });

export const matrixCaseId = (protocol: Protocol, clients: number) => `tx-${protocol}-${clients}`;
/** Session mode at the bench's pool size: more clients than servers. */
export const sessionCaseId = (clients: number) => `session-simple-${clients}`;
/** Session mode with a server connection per client: the efficiency rows' session side. */
export const sessionWideCaseId = (clients: number) => `session-wide-simple-${clients}`;
/** Statement mode at the bench's pool size: the efficiency rows' third mode. */
export const statementCaseId = (clients: number) => `statement-simple-${clients}`;
/** The end-of-session reset rows: a session that leaves state behind, and the same storm without it. */
export const RESET_CASE_ID = "reset-listen-10";
export const RESET_REFERENCE_CASE_ID = "reset-stateless-10";

export function buildCases(o: MatrixOptions): BenchCase[] {
  const select = (clients: number, protocol: Protocol): PgbenchSpec => ({
    clients,
    protocol,
    script: "select-only",
    reconnect: false,
    durationS: o.durationS,
    logAll: clients === o.efficiencyClients, // the efficiency rows count the clients served
  });
  const cases: BenchCase[] = [];
  const protocols = o.smoke ? (["simple"] as Protocol[]) : PROTOCOLS;
  for (const protocol of protocols) {
    for (const clients of o.clients) {
      cases.push({
        id: matrixCaseId(protocol, clients),
        label: `select-only, ${protocol}, ${clients} client${clients === 1 ? "" : "s"}`,
        short: `${protocol}, ${clients}c`,
        group: "transaction",
        spec: select(clients, protocol),
        cells: {
          direct: run("direct"),
          pgbouncer: protocol === "prepared" ? { kind: "na", reason: "n/a: PgBouncer 1.18 cannot run -M prepared in transaction mode" } : run("pgbouncer"),
          pgbun: run("pgbun"),
        },
      });
    }
  }
  const base10 = matrixCaseId("simple", 10);
  const hasBase10 = o.clients.includes(10);
  const pipelineDirect = hasBase10 ? sameAs(base10) : run("direct");
  const pipelineBouncer = hasBase10 ? sameAs(base10) : run("pgbouncer");
  /** Also in the smoke run: the only case that proves bench/passthrough.ts and the baseline runs work. */
  const floor: BenchCase = {
    id: "floor-passthrough-10",
    label: "REFERENCE, not a pooler: bare Bun pass-through (no parsing, no pooling), the runtime's floor; pgbun measured beside it, select-only, simple, 10 clients",
    short: "reference: pass-through, 10c",
    group: "floor",
    spec: select(10, "simple"),
    cells: { direct: pipelineDirect, pgbouncer: pipelineBouncer, pgbun: run("pgbun-twin-floor") },
    baseline: "passthrough",
    baselineName: "the pass-through",
  };
  if (o.smoke) return [...cases, floor];

  cases.push({
    id: "session-simple-10",
    label: "session mode: select-only, simple, 10 clients",
    short: "session, 10c",
    group: "session",
    spec: select(10, "simple"),
    cells: { direct: hasBase10 ? sameAs(base10) : run("direct"), pgbouncer: run("pgbouncer-session"), pgbun: run("pgbun-session") },
  });
  cases.push({
    id: "tpcb-50",
    label: "TPC-B-like (default script), simple, 50 clients",
    short: "TPC-B, 50c",
    group: "tpcb",
    spec: { clients: 50, protocol: "simple", script: "tpcb-like", reconnect: false, durationS: o.durationS },
    cells: { direct: run("direct"), pgbouncer: run("pgbouncer"), pgbun: run("pgbun") },
  });
  cases.push({
    id: "storm-10",
    label: "connection storm (-C: a new connection per transaction), select-only, 10 clients",
    short: "storm -C, 10c",
    group: "storm",
    spec: { clients: 10, protocol: "simple", script: "select-only", reconnect: true, durationS: o.durationS },
    cells: { direct: run("direct"), pgbouncer: run("pgbouncer"), pgbun: run("pgbun") },
  });
  cases.push(...resetCases(o));
  cases.push(...loginCases(o));
  cases.push({
    id: "pipeline-noop10",
    label: "pgbun with 10 no-op plugins (Query + ReadyForQuery taps), select-only, simple, 10 clients",
    short: "10 no-op plugins, 10c",
    group: "pipeline",
    spec: select(10, "simple"),
    cells: { direct: pipelineDirect, pgbouncer: pipelineBouncer, pgbun: run("pgbun-noop10") },
    baseline: "pgbun-twin-noop10",
    baselineName: "plain pgbun",
  });
  if (o.auditLog) {
    cases.push({
      id: "pipeline-audit-log",
      label: "pgbun with examples/audit-log.ts (log_level warn: entries built, not written), select-only, simple, 10 clients",
      short: "audit-log plugin, 10c",
      group: "pipeline",
      spec: select(10, "simple"),
      cells: { direct: pipelineDirect, pgbouncer: pipelineBouncer, pgbun: run("pgbun-audit-log") },
      baseline: "pgbun-twin-audit-log",
      baselineName: "plain pgbun",
    });
  }
  cases.push(...verifyCases(o, select));
  cases.push({
    id: "metrics-scrape-10",
    label: "pgbun with stats_listen_port set and /metrics scraped 10 times a second during the run, select-only, simple, 10 clients",
    short: "/metrics 10/s, 10c",
    group: "metrics",
    spec: select(10, "simple"),
    cells: { direct: pipelineDirect, pgbouncer: pipelineBouncer, pgbun: run("pgbun-metrics") },
    baseline: "pgbun-twin-metrics",
    baselineName: "plain pgbun",
  });
  cases.push({
    id: "check0-10",
    label: "pgbun with server_check_delay = 0 (server_check_query before every hand-out), select-only, simple, 10 clients",
    short: "check every hand-out, 10c",
    group: "health",
    spec: select(10, "simple"),
    cells: { direct: pipelineDirect, pgbouncer: pipelineBouncer, pgbun: run("pgbun-check0") },
    baseline: "pgbun-twin-check0",
    baselineName: "plain pgbun (server_check_delay 30)",
  });
  for (const clients of [10, 50]) {
    const hasBase = o.clients.includes(clients);
    cases.push({
      id: `workers2-${clients}`,
      label: `pgbun with workers = 2 (pool ${o.poolSize} split: ${Math.ceil(o.poolSize / 2)} per worker), select-only, simple, ${clients} clients`,
      short: `workers = 2, ${clients}c`,
      group: "workers",
      spec: select(clients, "simple"),
      cells: {
        direct: hasBase ? sameAs(matrixCaseId("simple", clients)) : run("direct"),
        pgbouncer: hasBase ? sameAs(matrixCaseId("simple", clients)) : run("pgbouncer"),
        pgbun: run("pgbun-workers2"),
      },
      baseline: "pgbun-twin-workers2",
      baselineName: "1-worker pgbun",
    });
  }
  if (o.baselineRev) cases.push(...beforeAfterCases(o, o.baselineRev, select));
  cases.push(floor);
  // the worst row against PgBouncer: the runtime's floor there too, from the same run
  if (hasBase10) {
    const ext10 = matrixCaseId("extended", 10);
    cases.push({
      ...floor,
      id: "floor-passthrough-extended-10",
      label: floor.label.replace("select-only, simple, 10 clients", "select-only, extended, 10 clients"),
      short: "reference: pass-through, ext 10c",
      spec: select(10, "extended"),
      cells: { direct: sameAs(ext10), pgbouncer: sameAs(ext10), pgbun: run("pgbun-twin-floor") },
    });
  }
  cases.push(...efficiencyCases(o, select));
  return cases;
}

type SelectSpec = (clients: number, protocol: Protocol) => PgbenchSpec;

/**
 * Transactions per server connection in session, transaction and statement mode (bench/derived-rows.ts): the
 * transaction-mode row at efficiencyClients (the matrix's, or one of its own when the matrix has no such count),
 * session mode at the bench's pool (clients starve) and at a pool of a server per client (the ratio's side), and
 * statement mode at the bench's pool (pgbench -S has no BEGIN, so it runs there unchanged).
 */
function efficiencyCases(o: MatrixOptions, select: SelectSpec): BenchCase[] {
  const n = o.efficiencyClients;
  const effBase = matrixCaseId("simple", n);
  const effDirect = sameAs(effBase);
  const needs = [effBase];
  const cases: BenchCase[] = [];
  if (!o.clients.includes(n)) {
    cases.push({
      id: effBase,
      label: `select-only, simple, ${n} clients`,
      short: `simple, ${n}c`,
      group: "efficiency",
      spec: select(n, "simple"),
      cells: { direct: run("direct"), pgbouncer: run("pgbouncer"), pgbun: run("pgbun") },
    });
  }
  cases.push({
    id: sessionCaseId(n),
    label: `session mode, pool ${o.poolSize}: select-only, simple, ${n} clients (at most ${o.poolSize} clients get a server; the other ${n - o.poolSize} or more wait the whole run)`,
    short: `session, pool ${o.poolSize}, ${n}c`,
    group: "efficiency",
    spec: select(n, "simple"),
    cells: { direct: effDirect, pgbouncer: run("pgbouncer-session"), pgbun: run("pgbun-session") },
    needs,
  });
  cases.push({
    id: statementCaseId(n),
    label: `statement mode, pool ${o.poolSize}: select-only, simple, ${n} clients (pgbench -S sends no BEGIN: each statement is a transaction)`,
    short: `statement, pool ${o.poolSize}, ${n}c`,
    group: "efficiency",
    spec: select(n, "simple"),
    cells: { direct: effDirect, pgbouncer: run("pgbouncer-statement"), pgbun: run("pgbun-statement") },
    needs,
  });
  cases.push({
    id: sessionWideCaseId(n),
    label: `session mode, pool ${n} (a server connection per client): select-only, simple, ${n} clients`,
    short: `session, pool ${n}, ${n}c`,
    group: "efficiency",
    spec: select(n, "simple"),
    cells: { direct: effDirect, pgbouncer: run("pgbouncer-session-wide"), pgbun: run("pgbun-session-wide") },
    poolSize: n,
    needs,
  });
  return cases;
}

/** A session that leaves state behind: LISTEN pins its server in transaction mode, so leaving costs pgbun a reset. */
const LISTEN_SCRIPT: CustomScript = { name: "listen-then-select", text: "LISTEN bench_ch;\nSELECT 1;\n" };
/** The same two round trips with nothing left behind: the server goes back to the pool as it is. */
const STATELESS_SCRIPT: CustomScript = { name: "select-twice", text: "SELECT 1;\nSELECT 1;\n" };

/**
 * The end-of-session reset (issue 9, item 1) under a connection storm: every pgbench transaction is a new client
 * (-C) that runs the script and leaves. After LISTEN its server is pinned, so pgbun resets it (DISCARD ALL) and
 * checks it before the next client gets it; the stateless script is the same storm without that. PgBouncer in
 * transaction mode resets nothing (server_reset_query is for session mode): the next client gets the LISTEN.
 */
function resetCases(o: MatrixOptions): BenchCase[] {
  const storm = (script: CustomScript): PgbenchSpec => ({ clients: 10, protocol: "simple", script, reconnect: true, durationS: o.durationS });
  const cells: Record<Column, Cell> = { direct: run("direct"), pgbouncer: run("pgbouncer"), pgbun: run("pgbun") };
  return [
    {
      id: RESET_REFERENCE_CASE_ID,
      label: "end-of-session reset, reference: connection storm (-C), script `SELECT 1; SELECT 1;` (nothing left behind: no reset), 10 clients",
      short: "storm -C, no state, 10c",
      group: "reset",
      spec: storm(STATELESS_SCRIPT),
      cells,
    },
    {
      id: RESET_CASE_ID,
      label:
        "end-of-session reset: connection storm (-C), script `LISTEN bench_ch; SELECT 1;` (each client leaves its server pinned: " +
        "pgbun resets it with DISCARD ALL and checks it before reuse; PgBouncer in transaction mode does no reset and hands the LISTEN on), 10 clients",
      short: "storm -C, LISTEN left, 10c",
      group: "reset",
      spec: storm(LISTEN_SCRIPT),
      cells,
    },
  ];
}

/**
 * Issue 11's benchmarks: a SCRAM login storm (pgbench -C, each transaction a new client that runs a full SCRAM
 * exchange with the pooler) and TLS clients (sslmode=require), steady and as a storm. Direct PostgreSQL runs with
 * trust auth and without TLS in this bench, so its cells would measure something else: n/a.
 */
function loginCases(o: MatrixOptions): BenchCase[] {
  const na = { kind: "na", reason: "n/a: the bench's PostgreSQL uses trust auth and no TLS" } as const;
  const spec = (reconnect: boolean, sslmode?: "require"): PgbenchSpec => ({
    clients: 10,
    protocol: "simple",
    script: "select-only",
    reconnect,
    durationS: o.durationS,
    ...(sslmode ? { sslmode } : {}),
  });
  return [
    {
      id: "login-scram-10",
      label: "SCRAM login storm: -C (a new connection per transaction), auth_type = scram-sha-256 with SCRAM secrets in auth_file, select-only, 10 clients",
      short: "SCRAM storm -C, 10c",
      group: "login",
      spec: spec(true),
      cells: { direct: na, pgbouncer: run("pgbouncer-scram"), pgbun: run("pgbun-scram") },
    },
    {
      id: "tls-10",
      label: "TLS clients: sslmode=require (client_tls_sslmode = require), select-only, simple, 10 clients",
      short: "TLS, 10c",
      group: "tls",
      spec: spec(false, "require"),
      cells: { direct: na, pgbouncer: run("pgbouncer-tls"), pgbun: run("pgbun-tls") },
    },
    {
      id: "tls-storm-10",
      label: "TLS connection storm: -C with sslmode=require (a TLS handshake per transaction), select-only, 10 clients",
      short: "TLS storm -C, 10c",
      group: "tls",
      spec: spec(true, "require"),
      cells: { direct: na, pgbouncer: run("pgbouncer-tls"), pgbun: run("pgbun-tls") },
    },
  ];
}

/**
 * session_state = "verify" (issue 9, item 6) against a plain twin, on a cheap read and on a write transaction. A
 * pgbun that does not know the setting refuses to start: bench/run.ts then shows the rows as n/a.
 */
function verifyCases(o: MatrixOptions, select: SelectSpec): BenchCase[] {
  const repeat = (caseId: string, present: boolean, target: TargetId): Cell => (present ? sameAs(caseId) : run(target));
  const base10 = matrixCaseId("simple", 10);
  const twin = { baseline: "pgbun-twin-verify" as const, baselineName: "plain pgbun" };
  const what = 'pgbun with session_state = "verify" (asks the server after each transaction whose effects it cannot prove harmless)';
  return [
    {
      id: "verify-select-10",
      label: `${what}, select-only, simple, 10 clients`,
      short: "verify mode, 10c",
      group: "verify",
      spec: select(10, "simple"),
      cells: { direct: repeat(base10, o.clients.includes(10), "direct"), pgbouncer: repeat(base10, o.clients.includes(10), "pgbouncer"), pgbun: run("pgbun-verify") },
      ...twin,
    },
    {
      id: "verify-tpcb-50",
      label: `${what}, TPC-B-like (default script), simple, 50 clients`,
      short: "verify mode, TPC-B, 50c",
      group: "verify",
      spec: { clients: 50, protocol: "simple", script: "tpcb-like", reconnect: false, durationS: o.durationS },
      cells: { direct: sameAs("tpcb-50"), pgbouncer: sameAs("tpcb-50"), pgbun: run("pgbun-verify") },
      ...twin,
    },
  ];
}

/**
 * This tree's pgbun against pgbun built from --baseline-rev (issue 9: "no change may lose ground"), select-only at 10
 * and 50 clients in each protocol, CPU per transaction in both; the direct and PgBouncer cells repeat the matrix.
 */
function beforeAfterCases(o: MatrixOptions, rev: string, select: SelectSpec): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const protocol of PROTOCOLS) {
    for (const clients of [10, 50]) {
      const repeat = o.clients.includes(clients) ? sameAs(matrixCaseId(protocol, clients)) : ({ kind: "na", reason: "n/a: only pgbun is compared in this row" } as const);
      cases.push({
        id: `before-after-${protocol}-${clients}`,
        label: `pgbun (this tree) vs pgbun at ${rev}: select-only, ${protocol}, ${clients} clients`,
        short: `vs ${rev}, ${protocol}, ${clients}c`,
        group: "before-after",
        spec: select(clients, protocol),
        cells: { direct: repeat, pgbouncer: repeat, pgbun: run("pgbun-twin-rev") },
        baseline: "pgbun-rev",
        baselineName: `pgbun at ${rev}`,
      });
    }
  }
  return cases;
}

/**
 * The cases of the `only` groups (all when undefined), with the cases they need; a cell repeating a case left out
 * becomes n/a, so nothing points at a row the run does not have.
 */
export function selectCases(cases: BenchCase[], only?: readonly CaseGroup[]): BenchCase[] {
  if (!only) return cases;
  const wanted = new Set(cases.filter((c) => only.includes(c.group)).map((c) => c.id));
  for (const c of cases) if (wanted.has(c.id)) for (const id of c.needs ?? []) wanted.add(id);
  const kept = (cell: Cell): Cell =>
    cell.kind === "same-as" && !wanted.has(cell.caseId) ? { kind: "na", reason: `n/a: repeats ${cell.caseId}, not in this run (--only)` } : cell;
  return cases
    .filter((c) => wanted.has(c.id))
    .map((c) => ({ ...c, cells: { direct: kept(c.cells.direct), pgbouncer: kept(c.cells.pgbouncer), pgbun: kept(c.cells.pgbun) } }));
}

/** The instances the cases need started: every column's target and every baseline. */
export function targetsOf(cases: BenchCase[]): Set<TargetId> {
  const out = new Set<TargetId>();
  for (const c of cases) {
    for (const col of COLUMNS) if (c.cells[col].kind === "run") out.add((c.cells[col] as { target: TargetId }).target);
    if (c.baseline) out.add(c.baseline);
  }
  return out;
}
