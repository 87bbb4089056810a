// Parsing and validation of the [databases] and [users] sections: objects or libpq-style "key=value" strings.
import {
  coerceValue,
  POOL_MODES,
  unknownKeyReason,
  type PoolMode,
  type SettingKind,
  type Settings,
} from "./settings.ts";

/** Raises a configuration error at a key path; the caller binds the file name. Never returns. */
export type Fail = (key: string, reason: string) => never;

export type { DatabaseEntry, UserEntry } from "../../plugin-sdk/config.ts";
import { LOAD_BALANCE_HOSTS, TARGET_SESSION_ATTRS, type DatabaseEntry, type UserEntry } from "../../plugin-sdk/config.ts";

export const FALLBACK_DATABASE = "*";
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 5432;

const COUNT: SettingKind = { type: "int", min: 0 };
const TEXT: SettingKind = { type: "string" };
const SECONDS: SettingKind = { type: "seconds" };
const POOL_MODE: SettingKind = { type: "enum", values: POOL_MODES };
const PORT: SettingKind = { type: "int", min: 1, max: 65535 };

/** Keys of a database entry besides `host` and `port`, which have their own parsing. */
const DATABASE_FIELDS: Record<string, SettingKind> = {
  dbname: TEXT,
  user: TEXT,
  password: TEXT,
  pool_size: COUNT,
  pool_mode: POOL_MODE,
  min_pool_size: COUNT,
  reserve_pool_size: COUNT,
  max_db_connections: COUNT,
  connect_query: TEXT,
  client_encoding: TEXT,
  datestyle: TEXT,
  timezone: TEXT,
  application_name: TEXT,
  target_session_attrs: { type: "enum", values: TARGET_SESSION_ATTRS },
  load_balance_hosts: { type: "enum", values: LOAD_BALANCE_HOSTS },
};
/** Every key a [databases] entry may have. */
export const DATABASE_KEYS: readonly string[] = ["host", "port", ...Object.keys(DATABASE_FIELDS)];

const USER_FIELDS: Record<string, SettingKind> = {
  pool_mode: POOL_MODE,
  pool_size: COUNT,
  max_user_connections: COUNT,
  query_timeout: SECONDS,
  idle_transaction_timeout: SECONDS,
  client_idle_timeout: SECONDS,
  reserve_pool_size: COUNT,
  transaction_timeout: SECONDS,
};

/** Every key a [users] entry may have. */
export const USER_KEYS: readonly string[] = Object.keys(USER_FIELDS);

/** Keys whose values never appear in errors or descriptions. */
const SECRET_KEYS = new Set(["password"]);

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Split a libpq/PgBouncer connection string (`host=a port=5432 password='it\'s'`) into key/value pairs.
 * Throws an Error whose message names the key and position but never a value (it may be a password).
 */
export function parseConnString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = text.length;
  const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r";
  while (true) {
    while (i < n && isSpace(text[i])) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && text[i] !== "=" && !isSpace(text[i])) i++;
    const key = text.slice(keyStart, i);
    while (i < n && isSpace(text[i])) i++;
    if (key === "") throw new Error(`missing key before "=" at position ${keyStart + 1}`);
    if (text[i] !== "=") throw new Error(`missing "=" after ${JSON.stringify(key)}`);
    i++;
    while (i < n && isSpace(text[i])) i++;
    let value = "";
    if (text[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i]!;
        if (c === "\\" && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw new Error(`unterminated quoted value for ${JSON.stringify(key)}`);
      if (i < n && !isSpace(text[i])) throw new Error(`missing space after the quoted value of ${JSON.stringify(key)}`);
    } else {
      while (i < n && !isSpace(text[i])) {
        if (text[i] === "\\" && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else {
          value += text[i];
          i++;
        }
      }
    }
    if (Object.hasOwn(out, key)) throw new Error(`${JSON.stringify(key)} is given twice`);
    out[key] = value;
  }
  return out;
}

/** Read an entry value (object or connection string) as a key/value record, or fail. */
function entryRecord(raw: unknown, path: string, fail: Fail): Record<string, unknown> {
  if (typeof raw === "string") {
    try {
      return parseConnString(raw);
    } catch (err) {
      return fail(path, `malformed connection string: ${(err as Error).message}`);
    }
  }
  if (raw === null || raw === undefined) return {};
  if (isPlainObject(raw)) return raw;
  return fail(path, `must be an object or a "key=value ..." string, got ${Array.isArray(raw) ? "an array" : typeof raw}`);
}

/** Coerce the known fields of one entry into `target`, failing on unknown keys and bad values. */
function readFields(
  record: Record<string, unknown>,
  fields: Record<string, SettingKind>,
  known: readonly string[],
  path: string,
  target: Record<string, unknown>,
  fail: Fail,
  skip: ReadonlySet<string>,
): void {
  for (const [key, value] of Object.entries(record)) {
    if (skip.has(key)) continue;
    const kind = fields[key];
    if (kind === undefined) fail(`${path}.${key}`, unknownKeyReason("key", key, known));
    if (value === undefined) continue;
    const c = coerceValue(kind, value, SECRET_KEYS.has(key));
    if (!c.ok) fail(`${path}.${key}`, c.reason);
    target[key] = c.value;
  }
}

/** A host of the `host` list and the port it gave itself (`db1:5433`, `[::1]:5433`), if any. */
interface HostSpec {
  host: string;
  port?: number;
}

/**
 * One host of the list. A trailing `:port` is that host's own (as in libpq's URIs); an IPv6 address takes it only in
 * brackets, since its own colons would be ambiguous; a Unix socket directory ("/…") never has one.
 */
function parseHostSpec(text: string, path: string, fail: Fail): HostSpec {
  if (text.startsWith("/")) return { host: text };
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] === undefined ? undefined : hostPort(bracketed[2], text, path, fail) };
  const colon = text.lastIndexOf(":");
  if (colon < 0 || text.indexOf(":") !== colon) return { host: text };
  const host = text.slice(0, colon);
  if (host === "") fail(path, `has a port with no host name: ${JSON.stringify(text)}`);
  return { host, port: hostPort(text.slice(colon + 1), text, path, fail) };
}

function hostPort(raw: string, text: string, path: string, fail: Fail): number {
  const c = coerceValue(PORT, raw);
  if (!c.ok) fail(path, `the port of ${JSON.stringify(text)} ${c.reason}`);
  return c.value as number;
}

function parseHosts(raw: unknown, path: string, fail: Fail): HostSpec[] {
  let parts: unknown[];
  if (raw === undefined) return [{ host: DEFAULT_HOST }];
  if (typeof raw === "string") parts = raw.split(",");
  else if (Array.isArray(raw)) parts = raw;
  else return fail(path, `must be a host name, a comma-separated list or an array, got ${typeof raw}`);
  const hosts: HostSpec[] = [];
  for (const p of parts) {
    if (typeof p !== "string") fail(path, "must contain only strings");
    const h = p.trim();
    if (h === "") fail(path, "has an empty host name");
    hosts.push(parseHostSpec(h, path, fail));
  }
  if (hosts.length === 0) fail(path, "needs at least one host");
  return hosts;
}

/** `port`: one port for every host, or (as libpq) a comma list or array with one port per host. */
function parsePorts(raw: unknown, hostCount: number, path: string, fail: Fail): number[] {
  if (raw === undefined) return [];
  const parts = typeof raw === "string" && raw.includes(",") ? raw.split(",") : Array.isArray(raw) ? raw : [raw];
  const ports = parts.map((p) => {
    const c = coerceValue(PORT, typeof p === "string" ? p.trim() : p);
    if (!c.ok) fail(path, c.reason);
    return c.value as number;
  });
  if (ports.length > 1 && ports.length !== hostCount) fail(path, `lists ${ports.length} ports for ${hostCount} hosts: give one port, or one per host`);
  return ports;
}

/**
 * Each host's port: its own (`host:port`), else the `port` list's for its place, else the single `port`, else 5432.
 * `ports` is kept only when the hosts' ports differ, so a plain entry stays as it was.
 */
function hostPorts(specs: HostSpec[], ports: number[]): { port: number; ports?: number[] } {
  const each = specs.map((s, i) => s.port ?? ports[ports.length === 1 ? 0 : i] ?? DEFAULT_PORT);
  const port = each[0]!;
  return each.every((p) => p === port) ? { port } : { port, ports: each };
}

function parseDatabaseEntry(name: string, raw: unknown, settings: Settings, fail: Fail): DatabaseEntry {
  const path = `databases.${name}`;
  const record = entryRecord(raw, path, fail);
  const fields: Record<string, unknown> = {};
  readFields(record, DATABASE_FIELDS, DATABASE_KEYS, path, fields, fail, new Set(["host", "port"]));
  const specs = parseHosts(record.host, `${path}.host`, fail);
  const entry: DatabaseEntry = {
    name,
    host: specs.map((s) => s.host),
    ...hostPorts(specs, parsePorts(record.port, specs.length, `${path}.port`, fail)),
  };
  Object.assign(entry, fields);
  if (entry.dbname === undefined && name !== FALLBACK_DATABASE) entry.dbname = name;
  if (entry.dbname === "") fail(`${path}.dbname`, "must not be empty");

  const poolSize = entry.pool_size ?? settings.default_pool_size;
  const minPool = entry.min_pool_size ?? settings.min_pool_size;
  if (minPool > poolSize) {
    const own = entry.min_pool_size !== undefined;
    fail(
      `${path}.${own ? "min_pool_size" : "pool_size"}`,
      `min_pool_size ${minPool}${own ? "" : " (global)"} is larger than pool_size ${poolSize}` +
        `${entry.pool_size === undefined ? " (default_pool_size)" : ""}`,
    );
  }
  return entry;
}

/**
 * A table keyed by names clients choose: no prototype, so a database called `constructor` or a user called
 * `toString` is looked up as a name, not found as an Object method.
 */
function ownNames<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * Validate `[databases]`. Absent means a single `"*"` entry to 127.0.0.1:5432; present but empty means
 * no database is reachable (as in PgBouncer).
 */
export function parseDatabases(raw: unknown, settings: Settings, fail: Fail): Record<string, DatabaseEntry> {
  if (raw === undefined) {
    return Object.assign(ownNames<DatabaseEntry>(), { [FALLBACK_DATABASE]: { name: FALLBACK_DATABASE, host: [DEFAULT_HOST], port: DEFAULT_PORT } });
  }
  if (!isPlainObject(raw)) return fail("databases", "must be a table of database entries");
  const out = ownNames<DatabaseEntry>();
  for (const [name, value] of Object.entries(raw)) {
    if (name === "") fail("databases", "a database name must not be empty");
    out[name] = parseDatabaseEntry(name, value, settings, fail);
  }
  return out;
}

/** Validate `[users]`: per-user pool_mode, pool_size, limits and timeouts. */
export function parseUsers(raw: unknown, fail: Fail): Record<string, UserEntry> {
  if (raw === undefined) return ownNames<UserEntry>();
  if (!isPlainObject(raw)) return fail("users", "must be a table of user entries");
  const out = ownNames<UserEntry>();
  for (const [name, value] of Object.entries(raw)) {
    if (name === "") fail("users", "a user name must not be empty");
    const path = `users.${name}`;
    const entry: UserEntry = { name };
    readFields(entryRecord(value, path, fail), USER_FIELDS, USER_KEYS, path, entry as unknown as Record<string, unknown>, fail, new Set());
    out[name] = entry;
  }
  return out;
}

function quoteConnValue(v: string): string {
  return /^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/[\\']/g, (c) => "\\" + c)}'`;
}

/** An entry as a connection string for humans; the password is shown as "***". */
export function formatEntry(entry: DatabaseEntry | UserEntry): string {
  const parts: string[] = [];
  // per-host ports are written back as libpq reads them: a port list (`ports` is no key of its own)
  const ports = (entry as DatabaseEntry).ports;
  for (const [key, value] of Object.entries(entry)) {
    if (key === "name" || key === "ports" || value === undefined) continue;
    if (key === "port" && ports !== undefined) {
      parts.push(`port=${ports.join(",")}`);
      continue;
    }
    const text = SECRET_KEYS.has(key) ? "***" : Array.isArray(value) ? value.join(",") : String(value);
    parts.push(`${key}=${SECRET_KEYS.has(key) ? text : quoteConnValue(text)}`);
  }
  return parts.join(" ");
}
