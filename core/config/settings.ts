// Coercion and checking of setting values, and the names-close-to suggestions of config errors.
import { SETTINGS, type SettingKind } from "../../plugin-sdk/settings.ts";
import type { Settings, SettingName } from "../../plugin-sdk/config.ts";

export * from "../../plugin-sdk/settings.ts";
export { POOL_MODES, AUTH_TYPES, IMPLEMENTED_AUTH_TYPES, SSL_MODES, LOG_LEVELS, LOG_FORMATS, SESSION_STATE_MODES } from "../../plugin-sdk/config.ts";
export type { PoolMode, AuthType, SslMode, LogLevel, LogFormat, SessionStateMode, Settings, SettingName } from "../../plugin-sdk/config.ts";


/**
 * Settings pgbun accepts for PgBouncer compatibility and does not act on yet, with the verdict on ignoring each:
 * "unsafe" ones refuse start-up at any value but those listed in `ok` (what pgbun already does is what the
 * value asks for), "harmless" ones start with a warning when they differ from their default. A setting leaves
 * this table in the commit that acts on it (tests/unit/settings-acted-on.test.ts checks both directions).
 * Client authentication (auth_*, scram_iterations) belongs to pgbun:auth and is not listed here.
 */
export type IgnoredSetting =
  | { readonly verdict: "unsafe"; readonly ok: readonly unknown[]; readonly why: string }
  | { readonly verdict: "harmless"; readonly why: string };

export const IGNORED_SETTINGS: { readonly [K in SettingName]?: IgnoredSetting } = {
  listen_backlog: { verdict: "harmless", why: "Bun.listen takes no backlog, the OS default applies" },
  peer_id: { verdict: "harmless", why: "pgbun has no [peers]; workers forward CancelRequests among themselves" },
  tcp_user_timeout: { verdict: "harmless", why: "sockets keep the OS default" },
  pkt_buf: { verdict: "harmless", why: "read buffers are sized by the runtime" },
  sbuf_loopcnt: { verdict: "harmless", why: "the runtime delivers reads; pgbun does not loop over sockets" },
  log_pooler_errors: { verdict: "harmless", why: "errors pgbun sends to clients are logged at their usual levels" },
};

/** A setting whose value differs from its default and that pgbun does not act on (see IGNORED_SETTINGS). */
export interface IgnoredFinding {
  readonly name: SettingName;
  readonly value: unknown;
  readonly verdict: IgnoredSetting["verdict"];
  /** The start-up refusal reason ("unsafe") or warning ("harmless"), naming the setting. */
  readonly message: string;
}

/** `v` as a config file would spell it, for messages. */
export function showSettingValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x)).join(", ")}]`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** The ignored settings `s` sets, in table order: unsafe values (start-up refuses) and changed harmless ones. */
export function ignoredSettings(s: Settings): IgnoredFinding[] {
  const out: IgnoredFinding[] = [];
  for (const [key, entry] of Object.entries(IGNORED_SETTINGS)) {
    const name = key as SettingName;
    const value: unknown = s[name];
    if (entry === undefined || showSettingValue(value) === showSettingValue(SETTINGS[name].default)) continue;
    if (entry.verdict === "unsafe") {
      if (entry.ok.includes(value)) continue;
      out.push({ name, value, verdict: "unsafe", message: `${name} = ${showSettingValue(value)} is not supported yet: ${entry.why}` });
    } else {
      out.push({ name, value, verdict: "harmless", message: `${name} is accepted for PgBouncer compatibility and not acted on: ${entry.why}` });
    }
  }
  return out;
}

/** Result of coercing one raw value: the typed value, or the reason it was refused. */
export type Coerced = { ok: true; value: unknown } | { ok: false; reason: string };

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);
const INT_RE = /^[+-]?\d+$/;
/** A file mode as PgBouncer reads one (strtol base 0): a leading 0 (or 0o) means octal. */
const OCTAL_RE = /^0o?[0-7]*$/i;
const DECIMAL_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

function describeValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return String(v);
}

function refuse(reason: string): Coerced {
  return { ok: false, reason };
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return "";
}

/**
 * Coerce a raw value (from a file, an env variable or a CLI override) to a setting kind.
 * `secret` keeps the value out of the reason (passwords).
 */
export function coerceValue(kind: SettingKind, raw: unknown, secret = false): Coerced {
  const got = secret ? "" : `, got ${describeValue(raw)}`;
  switch (kind.type) {
    case "string":
      return typeof raw === "string" ? { ok: true, value: raw } : refuse(`must be a string${secret ? "" : `, got ${typeof raw}`}`);
    case "bool": {
      if (typeof raw === "boolean") return { ok: true, value: raw };
      if (raw === 1 || raw === 0) return { ok: true, value: raw === 1 };
      if (typeof raw === "string") {
        const w = raw.trim().toLowerCase();
        if (TRUE_WORDS.has(w)) return { ok: true, value: true };
        if (FALSE_WORDS.has(w)) return { ok: true, value: false };
      }
      return refuse(`must be a boolean (true/false, 1/0, yes/no, on/off)${got}`);
    }
    case "int": {
      const { min, max } = kind;
      const want = `must be an integer${rangeText(min, max)}${kind.auto ? ' or "auto"' : ""}${kind.why ? ` (${kind.why})` : ""}`;
      if (kind.auto && typeof raw === "string" && raw.trim().toLowerCase() === "auto") return { ok: true, value: "auto" };
      let n: number;
      if (typeof raw === "number") n = raw;
      else if (typeof raw === "bigint") n = Number(raw);
      else if (typeof raw === "string" && kind.octal && OCTAL_RE.test(raw.trim())) n = parseInt(raw.trim().replace(/^0o?/i, "") || "0", 8);
      else if (typeof raw === "string" && INT_RE.test(raw.trim())) n = Number(raw.trim());
      else return refuse(`${want}${got}`);
      if (!Number.isSafeInteger(n)) return refuse(`${want}${got}`);
      if ((min !== undefined && n < min) || (max !== undefined && n > max)) return refuse(`${want}${got}`);
      return { ok: true, value: n };
    }
    case "seconds": {
      const min = kind.min ?? 0;
      const want = `must be a number of seconds >= ${min}${kind.why ? ` (${kind.why})` : ""}`;
      let n: number;
      if (typeof raw === "number") n = raw;
      else if (typeof raw === "string" && DECIMAL_RE.test(raw.trim())) n = Number(raw.trim());
      else return refuse(`${want}${got}`);
      if (!Number.isFinite(n) || n < min) return refuse(`${want}${got}`);
      return { ok: true, value: n };
    }
    case "enum": {
      if (typeof raw === "string") {
        const w = raw.trim().toLowerCase();
        const hit = kind.values.find((v) => v.toLowerCase() === w);
        if (hit !== undefined) return { ok: true, value: hit };
      }
      return refuse(`must be one of ${kind.values.join(", ")}${got}`);
    }
    case "list": {
      if (typeof raw === "string") {
        return { ok: true, value: raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0) };
      }
      if (Array.isArray(raw)) {
        const bad = raw.findIndex((s) => typeof s !== "string");
        if (bad >= 0) return refuse(`must be a list of strings; item ${bad} is ${describeValue(raw[bad])}`);
        return { ok: true, value: raw.map((s: string) => s.trim()).filter((s) => s.length > 0) };
      }
      return refuse(`must be an array of strings or a comma-separated string${got}`);
    }
  }
}

/** Levenshtein distance, small inputs only (config key names). */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The known name closest to `name` within edit distance 2, if any. */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  const lower = name.toLowerCase();
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

/** The reason text for an unknown key, with a suggestion when one is close. */
export function unknownKeyReason(what: string, name: string, known: Iterable<string>): string {
  const near = closestName(name, known);
  return `unknown ${what} ${JSON.stringify(name)}` + (near !== undefined ? `; did you mean ${JSON.stringify(near)}?` : "");
}

/** listen_addr's addresses, as PgBouncer reads it: a comma-separated list ("*" for all); empty: the Unix socket alone. */
export function listenAddrs(value: string): string[] {
  return value
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
}
