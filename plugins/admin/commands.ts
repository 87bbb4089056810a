// Parses one admin console command (PgBouncer's grammar): keyword, optional argument, optional trailing semicolon.
import type { Extensions } from "./extensions.ts";

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
  "plugins",
  "mem",
  "fds",
  "state",
  "totals",
  "peers",
  "peer_pools",
  "sockets",
  "active_sockets",
  "dns_hosts",
  "dns_zones",
] as const;
export type ShowTarget = (typeof SHOW_TARGETS)[number];

/** Commands that take an optional database (none means every database; KILL without one kills all, as in 1.25). */
type OptionalDbVerb = "pause" | "resume" | "reconnect" | "wait_close" | "kill";
/** Commands that require a database. */
type RequiredDbVerb = "disable" | "enable";

/**
 * SHUTDOWN's modes (PgBouncer 1.25): at once (the console's plain SHUTDOWN; SIGINT's wait for servers is
 * WAIT_FOR_SERVERS), after servers are released, or after clients leave (SIGTERM).
 */
export type ShutdownWait = "now" | "wait_for_servers" | "wait_for_clients";

export type AdminCommand =
  | { kind: "empty" }
  | { kind: "show"; target: ShowTarget }
  | { kind: OptionalDbVerb; db: string | null }
  | { kind: RequiredDbVerb; db: string }
  | { kind: "kill_client"; id: number }
  | { kind: "reload" }
  | { kind: "suspend" }
  | { kind: "shutdown"; wait: ShutdownWait }
  | { kind: "set"; key: string; value: string }
  /** SHOW of a table another plugin added; `args`: what follows its name, as typed. */
  | { kind: "added_show"; name: string; args: string }
  /** A command another plugin added, by its lower-case keyword; `args`: what follows the keyword, as typed. */
  | { kind: "added"; keyword: string; args: string; readOnly: boolean };

export type ParsedCommand = { ok: true; command: AdminCommand } | { ok: false; message: string };

const OPTIONAL_DB: readonly string[] = ["pause", "resume", "reconnect", "wait_close", "kill"];
const REQUIRED_DB: readonly string[] = ["disable", "enable"];
const NO_ARG: readonly string[] = ["reload", "suspend"];
const SHUTDOWN_WAITS: readonly string[] = ["wait_for_servers", "wait_for_clients"];

/** The keywords of the built-in commands: another plugin may not add a command by one of these. */
export const BUILT_IN_KEYWORDS: ReadonlySet<string> = new Set(["show", "set", "kill_client", "shutdown", ...OPTIONAL_DB, ...REQUIRED_DB, ...NO_ARG]);

/** Whether a command only reads (stats_users may run these). */
export function isReadOnly(c: AdminCommand): boolean {
  return c.kind === "show" || c.kind === "empty" || c.kind === "added_show" || (c.kind === "added" && c.readOnly);
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

/** The first `n` words of a text and the rest as typed (for the commands other plugins add). */
function split(text: string, n: 1 | 2): { words: string[]; rest: string } {
  const m = (n === 1 ? /^(\S+)\s*([\s\S]*)$/ : /^(\S+)\s+(\S+)\s*([\s\S]*)$/).exec(text);
  if (!m) return { words: [], rest: "" };
  return { words: m.slice(1, n + 1), rest: m[n + 1]! };
}

/**
 * Parses the text of a simple Query. Keywords are case-insensitive; database names are kept as written. The
 * built-in grammar comes first; SHOW names and keywords it does not know are looked up in `added`.
 */
export function parseCommand(sql: string, added?: Extensions): ParsedCommand {
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
    if ((SHOW_TARGETS as readonly string[]).includes(target)) return { ok: true, command: { kind: "show", target: target as ShowTarget } };
    const { words: named, rest } = split(text, 2);
    const name = named[1]?.toLowerCase();
    if (name !== undefined && added?.shows.has(name)) return { ok: true, command: { kind: "added_show", name, args: rest } };
    return invalid(text);
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
  if (verb === "shutdown") {
    const mode = args[0]?.toLowerCase();
    if (args.length > 1 || (mode !== undefined && !SHUTDOWN_WAITS.includes(mode))) return invalid(text);
    return { ok: true, command: { kind: "shutdown", wait: (mode ?? "now") as ShutdownWait } };
  }
  if (NO_ARG.includes(verb)) {
    if (args.length > 0) return invalid(text);
    return { ok: true, command: verb === "reload" ? { kind: "reload" } : { kind: "suspend" } };
  }
  const command = added?.commands.get(verb);
  if (command) return { ok: true, command: { kind: "added", keyword: verb, args: split(text, 1).rest, readOnly: command.readOnly } };
  return invalid(text);
}
