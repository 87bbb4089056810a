// Child process: opens N client connections, logs each in (StartupMessage .. ReadyForQuery), holds them idle.
// Usage: bun bench/idle-connector.ts HOST PORT COUNT USER DATABASE [CONCURRENCY]
// Prints one JSON line {"ready": n, "failed": m, "errors": [...]} once every login finished, then waits for SIGTERM.
import type { Socket } from "bun";

interface Login {
  buf: Buffer;
  done: boolean;
}

const [host = "127.0.0.1", portArg = "0", countArg = "0", user = "postgres", database = "postgres", concArg = "200"] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const concurrency = Math.max(1, Number(concArg));

function startupMessage(): Buffer {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0pgbun-bench-idle\0\0`);
  const msg = Buffer.alloc(8 + params.length);
  msg.writeInt32BE(msg.length, 0);
  msg.writeInt32BE(196608, 4); // protocol 3.0
  params.copy(msg, 8);
  return msg;
}

const STARTUP = startupMessage();
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
  // ErrorResponse fields: code byte, C string; 'M' is the message
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = body[at]!;
    const end = body.indexOf(0, at + 1);
    if (code === 0x4d) return body.toString("utf8", at + 1, end);
    at = end + 1;
  }
  return "ErrorResponse";
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

/** Walks complete messages; ReadyForQuery ends the login, ErrorResponse or an auth request other than Ok fails it. */
function onData(socket: Socket<Login>, chunk: Uint8Array): void {
  const login = socket.data;
  login.buf = login.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([login.buf, chunk]);
  while (login.buf.length >= 5 && !login.done) {
    const type = login.buf[0]!;
    const len = login.buf.readInt32BE(1);
    if (login.buf.length < len + 1) return;
    const body = login.buf.subarray(5, len + 1);
    if (type === 0x5a) finish(login, true);
    else if (type === 0x45) finish(login, false, errorText(body));
    else if (type === 0x52 && body.readInt32BE(0) !== 0) finish(login, false, `server asked for authentication (code ${body.readInt32BE(0)}); use trust`);
    login.buf = login.buf.subarray(len + 1);
  }
  if (login.done) login.buf = Buffer.alloc(0);
}

function openOne(): void {
  started++;
  const login: Login = { buf: Buffer.alloc(0), done: false };
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
        finish(socket.data, false, "closed by the pooler during login");
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
