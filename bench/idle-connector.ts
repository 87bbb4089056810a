// Child process: opens N client connections, logs each in (StartupMessage .. ReadyForQuery), holds them idle.
// Usage: bun bench/idle-connector.ts [--prepare[=K]] HOST PORT COUNT USER DATABASE [CONCURRENCY]
// --prepare: after login each connection prepares K named statements (5 without =K) as a driver does, then idles.
// Prints one JSON line {"ready": n, "failed": m, "errors": [...]} once every connection finished, then waits for SIGTERM.
import type { Socket } from "bun";

interface Login {
  buf: Buffer;
  done: boolean;
  /** StartupMessage answered (ReadyForQuery): from then on the messages answer the prepared statements. */
  loggedIn: boolean;
  /** ReadyForQuery and DataRow messages seen after login (one of each per statement). */
  synced: number;
  rows: number;
}

const argv = process.argv.slice(2);
const prepareFlag = argv.find((a) => a === "--prepare" || a.startsWith("--prepare="));
/** Named statements each connection prepares after login (0: login only). */
const statements = prepareFlag === undefined ? 0 : prepareFlag === "--prepare" ? 5 : Number(prepareFlag.slice("--prepare=".length));
const positional = argv.filter((a) => !a.startsWith("--"));
const [host = "127.0.0.1", portArg = "0", countArg = "0", user = "postgres", database = "postgres", concArg = "200"] = positional;
const port = Number(portArg);
const count = Number(countArg);
const concurrency = Math.max(1, Number(concArg));
if (!Number.isInteger(statements) || statements < 0) throw new Error(`--prepare=${statements}: a whole number of statements`);

function startupMessage(): Buffer {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0pgbun-bench-idle\0\0`);
  const msg = Buffer.alloc(8 + params.length);
  msg.writeInt32BE(msg.length, 0);
  msg.writeInt32BE(196608, 4); // protocol 3.0
  params.copy(msg, 8);
  return msg;
}

/** A frontend message: type byte, int32 length, then the body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstring = (s: string) => Buffer.from(`${s}\0`);

/**
 * Statement i as a driver runs a named query the first time, all in one write: Parse "s<i>" "SELECT $1::int + <i>"
 * (no parameter types: the cast gives int4), Bind of the unnamed portal with $1 = '1' in text, Execute, Sync.
 */
function preparedStatements(k: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < k; i++) {
    const name = `s${i}`;
    parts.push(message("P", Buffer.concat([cstring(name), cstring(`SELECT $1::int + ${i}`), int16(0)])));
    parts.push(message("B", Buffer.concat([cstring(""), cstring(name), int16(0), int16(1), int32(1), Buffer.from("1"), int16(0)])));
    parts.push(message("E", Buffer.concat([cstring(""), int32(0)])));
    parts.push(message("S", Buffer.alloc(0)));
  }
  return Buffer.concat(parts);
}

const STARTUP = startupMessage();
const PREPARE = preparedStatements(statements);
const sockets: Socket<Login>[] = [];
const errors = new Map<string, number>();
let ready = 0;
let failed = 0;
let started = 0;
let finished = 0;
let reported = false;

function noteError(text: string): void {
  errors.set(text, (errors.get(text) ?? 0) + 1);
}

function errorText(body: Buffer): string {
  // ErrorResponse fields: code byte, C string; 'C' is the SQLSTATE, 'M' the message
  let at = 0;
  let code = "";
  let text = "ErrorResponse";
  while (at < body.length && body[at] !== 0) {
    const field = body[at]!;
    const end = body.indexOf(0, at + 1);
    if (field === 0x43) code = body.toString("utf8", at + 1, end);
    if (field === 0x4d) text = body.toString("utf8", at + 1, end);
    at = end + 1;
  }
  return code ? `${code} ${text}` : text;
}

/** The one column of a DataRow as text. */
function dataRowText(body: Buffer): string {
  const len = body.readInt32BE(2);
  return len < 0 ? "NULL" : body.toString("utf8", 6, 6 + len);
}

function finish(login: Login, ok: boolean, error?: string): void {
  if (login.done) return;
  login.done = true;
  if (ok) ready++;
  else {
    failed++;
    noteError(error ?? "connection failed");
  }
  finished++;
  next();
}

/** After login: each statement's DataRow must hold 1 + i, and its Sync's ReadyForQuery ends it. */
function onStatementMessage(login: Login, type: number, body: Buffer): void {
  if (type === 0x44) {
    const value = dataRowText(body);
    if (value !== String(1 + login.rows)) finish(login, false, `statement s${login.rows} returned ${value}, not ${1 + login.rows}`);
    login.rows++;
  } else if (type === 0x45) finish(login, false, `prepared statements: ${errorText(body)}`);
  else if (type === 0x5a && ++login.synced === statements) {
    finish(login, login.rows === statements, `${login.rows} rows for ${statements} statements`);
  }
}

/** Walks complete messages; ReadyForQuery ends the login, ErrorResponse or an auth request other than Ok fails it. */
function onData(socket: Socket<Login>, chunk: Uint8Array): void {
  const login = socket.data;
  login.buf = login.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([login.buf, chunk]);
  while (login.buf.length >= 5 && !login.done) {
    const type = login.buf[0]!;
    const len = login.buf.readInt32BE(1);
    if (login.buf.length < len + 1) return;
    const body = login.buf.subarray(5, len + 1);
    if (login.loggedIn) onStatementMessage(login, type, body);
    else if (type === 0x5a && statements > 0) {
      login.loggedIn = true;
      socket.write(PREPARE);
    } else if (type === 0x5a) finish(login, true);
    else if (type === 0x45) finish(login, false, errorText(body));
    else if (type === 0x52 && body.readInt32BE(0) !== 0) finish(login, false, `server asked for authentication (code ${body.readInt32BE(0)}); use trust`);
    login.buf = login.buf.subarray(len + 1);
  }
  if (login.done) login.buf = Buffer.alloc(0);
}

function openOne(): void {
  started++;
  const login: Login = { buf: Buffer.alloc(0), done: false, loggedIn: false, synced: 0, rows: 0 };
  Bun.connect<Login>({
    hostname: host,
    port,
    data: login,
    socket: {
      open(socket) {
        sockets.push(socket);
        socket.write(STARTUP);
      },
      data: onData,
      close(socket) {
        finish(socket.data, false, socket.data.loggedIn ? "closed by the pooler during the prepared statements" : "closed by the pooler during login");
      },
      error(socket, err) {
        finish(socket.data, false, err.message);
      },
      connectError(_socket, err) {
        finish(login, false, `connect: ${err.message}`);
      },
    },
  }).catch((err: unknown) => finish(login, false, `connect: ${err instanceof Error ? err.message : String(err)}`));
}

function next(): void {
  while (started < count && started - finished < concurrency) openOne();
  if (finished === count && !reported) {
    reported = true;
    const top = [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([text, n]) => `${n}x ${text}`);
    process.stdout.write(`${JSON.stringify({ ready, failed, errors: top })}\n`);
  }
}

process.on("SIGTERM", () => {
  for (const s of sockets) s.end();
  process.exit(0);
});
next();
setInterval(() => undefined, 1 << 30); // stay alive holding the connections
