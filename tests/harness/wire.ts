// A raw PostgreSQL wire-protocol client for tests: exact control over the bytes sent and every message received.
import { connect, type Socket } from "node:net";
import { StartupCode } from "../../plugin-sdk/protocol/codes.ts";
import { MessageWriter } from "../../plugin-sdk/protocol/writer.ts";

/** One backend message: its type character, type byte and body (without the 5-byte header). */
export interface BackendMessage {
  type: string;
  code: number;
  body: Buffer;
}

/** Fields of an ErrorResponse/NoticeResponse by their one-letter code (S, V, C, M, D, ...). */
export type ErrorFields = Record<string, string>;

export class WireTimeout extends Error {
  constructor(
    what: string,
    readonly received: BackendMessage[],
  ) {
    super(`${what}; received so far: ${describe(received)}`);
    this.name = "WireTimeout";
  }
}

const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------------------------
// Message decoding.

export function errorFields(m: BackendMessage | Buffer): ErrorFields {
  const body = Buffer.isBuffer(m) ? m : m.body;
  const out: ErrorFields = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const key = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    out[key] = decoder.decode(body.subarray(i + 1, end));
    i = end + 1;
  }
  return out;
}

/** The SQLSTATE of an ErrorResponse/NoticeResponse. */
export function sqlState(m: BackendMessage): string {
  return errorFields(m).C ?? "";
}

/** Column values of a DataRow as text (NULL as null). */
export function dataRowValues(m: BackendMessage): Array<string | null> {
  const b = m.body;
  const n = b.readInt16BE(0);
  const out: Array<string | null> = [];
  let i = 2;
  for (let k = 0; k < n; k++) {
    const len = b.readInt32BE(i);
    i += 4;
    if (len < 0) out.push(null);
    else {
      out.push(decoder.decode(b.subarray(i, i + len)));
      i += len;
    }
  }
  return out;
}

/** The tag of a CommandComplete ("SELECT 1", "COPY 3", ...). */
export function commandTag(m: BackendMessage): string {
  const end = m.body.indexOf(0);
  return decoder.decode(m.body.subarray(0, end < 0 ? m.body.length : end));
}

/** The status byte of a ReadyForQuery as a character: I, T or E. */
export function readyStatus(m: BackendMessage): string {
  return String.fromCharCode(m.body[0]!);
}

/** name → value of a ParameterStatus. */
export function parameterStatus(m: BackendMessage): [string, string] {
  const a = m.body.indexOf(0);
  const b = m.body.indexOf(0, a + 1);
  return [decoder.decode(m.body.subarray(0, a)), decoder.decode(m.body.subarray(a + 1, b))];
}

/** pid and secret key of a BackendKeyData. */
export function backendKey(m: BackendMessage): { pid: number; secret: Buffer } {
  return { pid: m.body.readInt32BE(0), secret: Buffer.from(m.body.subarray(4)) };
}

/** NegotiateProtocolVersion: newest supported minor version and the unrecognized options. */
export function negotiateProtocol(m: BackendMessage): { minor: number; unsupported: string[] } {
  const minor = m.body.readInt32BE(0);
  const n = m.body.readInt32BE(4);
  const unsupported: string[] = [];
  let i = 8;
  for (let k = 0; k < n; k++) {
    const end = m.body.indexOf(0, i);
    unsupported.push(decoder.decode(m.body.subarray(i, end)));
    i = end + 1;
  }
  return { minor, unsupported };
}

/** A compact description for failure messages: `T D("1") C(SELECT 1) Z(I) E(22012 division by zero)`. */
export function describe(messages: BackendMessage[]): string {
  return messages
    .map((m) => {
      switch (m.type) {
        case "D":
          return `D(${JSON.stringify(dataRowValues(m))})`;
        case "C":
          return `C(${commandTag(m)})`;
        case "Z":
          return `Z(${readyStatus(m)})`;
        case "E":
        case "N": {
          const f = errorFields(m);
          return `${m.type}(${f.C} ${f.M})`;
        }
        default:
          return m.type;
      }
    })
    .join(" ");
}

/** The message types in order, as one string: "12DCZ". */
export function types(messages: BackendMessage[]): string {
  return messages.map((m) => m.type).join("");
}

/** The messages of one type, in order. */
export function only(messages: BackendMessage[], type: string): BackendMessage[] {
  return messages.filter((m) => m.type === type);
}

/** All DataRow values of the messages, row by row. */
export function rows(messages: BackendMessage[]): Array<Array<string | null>> {
  return messages.filter((m) => m.type === "D").map(dataRowValues);
}

// ---------------------------------------------------------------------------------------------------------------
// Message builders (frontend).

function typed(type: string, fill: (w: MessageWriter) => void = () => {}): Buffer {
  const w = new MessageWriter(64).begin(type.charCodeAt(0));
  fill(w);
  return Buffer.from(w.end().finish());
}

export const msg = {
  /** Simple Query. */
  query: (sql: string) => typed("Q", (w) => w.cstring(sql)),
  parse: (name: string, sql: string, paramTypes: number[] = []) =>
    typed("P", (w) => {
      w.cstring(name).cstring(sql).int16(paramTypes.length);
      for (const t of paramTypes) w.int32(t);
    }),
  /** Bind with text parameters and text results. */
  bind: (portal: string, statement: string, params: Array<string | null> = []) =>
    typed("B", (w) => {
      w.cstring(portal).cstring(statement).int16(0).int16(params.length);
      for (const p of params) {
        if (p === null) w.int32(-1);
        else {
          const bytes = Buffer.from(p, "utf8");
          w.int32(bytes.length).bytes(bytes);
        }
      }
      w.int16(0);
    }),
  describe: (kind: "S" | "P", name: string) => typed("D", (w) => w.int8(kind.charCodeAt(0)).cstring(name)),
  execute: (portal = "", maxRows = 0) => typed("E", (w) => w.cstring(portal).int32(maxRows)),
  close: (kind: "S" | "P", name: string) => typed("C", (w) => w.int8(kind.charCodeAt(0)).cstring(name)),
  sync: () => typed("S"),
  flush: () => typed("H"),
  terminate: () => typed("X"),
  copyData: (data: string | Uint8Array) => typed("d", (w) => w.bytes(typeof data === "string" ? Buffer.from(data, "utf8") : data)),
  copyDone: () => typed("c"),
  copyFail: (message: string) => typed("f", (w) => w.cstring(message)),
  /** StartupMessage; `version` defaults to 3.0 (196608). */
  startup: (params: Record<string, string>, version: number = StartupCode.Protocol30) => {
    const w = new MessageWriter(128).beginUntyped().int32(version);
    for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
    return Buffer.from(w.int8(0).end().finish());
  },
  sslRequest: () => untypedCode(StartupCode.SSLRequest),
  gssencRequest: () => untypedCode(StartupCode.GSSENCRequest),
  /** CancelRequest: 16 bytes for a 4-byte secret. */
  cancelRequest: (pid: number, secret: Uint8Array) => {
    const w = new MessageWriter(16 + secret.length).beginUntyped().int32(StartupCode.CancelRequest).int32(pid).bytes(secret);
    return Buffer.from(w.end().finish());
  },
};

function untypedCode(code: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
}

/** Parse/Bind/Execute for one statement (unnamed), optionally followed by Sync. */
export function extendedQuery(sql: string, params: Array<string | null> = [], sync = true): Buffer {
  const parts = [msg.parse("", sql), msg.bind("", "", params), msg.execute("", 0)];
  if (sync) parts.push(msg.sync());
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------------------------
// The connection.

export interface ConnectOptions {
  host: string;
  port: number;
  timeoutMs?: number;
}

export interface QueryResult {
  messages: BackendMessage[];
  rows: Array<Array<string | null>>;
  errors: ErrorFields[];
  status: string;
}

export class WireClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;
  /** Backend key data received at login (pgbun's key). */
  key: { pid: number; secret: Buffer } | null = null;
  /** ParameterStatus values received so far. */
  readonly params = new Map<string, string>();
  /** Every message read so far, in order (for debugging). */
  readonly history: BackendMessage[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  /** Opens the TCP connection (nothing is sent). */
  static connect(opts: ConnectOptions): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: opts.host, port: opts.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${opts.host}:${opts.port} timed out`));
      }, opts.timeoutMs ?? 5_000);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new WireClient(socket));
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** A client over a socket already open, e.g. a node:tls session (direct TLS); nothing is sent. */
  static over(socket: Socket): WireClient {
    return new WireClient(socket);
  }

  /**
   * Connects, sends a StartupMessage and reads to the first ReadyForQuery (or an ErrorResponse).
   * Throws when login fails (use `connect` + `send` to look at a refusal).
   */
  static async login(opts: ConnectOptions & { params: Record<string, string> }): Promise<WireClient> {
    const c = await WireClient.connect(opts);
    c.send(msg.startup(opts.params));
    const got = await c.readUntil((m) => m.type === "Z" || m.type === "E", opts.timeoutMs ?? 10_000);
    const last = got[got.length - 1]!;
    if (last.type === "E") {
      c.destroy();
      const f = errorFields(last);
      throw new Error(`login failed: ${f.C} ${f.M}`);
    }
    return c;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private waitForData(deadline: number): Promise<boolean> {
    if (this.ended) return Promise.resolve(false);
    const ms = deadline - Date.now();
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Takes one whole backend message from the buffer, if one is there. */
  private takeMessage(): BackendMessage | null {
    if (this.buf.length < 5) return null;
    const len = this.buf.readUInt32BE(1);
    if (len < 4) throw new Error(`backend sent a message with invalid length ${len}`);
    if (this.buf.length < 1 + len) return null;
    const code = this.buf[0]!;
    const m: BackendMessage = { type: String.fromCharCode(code), code, body: Buffer.from(this.buf.subarray(5, 1 + len)) };
    this.buf = this.buf.subarray(1 + len);
    this.history.push(m);
    if (m.type === "K") this.key = backendKey(m);
    if (m.type === "S") {
      const [k, v] = parameterStatus(m);
      this.params.set(k, v);
    }
    return m;
  }

  /** Writes raw bytes (in one write). */
  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Reads one raw byte (the answer to SSLRequest/GSSENCRequest). */
  async readByte(timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length === 0) {
      if (this.ended) throw new Error("connection closed before the byte arrived");
      if (!(await this.waitForData(deadline)) && this.buf.length === 0) {
        if (this.ended) throw new Error("connection closed before the byte arrived");
        throw new WireTimeout(`no byte within ${timeoutMs} ms`, []);
      }
    }
    const b = this.buf[0]!;
    this.buf = this.buf.subarray(1);
    return String.fromCharCode(b);
  }

  /**
   * Reads messages until one matches `pred`; returns all of them, the matching one last.
   * Throws WireTimeout on timeout, or an Error when the connection ends first.
   */
  async readUntil(pred: (m: BackendMessage) => boolean, timeoutMs = 10_000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const got: BackendMessage[] = [];
    for (;;) {
      let m: BackendMessage | null;
      while ((m = this.takeMessage()) !== null) {
        got.push(m);
        if (pred(m)) return got;
      }
      if (this.ended) throw new WireTimeout("connection closed", got);
      if (!(await this.waitForData(deadline))) {
        // one more look: data may have arrived with the end
        while ((m = this.takeMessage()) !== null) {
          got.push(m);
          if (pred(m)) return got;
        }
        if (this.ended) throw new WireTimeout("connection closed", got);
        throw new WireTimeout(`no matching message within ${timeoutMs} ms`, got);
      }
    }
  }

  /** Reads through the next ReadyForQuery. */
  readUntilReady(timeoutMs = 10_000): Promise<BackendMessage[]> {
    return this.readUntil((m) => m.type === "Z", timeoutMs);
  }

  /** Reads `n` ReadyForQuery messages (one per Sync/Query sent). */
  async readReadyN(n: number, timeoutMs = 10_000): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < n; i++) out.push(...(await this.readUntilReady(Math.max(1, deadline - Date.now()))));
    return out;
  }

  /** Reads whatever arrives until the connection ends (or timeout); returns the messages. */
  async readUntilClosed(timeoutMs = 5_000): Promise<{ messages: BackendMessage[]; closed: boolean }> {
    const deadline = Date.now() + timeoutMs;
    const got: BackendMessage[] = [];
    for (;;) {
      let m: BackendMessage | null;
      while ((m = this.takeMessage()) !== null) got.push(m);
      if (this.ended) return { messages: got, closed: true };
      if (!(await this.waitForData(deadline))) {
        while ((m = this.takeMessage()) !== null) got.push(m);
        return { messages: got, closed: this.ended };
      }
    }
  }

  /** Collects the messages that arrive within `ms` (none expected, usually). */
  async readFor(ms: number): Promise<BackendMessage[]> {
    const deadline = Date.now() + ms;
    const got: BackendMessage[] = [];
    for (;;) {
      let m: BackendMessage | null;
      while ((m = this.takeMessage()) !== null) got.push(m);
      if (this.ended || !(await this.waitForData(deadline))) {
        while ((m = this.takeMessage()) !== null) got.push(m);
        return got;
      }
    }
  }

  /** Bytes received and not yet parsed into a message. */
  get pendingBytes(): number {
    return this.buf.length;
  }

  /** Runs one simple Query and reads to its ReadyForQuery. */
  async query(sql: string, timeoutMs = 10_000): Promise<QueryResult> {
    this.send(msg.query(sql));
    const messages = await this.readUntilReady(timeoutMs);
    return summarize(messages);
  }

  /** Polite close: Terminate, then end the socket. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    try {
      this.socket.write(msg.terminate());
    } catch {}
    this.socket.end();
    await this.waitClosed(2_000);
    this.socket.destroy();
  }

  /** Abrupt close: no Terminate, the socket is torn down at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves true once the peer closed the connection, false on timeout. */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (!(await this.waitForData(deadline)) && !this.ended) return false;
    }
    return true;
  }
}

export function summarize(messages: BackendMessage[]): QueryResult {
  const last = messages[messages.length - 1];
  return {
    messages,
    rows: rows(messages),
    errors: messages.filter((m) => m.type === "E").map((m) => errorFields(m)),
    status: last && last.type === "Z" ? readyStatus(last) : "",
  };
}

/** Logs in to `to` as `postgres` to database `app` (`params` add to or override those); throws when refused. */
export function loginApp(
  to: { host: string; port: number },
  params: Record<string, string> = {},
  timeoutMs?: number,
): Promise<WireClient> {
  return WireClient.login({ host: to.host, port: to.port, params: { user: "postgres", database: "app", ...params }, timeoutMs });
}

/** Resolves with the messages up to ReadyForQuery, or "timeout" if none arrives within `ms` (the connection still open). */
export async function readyWithin(c: WireClient, ms: number): Promise<BackendMessage[] | "timeout"> {
  try {
    return await c.readUntilReady(ms);
  } catch (err) {
    if (err instanceof WireTimeout && !c.isClosed) return "timeout";
    throw err;
  }
}

/** Sends a CancelRequest on a fresh connection and waits until pgbun closes it. */
export async function sendCancel(host: string, port: number, pid: number, secret: Uint8Array): Promise<void> {
  const c = await WireClient.connect({ host, port });
  c.send(msg.cancelRequest(pid, secret));
  await c.waitClosed(3_000);
  c.destroy();
}
