// A result table for the admin console (typed columns, rows) and its encoding as RowDescription, DataRow*, CommandComplete.
import { commandComplete, dataRow, rowDescription, type AdminCell, type AdminColumn, type AdminTable } from "../../plugin-sdk/index.ts";

/** Column types as PgBouncer sends them: text, or int8 for counts and times. */
const TYPE_OID = { text: 25, int: 20 } as const;

/** The SDK's AdminTable: what the built-in tables, the other workers' and other plugins' tables all are. */
export type Column = AdminColumn;
export type Cell = AdminCell;
export type Table = AdminTable;

/** Column list from a compact spec: "name" is text, "#name" is int8. */
export function columns(...spec: string[]): Column[] {
  return spec.map((s) => (s.startsWith("#") ? { name: s.slice(1), type: "int" } : { name: s, type: "text" }));
}

/** The table as protocol messages, ending with CommandComplete (PgBouncer tags every SHOW "SHOW"). */
export function encodeTable(t: Table, tag = "SHOW"): Buffer {
  const parts: Buffer[] = [rowDescription(t.columns.map((c) => ({ name: c.name, typeOid: TYPE_OID[c.type] })))];
  for (const row of t.rows) parts.push(dataRow(row));
  parts.push(commandComplete(tag));
  return Buffer.concat(parts);
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * What is wrong with a table a plugin built (columns typed text or int, every row as long as the columns, cells
 * text, finite numbers or null), or null when it can be sent.
 */
export function tableProblem(t: unknown): string | null {
  const table = t as Partial<Table> | null;
  if (typeof table !== "object" || table === null || !Array.isArray(table.columns) || !Array.isArray(table.rows)) return "not a table ({ columns, rows })";
  for (const c of table.columns as unknown[]) {
    const col = c as Partial<Column> | null;
    if (typeof col?.name !== "string" || !(col.type === "text" || col.type === "int")) return "a column needs a name and a type (text or int)";
  }
  const width = table.columns.length;
  for (const row of table.rows as unknown[]) {
    if (!Array.isArray(row) || row.length !== width) return `a row does not have ${width} cells`;
    for (const v of row) if (!(v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v)))) return "a cell is not text, a finite number or null";
  }
  return null;
}

/** A wall-clock time (ms since the epoch) as PgBouncer prints it: `2024-05-01 12:34:56 UTC`. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

/** A connection's "address of internal object": its id, printed like a pointer. */
export function ptr(id: number | undefined): string {
  return id === undefined ? "" : `0x${id.toString(16).padStart(8, "0")}`;
}

/** A duration in ms split into whole seconds and the microsecond part (wait/wait_us, maxwait/maxwait_us). */
export function secondsAndMicros(ms: number): [number, number] {
  if (!(ms > 0)) return [0, 0];
  const us = Math.floor(ms * 1000);
  return [Math.floor(us / 1_000_000), us % 1_000_000];
}

/** Orders rows by their first columns as text, byte-wise (PgBouncer keeps its lists sorted by name). */
export function sortRows(rows: Cell[][], keyColumns = 1): Cell[][] {
  return rows.sort((a, b) => {
    for (let i = 0; i < keyColumns; i++) {
      const x = String(a[i] ?? "");
      const y = String(b[i] ?? "");
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  });
}
