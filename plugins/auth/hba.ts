// auth_hba_file: PgBouncer's subset of pg_hba.conf (local/host/hostssl/hostnossl, name lists, addresses, methods), parsed and matched.
import { dirname, resolve } from "node:path";
import { addressMask, ipMatches, parseIp, prefixMask, type IpBytes } from "./address.ts";

export type HbaConnectionType = "local" | "host" | "hostssl" | "hostnossl";
export type HbaMethod = "trust" | "reject" | "password" | "md5" | "scram-sha-256" | "cert";

/** A database or user column: `all`, `sameuser` (databases only) and names (quoted names are never keywords). */
export interface HbaNames {
  all: boolean;
  sameuser: boolean;
  names: ReadonlySet<string>;
}

export interface HbaRule {
  /** Where it was written, for logs. */
  readonly file: string;
  readonly line: number;
  readonly type: HbaConnectionType;
  readonly databases: HbaNames;
  readonly users: HbaNames;
  /** null: any address (`all`, and `local` lines, which have none). */
  readonly address: { readonly bytes: IpBytes; readonly mask: IpBytes } | null;
  readonly method: HbaMethod;
}

/** A line pgbun cannot take: the file, its line number and why (start-up refuses, a reload keeps the old rules). */
export class HbaError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

/** One item of a column: its text and whether it was quoted. */
interface Token {
  text: string;
  quoted: boolean;
}

/**
 * The columns of one line: whitespace separates columns, commas items of one column (`a, b` too), `#` starts a
 * comment, `"..."` quotes (with `""` for a quote) as in pg_hba.conf. Throws a reason string on a broken line.
 */
export function tokenize(line: string): Token[][] {
  const columns: Token[][] = [];
  let pos = 0;
  const skipSpace = () => {
    while (pos < line.length && (line[pos] === " " || line[pos] === "\t" || line[pos] === "\r")) pos++;
  };
  const item = (): Token => {
    if (line[pos] === '"') {
      let text = "";
      for (pos++; pos < line.length; pos++) {
        if (line[pos] !== '"') text += line[pos];
        else if (line[pos + 1] === '"') {
          text += '"';
          pos++;
        } else {
          pos++;
          return { text, quoted: true };
        }
      }
      throw "unterminated quoted string";
    }
    const start = pos;
    while (pos < line.length && !' \t\r,#"'.includes(line[pos]!)) pos++;
    if (line[pos] === '"') throw "a quote inside a word";
    if (pos === start) throw "an empty item in a comma list";
    return { text: line.slice(start, pos), quoted: false };
  };
  for (;;) {
    skipSpace();
    if (pos >= line.length || line[pos] === "#") return columns;
    const column = [item()];
    for (;;) {
      skipSpace();
      if (line[pos] !== ",") break;
      pos++;
      skipSpace();
      column.push(item());
    }
    columns.push(column);
  }
}

const CONNECTION_TYPES: ReadonlySet<string> = new Set(["local", "host", "hostssl", "hostnossl"]);
const METHODS: ReadonlySet<string> = new Set(["trust", "reject", "password", "md5", "scram-sha-256", "cert"]);
const UNSUPPORTED_METHODS: Readonly<Record<string, string>> = {
  peer: "peer needs the Unix socket peer's credentials (SO_PEERCRED), which Bun cannot read; use another method on local lines",
  ident: "ident is not supported (as in PgBouncer)",
  gss: "gss is not supported (as in PgBouncer)",
  sspi: "sspi is not supported (as in PgBouncer)",
  pam: "pam is not supported",
  ldap: "ldap is not supported",
  radius: "radius is not supported",
  bsd: "bsd is not supported",
};
/** Nested @file includes deeper than this are taken for a loop. */
const MAX_INCLUDE_DEPTH = 10;

/** Reads an @file include (path already resolved); throws when it cannot be read. */
export type ReadInclude = (path: string) => string;

/** A database or user column. `@file` names are read relative to the file that names them. */
function parseNames(column: Token[], isDatabase: boolean, file: string, read: ReadInclude, depth: number, into?: { all: boolean; sameuser: boolean; names: Set<string> }): HbaNames {
  const out = into ?? { all: false, sameuser: false, names: new Set<string>() };
  const what = isDatabase ? "database" : "user";
  for (const t of column) {
    if (t.quoted) {
      out.names.add(t.text);
      continue;
    }
    const word = t.text;
    if (word === "all") out.all = true;
    else if (isDatabase && word === "sameuser") out.sameuser = true;
    else if (isDatabase && (word === "samerole" || word === "samegroup")) throw `${word} is not supported (as in PgBouncer)`;
    else if (isDatabase && word === "replication") throw "replication is not supported: pgbun does not pool replication connections";
    else if (word.startsWith("+")) throw `group membership (${word}) is not supported (as in PgBouncer): list the ${what}s, or use an @file`;
    else if (word.startsWith("@")) {
      if (depth >= MAX_INCLUDE_DEPTH) throw `@file includes nested deeper than ${MAX_INCLUDE_DEPTH} (a loop?)`;
      const path = resolve(dirname(file), word.slice(1));
      let text: string;
      try {
        text = read(path);
      } catch (err) {
        throw `cannot read ${word}: ${(err as Error).message}`;
      }
      for (const line of text.split("\n")) {
        for (const col of tokenize(line)) parseNames(col, isDatabase, path, read, depth + 1, out);
      }
    } else out.names.add(word);
  }
  return out;
}

/** The address column(s) of a host line: `all`, CIDR, or an address and a mask column. Returns the columns used too. */
function parseAddress(columns: Token[][], at: number): { address: HbaRule["address"]; used: number } {
  const col = columns[at];
  if (col === undefined) throw "no address";
  if (col.length !== 1) throw "an address column takes one address";
  const text = col[0]!.text;
  if (!col[0]!.quoted) {
    if (text === "all") return { address: null, used: 1 };
    if (text === "samehost" || text === "samenet") throw `${text} is not supported: write the addresses out`;
  }
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === null) throw `invalid IP address "${text}" (host names are not supported: give an address)`;
  if (slash >= 0) {
    const mask = prefixMask(text.slice(slash + 1), ip.family);
    if (mask === null) throw `invalid CIDR mask in address "${text}"`;
    return { address: { bytes: ip.bytes, mask }, used: 1 };
  }
  const maskCol = columns[at + 1];
  if (maskCol === undefined || maskCol.length !== 1) throw `no mask after address "${text}" (write it as ${text}/bits or give a mask column)`;
  const mask = addressMask(maskCol[0]!.text, ip.family);
  if (mask === null) throw `invalid IP mask "${maskCol[0]!.text}"`;
  return { address: { bytes: ip.bytes, mask }, used: 2 };
}

function parseLine(columns: Token[][], file: string, line: number, read: ReadInclude): HbaRule {
  const typeCol = columns[0]!;
  const type = typeCol[0]!.text;
  if (typeCol.length !== 1 || typeCol[0]!.quoted || !CONNECTION_TYPES.has(type)) {
    if (type === "hostgssenc" || type === "hostnogssenc") throw `${type} is not supported: pgbun has no GSSAPI encryption`;
    throw `invalid connection type "${type}"`;
  }
  if (columns.length < 2) throw "end of line before the database column";
  if (columns.length < 3) throw "end of line before the user column";
  const databases = parseNames(columns[1]!, true, file, read, 0);
  const users = parseNames(columns[2]!, false, file, read, 0);
  let at = 3;
  let address: HbaRule["address"] = null;
  if (type !== "local") {
    const a = parseAddress(columns, at);
    address = a.address;
    at += a.used;
  }
  const methodCol = columns[at];
  if (methodCol === undefined) throw "end of line before the authentication method";
  const method = methodCol[0]!.text;
  if (methodCol.length !== 1 || methodCol[0]!.quoted) throw "the authentication method takes one word";
  if (UNSUPPORTED_METHODS[method] !== undefined) throw UNSUPPORTED_METHODS[method]!;
  if (!METHODS.has(method)) throw `invalid authentication method "${method}"`;
  if (method === "cert" && type !== "hostssl") throw "cert authentication is only supported on hostssl connections";
  if (columns.length > at + 1) {
    const options = columns.slice(at + 1).map((c) => c.map((t) => t.text).join(",")).join(" ");
    throw `authentication options are not supported (${options})`;
  }
  return { file, line, type: type as HbaConnectionType, databases, users, address, method: method as HbaMethod };
}

/**
 * The rules of an HBA file's text, in order. Every line must be understood: a line pgbun cannot take throws an
 * HbaError (PgBouncer skips such lines with a warning, which silently changes who gets in). `file` resolves @file
 * includes and names the file in errors.
 */
export function parseHba(text: string, file: string, read: ReadInclude): HbaRule[] {
  const rules: HbaRule[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    try {
      const columns = tokenize(lines[i]!);
      if (columns.length > 0) rules.push(parseLine(columns, file, i + 1, read));
    } catch (reason) {
      if (typeof reason !== "string") throw reason;
      throw new HbaError(file, i + 1, reason);
    }
  }
  return rules;
}

/** What an HBA rule is matched against. */
export interface HbaConnection {
  /** Came in on the Unix socket (only `local` lines apply; TCP clients never match them). */
  unix: boolean;
  /** Came in over TLS (hostssl lines need it, hostnossl lines refuse it). */
  tls: boolean;
  /** The client's IP address (Client.addr); unused for Unix-socket clients. */
  addr: string;
  database: string;
  user: string;
}

function namesMatch(names: HbaNames, name: string, user: string): boolean {
  return names.all || (names.sameuser && name === user) || names.names.has(name);
}

/** The first rule that matches, as PostgreSQL and PgBouncer take it; null when none does. */
export function matchHba(rules: readonly HbaRule[], c: HbaConnection): HbaRule | null {
  const ip = c.unix ? null : parseIp(c.addr);
  for (const rule of rules) {
    if (c.unix) {
      if (rule.type !== "local") continue;
    } else {
      if (rule.type === "local") continue;
      if (rule.type === "hostssl" && !c.tls) continue;
      if (rule.type === "hostnossl" && c.tls) continue;
      if (rule.address !== null && (ip === null || !ipMatches(ip.bytes, rule.address.bytes, rule.address.mask))) continue;
    }
    if (!namesMatch(rule.databases, c.database, c.user)) continue;
    if (!namesMatch(rule.users, c.user, c.user)) continue;
    return rule;
  }
  return null;
}
