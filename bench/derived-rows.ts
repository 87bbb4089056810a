// Report rows computed from several cases: connection efficiency per pool mode, and what the end-of-session reset costs.
import {
  COLUMNS,
  matrixCaseId,
  RESET_CASE_ID,
  RESET_REFERENCE_CASE_ID,
  sessionCaseId,
  sessionWideCaseId,
  statementCaseId,
  type Column,
} from "./cases.ts";
import { formatCpuUs } from "./cpu.ts";
import { int, okCpu, okTps, ratio } from "./format.ts";
import type { CaseOutcome, TableRow } from "./report.ts";
import type { CellSummary } from "./summary.ts";

const show = (v: number | null) => (v === null ? "—" : v < 100 ? v.toFixed(1) : int(v));

/**
 * Transactions per server connection in one run of durationS: tps × durationS ÷ servers (pgbench's totals would count
 * runs lengthened for slow connecting unequally). A pooler's servers are its pool size (the case's, else the bench's)
 * capped at the client count; direct PostgreSQL has one per client. Transaction and statement mode at the bench's
 * pool are compared with session mode at a pool of one server per client, the only way session mode serves every
 * client; the clients-served rows show it, and what session mode at the bench's pool does instead (the rest wait the
 * whole run).
 */
export function efficiencyRows(outcomes: CaseOutcome[], poolSize: number, durationS: number): TableRow[] {
  const wide = outcomes.find((o) => o.case.id === sessionWideCaseId(o.case.spec.clients));
  if (!wide) return [];
  const clients = wide.case.spec.clients;
  const tx = outcomes.find((o) => o.case.id === matrixCaseId("simple", clients));
  if (!tx) return [];
  const starved = outcomes.find((o) => o.case.id === sessionCaseId(clients));
  const statement = outcomes.find((o) => o.case.id === statementCaseId(clients));
  const poolOf = (o: CaseOutcome) => Math.min(o.case.poolSize ?? poolSize, clients);
  const perServer = (o: CaseOutcome | undefined): Record<Column, number | null> => {
    const out = {} as Record<Column, number | null>;
    for (const col of COLUMNS) {
      const tps = o ? okTps(o.cells[col]) : null;
      out[col] = tps === null || !o ? null : (tps * durationS) / (col === "direct" ? clients : poolOf(o));
    }
    return out;
  };
  const txPer = perServer(tx);
  const sessPer = perServer(wide);
  const stmtPer = perServer(statement);
  const perServerRow = (mode: string, o: CaseOutcome, v: Record<Column, number | null>): TableRow => ({
    label:
      `transactions per server connection in ${durationS} s (tps × ${durationS} s ÷ server connections: the pool size, capped at the client count; ` +
      `direct: 1 per client), ${clients} clients, ${mode}, pool ${poolOf(o)}`,
    cells: { direct: show(v.direct), pgbouncer: show(v.pgbouncer), pgbun: show(v.pgbun) },
    ratioPgbouncer: ratio(v.pgbun, v.pgbouncer),
    ratioDirect: ratio(v.pgbun, v.direct),
  });
  const served = (s: CellSummary) => (okTps(s) === null || s.clientsServed === null ? "—" : `${int(s.clientsServed)} of ${int(clients)}`);
  const servedRow = (mode: string, o: CaseOutcome): TableRow => ({
    label: `clients that finished a transaction within the timed run, ${clients} clients, ${mode}, pool ${poolOf(o)}`,
    cells: { direct: served(o.cells.direct), pgbouncer: served(o.cells.pgbouncer), pgbun: served(o.cells.pgbun) },
    ratioPgbouncer: "—",
    ratioDirect: "—",
  });
  const efficiencyRow = (mode: string, o: CaseOutcome, v: Record<Column, number | null>): TableRow => ({
    label:
      `connection efficiency: ${mode} (pool ${poolOf(o)}) ÷ session mode (pool ${poolOf(wide)}: a server per client, all served), ` +
      `transactions per server connection, ${clients} clients (target: at least 2×)`,
    cells: { direct: "n/a (no pool)", pgbouncer: ratio(v.pgbouncer, sessPer.pgbouncer), pgbun: ratio(v.pgbun, sessPer.pgbun) },
    ratioPgbouncer: "—",
    ratioDirect: "—",
  });
  const sideBySide = (col: Column) =>
    `session ${show(sessPer[col])} / transaction ${show(txPer[col])}${statement ? ` / statement ${show(stmtPer[col])}` : ""}`;
  return [
    servedRow("transaction mode", tx),
    ...(statement ? [servedRow("statement mode", statement)] : []),
    ...(starved ? [servedRow("session mode", starved)] : []),
    servedRow("session mode", wide),
    perServerRow("transaction mode", tx, txPer),
    ...(statement ? [perServerRow("statement mode", statement, stmtPer)] : []),
    perServerRow("session mode", wide, sessPer),
    efficiencyRow("transaction mode", tx, txPer),
    ...(statement ? [efficiencyRow("statement mode", statement, stmtPer)] : []),
    {
      label: `transactions per server connection side by side, ${clients} clients: session (pool ${poolOf(wide)}) / transaction (pool ${poolOf(tx)})${statement ? ` / statement (pool ${poolOf(statement)})` : ""}`,
      cells: { direct: "n/a (no pool)", pgbouncer: sideBySide("pgbouncer"), pgbun: sideBySide("pgbun") },
      ratioPgbouncer: "—",
      ratioDirect: "—",
    },
  ];
}

/**
 * The end-of-session reset's cost: the storm whose clients leave a LISTEN behind against the same storm without it,
 * per column: tps ratio, and (poolers) CPU per connection more (each -C transaction is one client's whole session).
 * PgBouncer's difference is LISTEN alone: in transaction mode it resets nothing.
 */
export function resetRows(outcomes: CaseOutcome[]): TableRow[] {
  const pinned = outcomes.find((o) => o.case.id === RESET_CASE_ID);
  const plain = outcomes.find((o) => o.case.id === RESET_REFERENCE_CASE_ID);
  if (!pinned || !plain) return [];
  const cell = (col: Column): string => {
    const tps = ratio(okTps(pinned.cells[col]), okTps(plain.cells[col]));
    const a = okCpu(pinned.cells[col]);
    const b = okCpu(plain.cells[col]);
    if (a === null || b === null) return tps === "—" ? "—" : `${tps} tps`;
    const res = Math.max(pinned.cells[col].cpuResolutionUs ?? 1, plain.cells[col].cpuResolutionUs ?? 1);
    const d = a - b;
    return `${tps} tps, CPU ${d < 0 ? "−" : "+"}${formatCpuUs(Math.abs(d), res)} µs per connection`;
  };
  return [
    {
      label:
        "end-of-session reset cost: the LISTEN storm ÷ the stateless storm (tps), and the pooler CPU per connection it adds " +
        "(pgbun: DISCARD ALL and a check before the server is reused; PgBouncer in transaction mode: no reset, the LISTEN is handed on)",
      cells: { direct: cell("direct"), pgbouncer: cell("pgbouncer"), pgbun: cell("pgbun") },
      ratioPgbouncer: "—",
      ratioDirect: "—",
    },
  ];
}
