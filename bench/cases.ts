// The benchmark matrix: which pgbench runs make each table row, and which server instance fills each column.
import type { PgbenchSpec, Protocol } from "./pgbench.ts";

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
  /** bench/passthrough.ts: bytes forwarded, nothing parsed or pooled (a reference, not a pooler). */
  | "passthrough";

export type Cell =
  | { kind: "run"; target: TargetId }
  /** The value of the same column in another case of the same round (no second run of the same thing). */
  | { kind: "same-as"; caseId: string }
  | { kind: "na"; reason: string };

export type CaseGroup = "transaction" | "session" | "tpcb" | "storm" | "pipeline" | "workers" | "floor" | "efficiency";

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
}

const PROTOCOLS: Protocol[] = ["simple", "extended", "prepared"];
const run = (target: TargetId): Cell => ({ kind: "run", target });
const sameAs = (caseId: string): Cell => ({ kind: "same-as", caseId });

export const matrixCaseId = (protocol: Protocol, clients: number) => `tx-${protocol}-${clients}`;
/** Session mode at the bench's pool size: more clients than servers. */
export const sessionCaseId = (clients: number) => `session-simple-${clients}`;
/** Session mode with a server connection per client: the efficiency rows' session side. */
export const sessionWideCaseId = (clients: number) => `session-wide-simple-${clients}`;

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
  cases.push(floor);
  const n = o.efficiencyClients;
  const effBase = matrixCaseId("simple", n);
  const effDirect = o.clients.includes(n) ? sameAs(effBase) : run("direct");
  cases.push({
    id: sessionCaseId(n),
    label: `session mode, pool ${o.poolSize}: select-only, simple, ${n} clients (at most ${o.poolSize} clients get a server; the other ${n - o.poolSize} or more wait the whole run)`,
    short: `session, pool ${o.poolSize}, ${n}c`,
    group: "efficiency",
    spec: select(n, "simple"),
    cells: { direct: effDirect, pgbouncer: run("pgbouncer-session"), pgbun: run("pgbun-session") },
  });
  cases.push({
    id: sessionWideCaseId(n),
    label: `session mode, pool ${n} (a server connection per client): select-only, simple, ${n} clients`,
    short: `session, pool ${n}, ${n}c`,
    group: "efficiency",
    spec: select(n, "simple"),
    cells: { direct: o.clients.includes(n) ? effDirect : sameAs(sessionCaseId(n)), pgbouncer: run("pgbouncer-session-wide"), pgbun: run("pgbun-session-wide") },
    poolSize: n,
  });
  return cases;
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
