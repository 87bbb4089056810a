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
import type { DatabaseEntry, UserEntry } from "../../plugin-sdk/config.ts";

export const FALLBACK_DATABASE = "*";
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 5432;

const COUNT: SettingKind = { type: "int", min: 0 };
const TEXT: SettingKind = { type: "string" };
const SECONDS: SettingKind = { type: "seconds" };
const POOL_MODE: SettingKind = { type: "enum", values: POOL_MODES };

/** Keys of a database entry besides `host`, which has its own parsing. */
const DATABASE_FIELDS: Record<string, SettingKind> = {
  port: { type: "int", min: 1, max: 65535 },
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
};
const DATABASE_KEYS = ["host", ...Object.keys(DATABASE_FIELDS)];

const USER_FIELDS: Record<string, SettingKind> = {
  pool_mode: POOL_MODE,
  pool_size: COUNT,
  max_user_connections: COUNT,
  query_timeout: SECONDS,
  idle_transaction_timeout: SECONDS,
  client_idle_timeout: SECONDS,
  reserve_pool_size: COUNT,
};

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
  known: string[],
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

function parseHosts(raw: unknown, path: string, fail: Fail): string[] {
  let parts: unknown[];
  if (raw === undefined) return [DEFAULT_HOST];
  if (typeof raw === "string") parts = raw.split(",");
  else if (Array.isArray(raw)) parts = raw;
  else return fail(path, `must be a host name, a comma-separated list or an array, got ${typeof raw}`);
  const hosts: string[] = [];
  for (const p of parts) {
    if (typeof p !== "string") fail(path, "must contain only strings");
    const h = p.trim();
    if (h === "") fail(path, "has an empty host name");
    hosts.push(h);
  }
  if (hosts.length === 0) fail(path, "needs at least one host");
  return hosts;
}

function parseDatabaseEntry(name: string, raw: unknown, settings: Settings, fail: Fail): DatabaseEntry {
  const path = `databases.${name}`;
  const record = entryRecord(raw, path, fail);
  const fields: Record<string, unknown> = {};
  readFields(record, DATABASE_FIELDS, DATABASE_KEYS, path, fields, fail, new Set(["host"]));
  const entry: DatabaseEntry = {
    name,
    host: parseHosts(record.host, `${path}.host`, fail),
    port: (fields.port as number | undefined) ?? DEFAULT_PORT,
  };
  delete fields.port;
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
  const known = Object.keys(USER_FIELDS);
  for (const [name, value] of Object.entries(raw)) {
    if (name === "") fail("users", "a user name must not be empty");
    const path = `users.${name}`;
    const entry: UserEntry = { name };
    readFields(entryRecord(value, path, fail), USER_FIELDS, known, path, entry as unknown as Record<string, unknown>, fail, new Set());
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
  for (const [key, value] of Object.entries(entry)) {
    if (key === "name" || value === undefined) continue;
    const text = SECRET_KEYS.has(key) ? "***" : Array.isArray(value) ? value.join(",") : String(value);
    parts.push(`${key}=${SECRET_KEYS.has(key) ? text : quoteConnValue(text)}`);
  }
  return parts.join(" ");
}
