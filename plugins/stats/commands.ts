// Parses one admin console command (PgBouncer's grammar): keyword, optional argument, optional trailing semicolon.

export const SHOW_TARGETS = [
  "help",
  "pools",
  "stats",
  "stats_totals",
  "stats_averages",
  "clients",
  "servers",
  "databases",
  "users",
  "config",
  "lists",
  "version",
] as const;
export type ShowTarget = (typeof SHOW_TARGETS)[number];

/** Commands that take an optional database (none means every database). */
type OptionalDbVerb = "pause" | "resume" | "reconnect" | "wait_close";
/** Commands that require a database. */
type RequiredDbVerb = "kill" | "disable" | "enable";

export type AdminCommand =
  | { kind: "empty" }
  | { kind: "show"; target: ShowTarget }
  | { kind: OptionalDbVerb; db: string | null }
  | { kind: RequiredDbVerb; db: string }
  | { kind: "kill_client"; id: number }
  | { kind: "reload" | "shutdown" | "suspend" }
  | { kind: "set"; key: string; value: string };

export type ParsedCommand = { ok: true; command: AdminCommand } | { ok: false; message: string };

const OPTIONAL_DB: readonly string[] = ["pause", "resume", "reconnect", "wait_close"];
const REQUIRED_DB: readonly string[] = ["kill", "disable", "enable"];
const NO_ARG: readonly string[] = ["reload", "shutdown", "suspend"];

/** Whether a command only reads (stats_users may run these). */
export function isReadOnly(c: AdminCommand): boolean {
  return c.kind === "show" || c.kind === "empty";
}

/** Splits into words; a double-quoted word keeps its case and spaces ("" inside is one quote). */
function words(text: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === '"') {
      let w = "";
      i++;
      for (;;) {
        if (i >= text.length) return null;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            w += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        w += text[i++];
      }
      out.push(w);
      continue;
    }
    let j = i;
    while (j < text.length && !/\s/.test(text[j]!)) j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

function invalid(sql: string): ParsedCommand {
  return { ok: false, message: `invalid command '${sql}', use SHOW HELP;` };
}

/** Parses the text of a simple Query. Keywords are case-insensitive; database names are kept as written. */
export function parseCommand(sql: string): ParsedCommand {
  const text = sql.trim().replace(/(\s*;)+$/, "").trim();
  if (text === "") return { ok: true, command: { kind: "empty" } };
  if (/^set\s/i.test(text)) {
    const m = /^set\s+([A-Za-z_][A-Za-z0-9_]*)\s*(=|\s+to\s+)\s*(.*)$/i.exec(text);
    if (!m) return invalid(text);
    return { ok: true, command: { kind: "set", key: m[1]!.toLowerCase(), value: m[3]!.replace(/^'(.*)'$/, "$1") } };
  }
  const w = words(text);
  if (w === null || w.length === 0) return invalid(text);
  const verb = w[0]!.toLowerCase();
  const args = w.slice(1);
  if (verb === "show") {
    const target = args.length === 1 ? args[0]!.toLowerCase() : "";
    if (!(SHOW_TARGETS as readonly string[]).includes(target)) return invalid(text);
    return { ok: true, command: { kind: "show", target: target as ShowTarget } };
  }
  if (OPTIONAL_DB.includes(verb)) {
    if (args.length > 1) return invalid(text);
    return { ok: true, command: { kind: verb as OptionalDbVerb, db: args[0] ?? null } };
  }
  if (REQUIRED_DB.includes(verb)) {
    if (args.length === 0) return { ok: false, message: "a database is required" };
    if (args.length > 1) return invalid(text);
    return { ok: true, command: { kind: verb as RequiredDbVerb, db: args[0]! } };
  }
  if (verb === "kill_client") {
    if (args.length !== 1 || !/^\d+$/.test(args[0]!)) return { ok: false, message: "KILL_CLIENT needs the id of a client (SHOW CLIENTS)" };
    return { ok: true, command: { kind: "kill_client", id: Number(args[0]) } };
  }
  if (NO_ARG.includes(verb)) {
    if (args.length > 0) return invalid(text);
    return { ok: true, command: { kind: verb as "reload" | "shutdown" | "suspend" } };
  }
  return invalid(text);
}
