// A server connection to PostgreSQL: its state, the relay of its messages to the linked client, internal queries.
import type { Socket } from "bun";
import { Backend, backendName, TxStatus } from "../plugin-sdk/protocol/codes.ts";
import { ALL_WHOLE, continuesPast, Framer, type FrameFlags, type FrameSink } from "./protocol/framer.ts";
import { decodeError, errorResponse, SqlState, type DecodedError } from "../plugin-sdk/protocol/errors.ts";
import { Prebuilt, query } from "../plugin-sdk/protocol/writer.ts";
import { decodeDataRow, decodeParameterStatus } from "../plugin-sdk/protocol/decode.ts";
import { Outbound, type Pausable } from "./net/outbound.ts";
import { Action } from "../plugin-sdk/context.ts";
import { PluginFault } from "./plugin/fault.ts";
import { ServerLogin } from "./server-login.ts";
import type { ClientConnection } from "./client.ts";
import { VersionedMap } from "./params.ts";
import type { InternalError, Server, ServerState, ServerTarget, ServerTls } from "../plugin-sdk/connections.ts";
import type { Pgbun } from "./pgbun.ts";

export type { InternalError, ServerState, ServerTarget };

/**
 * Server messages a plugin tapped are streamed above this size (see STREAM_PREFIX): larger than a client's bound,
 * so that a RowDescription of PostgreSQL's 1,664 columns (~135 KB) is always seen whole; only rows, COPY data and
 * errors quoting a client's huge value come near it.
 */
const SERVER_STREAM_PREFIX = 1024 * 1024;

interface InternalQuery {
  sql: string;
  error: InternalError | null;
  /** Rows returned, as text (null for SQL NULL). */
  rows: Array<Array<string | null>>;
  done?: (error: InternalError | null, rows: Array<Array<string | null>>) => void;
}

export class ServerConnection implements Server, FrameSink, Pausable {
  readonly id: number;
  readonly label: string;
  state: ServerState = "login";
  socket: Socket<any> | null = null;
  readonly out: Outbound;
  readonly framer: Framer;
  client: ClientConnection | null = null;

  /** Values the server reported with ParameterStatus (counting their changes: parameter-tracking's in-step check). */
  readonly params = new VersionedMap();
  /** Non-reported settings pgbun applied with SET (so they can be changed or reset later), counting their changes. */
  readonly applied = new VersionedMap();
  backendPid = 0;
  backendSecret: Uint8Array = new Uint8Array(0);
  txStatus: number = TxStatus.Idle;
  /** Owned by the pool plugin. */
  pool: unknown = null;
  /** Free-form per-server state for plugins, keyed by plugin name (core/plugin/data-record.ts). */
  readonly data: Record<string, unknown>;
  /** Close instead of reusing at the next release (reload, lifetime). */
  closeNeeded = false;
  /**
   * Its last client left session state of unknown cleanliness (pinned, or suspect and not yet checked): the pool
   * resets and checks it before anyone else gets it (PgBouncer's "used" then "tested"), or closes it.
   */
  resetNeeded = false;
  releaseRequested = false;
  cancelsInFlight = 0;
  connectTime: number;
  /** Last time it was released or linked (cached clock, ms). */
  lastUsed: number;
  /** A FATAL ErrorResponse came from PostgreSQL: the connection is ending. */
  fatalSeen = false;
  private internal: InternalQuery[] = [];
  private paused = false;
  /** A flush of internal queries is scheduled for the end of the current event. */
  private flushQueued = false;
  private login: ServerLogin | null;

  constructor(
    readonly core: Pgbun,
    readonly target: ServerTarget,
  ) {
    this.id = core.nextId();
    this.label = `S-${this.id}`;
    this.data = core.newPluginData();
    this.out = new Outbound(null);
    this.framer = new Framer(this, ALL_WHOLE, core.config.settings.max_packet_size, SERVER_STREAM_PREFIX);
    this.connectTime = core.now;
    this.lastUsed = core.now;
    this.login = new ServerLogin(this);
  }

  /** Pool verbs (PgBouncer's states): back in its pool and ready; running a reset or check; awaiting a cancel. */
  markIdle(): void {
    this.setState("idle");
  }

  markTested(): void {
    this.setState("tested");
  }

  markBeingCanceled(): void {
    this.setState("being_canceled");
  }

  get bytesSent(): number {
    return this.out.bytesSent;
  }

  get localAddr(): string {
    try {
      return (this.socket as { localAddress?: string } | null)?.localAddress ?? "";
    } catch {
      return "";
    }
  }

  get localPort(): number {
    try {
      return this.socket?.localPort ?? 0;
    } catch {
      return 0;
    }
  }

  get tls(): ServerTls | null {
    try {
      // a plaintext socket has no TLS version; nothing is kept per server (asked by the console, never per message)
      const protocol = this.socket?.getTLSVersion();
      return protocol ? { protocol, cipher: this.socket!.getCipher()?.name ?? "" } : null;
    } catch {
      return null;
    }
  }

  /** The one place server state changes (core only: plugins use the verbs above); the core's lists are told. */
  setState(next: ServerState): void {
    const prev = this.state;
    if (prev === next) return;
    this.state = next;
    this.core.serverStateChanged(this, prev, next);
  }

  /** Opens the connection and logs in; rejects with the failure (a PostgreSQL ErrorResponse when it sent one). */
  connect(): Promise<void> {
    return this.login!.start();
  }

  /** Called by ServerLogin once ReadyForQuery arrives. */
  loginDone(): void {
    this.login = null;
    this.lastUsed = this.core.now;
  }

  /** Clean: no transaction open, nothing in flight, not closing. Only clean servers may serve another client. */
  isClean(): boolean {
    return (
      this.state !== "closed" &&
      !this.closeNeeded &&
      !this.fatalSeen &&
      this.txStatus === TxStatus.Idle &&
      this.internal.length === 0 &&
      this.out.backlog === 0 &&
      this.framer.bufferedBytes === 0
    );
  }

  /** Clean but for pgbun's own internal queries, still running (see Pgbun.releaseAfterInternal). */
  cleanButForInternal(): boolean {
    return this.internal.length > 0 && this.state !== "closed" && !this.closeNeeded && !this.fatalSeen && this.txStatus === TxStatus.Idle;
  }

  /** Called once the internal queries have all been answered (set by Pgbun.releaseAfterInternal). */
  afterInternal: (() => void) | null = null;

  get internalPending(): number {
    return this.internal.length;
  }

  // ---- socket events (from the core's handler set) ----

  onOpen(socket: Socket<any>): void {
    this.socket = socket;
    // a server that dies without a FIN (host down, network cut) is noticed by the OS's keepalive, as in PgBouncer
    if (this.core.config.settings.tcp_keepalive && !this.target.host.startsWith("/")) socket.setKeepAlive(true);
    this.out.attach(socket);
    this.login?.opened();
  }

  onData(chunk: Uint8Array): void {
    const before = this.client;
    this.framer.feed(chunk);
    const client = this.client;
    // a plugin's callback may release the server mid-read (after an internal query): what this read relayed to
    // that client still goes out now, while the read buffer its pieces point into is valid
    if (before !== null && before !== client) before.out.flush(null);
    if (client) client.out.flush(this);
    if (this.releaseRequested && client) {
      this.core.releaseServer(client, this, client.poolMode === "statement" ? "statement" : "transaction");
      client.releasedIO();
    }
  }

  onClose(reason: string): void {
    if (this.state === "closed") return;
    if (this.login) {
      this.login.failed({ message: reason });
      return;
    }
    this.close(reason);
  }

  pauseReading(): void {
    if (!this.paused && this.socket) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resumeReading(): void {
    if (this.paused && this.socket) {
      this.paused = false;
      this.socket.resume();
    }
  }

  // ---- linking ----

  link(client: ClientConnection): void {
    this.client = client;
    this.releaseRequested = false;
    this.lastUsed = this.core.now;
    this.setState("active");
    if (this.internal.length === 0) this.framer.flags = this.linkedFlags(client);
  }

  /** The relay's frame flags for this client: types only `extendedQuery` taps want pass for a simple-Query client. */
  private linkedFlags(client: ClientConnection): FrameFlags {
    return client.beyondSimple ? this.core.serverFlags : this.core.serverFlagsSimple;
  }

  /** The linked client went beyond simple Query: the relay frames for that from the next message on. */
  refreshFlags(): void {
    const client = this.client;
    if (client !== null && !this.releaseRequested && this.internal.length === 0 && this.login === null) this.framer.flags = this.linkedFlags(client);
  }

  unlink(): void {
    this.client = null;
    this.releaseRequested = false;
    this.framer.flags = ALL_WHOLE;
    this.lastUsed = this.core.now;
    this.resumeReading();
  }

  /** Marks the server for release once the current batch is written. */
  requestRelease(): void {
    if (!this.client) return;
    this.releaseRequested = true;
    this.framer.flags = ALL_WHOLE; // whatever follows in this read is not the client's
  }

  /**
   * Runs a query whose results nobody sees (parameter sync, reset, checks). It is queued ahead of anything
   * the client sends after this call; `done` gets the error message, if any, once ReadyForQuery arrives.
   */
  runInternal(sql: string, done?: (error: InternalError | null, rows: Array<Array<string | null>>) => void): void {
    this.internal.push({ sql, error: null, rows: [], done });
    this.framer.flags = ALL_WHOLE;
    this.out.push(query(sql));
    // written with the current batch when one is being relayed, else by this flush at the end of the event
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushInternal);
    }
  }

  private readonly flushInternal = (): void => {
    this.flushQueued = false;
    if (this.state !== "closed") this.out.flush(null);
  };

  // ---- FrameSink: server-to-client relay ----

  passSpan(buf: Uint8Array, start: number, end: number): void {
    this.client!.out.push(buf, start, end);
  }

  notify(_type: number): void {}

  /** The rest of a streamed message has gone to the client: what a hook appended after it follows. */
  streamEnd(): void {
    const after = this.afterStream;
    if (after === null) return;
    this.afterStream = null;
    if (this.client !== null) for (const b of after) this.client.out.push(b);
  }

  /** appendAfter() bytes of a streamed message, sent after its rest. */
  private afterStream: Uint8Array[] | null = null;

  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    if (this.framer.partialTotal !== 0 && !this.relaysPrefix(type)) {
      // login, internal queries, orphans and ParameterStatus read every message whole (max_packet_size bounds it)
      this.framer.fetchWhole = true;
      return false;
    }
    if (this.login) return this.login.message(type, buf, start, end);
    if (this.internal.length > 0) return this.internalMessage(type, buf, start, end);
    const client = this.client;
    if (client === null || this.releaseRequested) {
      this.orphanMessage(type, buf, start, end);
      return this.state !== "closed";
    }
    switch (type) {
      case Backend.ReadyForQuery:
        this.txStatus = buf[start + 5]!;
        client.readyForQuery(this.txStatus);
        break;
      case Backend.CopyInResponse:
        client.copyInResponse();
        break;
      case Backend.ParameterStatus:
        this.parameterStatus(buf, start, end, client);
        break;
      case Backend.ErrorResponse: {
        const e = decodeError(buf, start, end);
        if (e.severity === "FATAL" || e.severity === "PANIC") this.fatalSeen = true;
        if (e.fields.C === undefined) return this.codelessError(client, e);
        break;
      }
    }
    return this.relay(client, type, buf, start, end);
  }

  /**
   * An ErrorResponse without SQLSTATE is none of PostgreSQL's (CVE-2026-6666 class): the client gets its text as XX000,
   * what PostgreSQL gives an error raised without a code, and the server, in no state pgbun can vouch for, is closed
   * when released instead of serving anyone again.
   */
  private codelessError(client: ClientConnection, e: DecodedError): boolean {
    this.closeNeeded = true;
    const text = e.message.slice(0, 200).replace(/[^\x20-\x7e]/g, "?");
    client.out.push(errorResponse(SqlState.InternalError, `server sent an error without SQLSTATE: ${text}`, this.fatalSeen ? "FATAL" : "ERROR"));
    return true;
  }

  /** A streamed message can go to the linked client as a prefix and a streamed rest (see MessageContext.partial). */
  private relaysPrefix(type: number): boolean {
    return this.login === null && this.internal.length === 0 && this.client !== null && !this.releaseRequested && type !== Backend.ParameterStatus;
  }

  /** Hands one message to the client, through the plugins' hooks for its type. False when a plugin failed. */
  private relay(client: ClientConnection, type: number, buf: Uint8Array, start: number, end: number): boolean {
    const hook = this.core.serverHooks[type];
    if (hook !== undefined) {
      const ctx = client.ctx;
      ctx.type = type;
      ctx.buf = buf;
      ctx.start = start;
      ctx.end = end;
      ctx.direction = "backend";
      const partial = this.framer.partialTotal;
      let r;
      try {
        r = this.core.serverDispatch(type, ctx);
      } catch (err) {
        ctx.after = null;
        this.pluginFailed(client, err);
        return false;
      }
      if (r === undefined) client.out.push(buf, start, end);
      else if (r instanceof Uint8Array) {
        client.out.push(r);
        // whole messages in a streamed message's place: its rest goes with it (see MessageContext.partial)
        if (partial !== 0 && !continuesPast(r)) this.framer.dropRest = true;
      } else if (partial !== 0) this.framer.dropRest = true;
      const after = ctx.after;
      if (after !== null) {
        ctx.after = null;
        if (partial !== 0) this.afterStream = after;
        else for (const b of after) client.out.push(b);
      }
      return true;
    }
    client.out.push(buf, start, end);
    return true;
  }

  private isFatal(buf: Uint8Array, start: number, end: number): boolean {
    const sev = decodeError(buf, start, end).severity;
    return sev === "FATAL" || sev === "PANIC";
  }

  private parameterStatus(buf: Uint8Array, start: number, end: number, client: ClientConnection | null): void {
    const { name, value } = decodeParameterStatus({ buf, start, end });
    this.params.set(name, value);
    if (client) client.setParam(name, value);
  }

  /**
   * Messages while internal queries run. Their answers are swallowed (errors go to the query's callback), but the
   * linked client (if any) still owns what is asynchronous or ends its session, and gets it in arrival order, between
   * its own results: NotificationResponse (a LISTENing client is pinned, so its notifications arrive here after
   * each of its transactions), a ParameterStatus that changes what it sees, and a FATAL ErrorResponse.
   */
  private internalMessage(type: number, buf: Uint8Array, start: number, end: number): boolean {
    const head = this.internal[0]!;
    const client = this.releaseRequested ? null : this.client;
    switch (type) {
      case Backend.NotificationResponse:
        return client === null || this.relay(client, type, buf, start, end);
      case Backend.NoticeResponse:
        // raised by the internal query itself (a reset's "there is no transaction in progress"): pgbun's business
        if (this.core.log.isLevelEnabled("debug")) {
          this.core.log.debug({ server: this.label, query: head.sql }, `internal query notice: ${decodeError(buf, start, end).message}`);
        }
        return true;
      case Backend.ParameterStatus: {
        const { name, value } = decodeParameterStatus({ buf, start, end });
        this.params.set(name, value);
        // pgbun's SET of the client's own values (parameter sync) reports what the client sees already; a value
        // PostgreSQL spells its own way, or a setting put back after RESET, changes it: the client is told
        if (client === null || client.param(name) === value) return true;
        client.setParam(name, value);
        return this.relay(client, type, buf, start, end);
      }
      case Backend.ErrorResponse: {
        const e = decodeError(buf, start, end);
        head.error = { code: e.code, message: e.message };
        if (e.severity !== "FATAL" && e.severity !== "PANIC") return true;
        // the connection ends, and the client's session with it: it gets PostgreSQL's reason, as it was sent
        this.fatalSeen = true;
        return client === null || this.relay(client, type, buf, start, end);
      }
      case Backend.DataRow:
        head.rows.push(decodeDataRow({ buf, start, end }));
        return true;
      case Backend.ReadyForQuery:
        this.txStatus = buf[start + 5]!;
        this.internal.shift();
        // what follows in this read is the client's own again (or an orphan's): framed as the relay needs it
        if (this.internal.length === 0) this.framer.flags = this.client && !this.releaseRequested ? this.linkedFlags(this.client) : ALL_WHOLE;
        if (head.error) this.core.log.warn({ server: this.label, query: head.sql }, `internal query failed: ${head.error.code}: ${head.error.message}`);
        head.done?.(head.error, head.rows);
        if (this.internal.length === 0 && this.afterInternal !== null && this.state !== "closed") {
          const next = this.afterInternal;
          this.afterInternal = null;
          next();
        }
        return this.state !== "closed";
      case Backend.CopyInResponse:
        // an internal query must never start COPY FROM STDIN; the connection state is unknown
        this.close("internal query started COPY");
        return false;
    }
    return true;
  }

  /** Messages from a server that no client owns (idle in the pool, or after release in the same read). */
  private orphanMessage(type: number, buf: Uint8Array, start: number, end: number): void {
    switch (type) {
      case Backend.ParameterStatus:
        this.parameterStatus(buf, start, end, null);
        return;
      case Backend.NoticeResponse:
      case Backend.NotificationResponse:
        return;
      case Backend.ErrorResponse: {
        const e = decodeError(buf, start, end);
        this.core.log.warn({ server: this.label, code: e.code }, `idle server sent error: ${e.message}`);
        if (e.severity === "FATAL" || e.severity === "PANIC") this.fatalSeen = true;
        this.closeNeeded = true;
        return;
      }
      default:
        this.core.log.warn({ server: this.label }, `unexpected ${backendName(type)} from server with no client`);
        this.close("unexpected message from idle server");
    }
  }

  malformed(reason: string): void {
    this.core.log.warn({ server: this.label }, `malformed packet from server: ${reason}`);
    // during login the login fails now, with the reason (closing alone would leave it to server_connect_timeout)
    if (this.login) return this.login.failed({ message: `malformed packet from server: ${reason}`, code: SqlState.ProtocolViolation });
    const client = this.client;
    if (client) client.fatal(SqlState.ProtocolViolation, "server sent an invalid packet");
    this.close(`malformed packet: ${reason}`);
  }

  private pluginFailed(client: ClientConnection, err: unknown): void {
    const fault = PluginFault.from(err);
    this.core.log.error({ client: client.label, server: this.label, plugin: fault.plugin, err: fault.logged }, `plugin ${fault.plugin} failed`);
    client.unlinkServer();
    this.close("plugin failed while relaying");
    client.fatal(SqlState.InternalError, `plugin "${fault.plugin}" failed: ${fault.reason}`);
  }

  /** Closes the connection; a linked client loses its session too. */
  close(reason: string): void {
    if (this.state === "closed") return;
    this.framer.close();
    const client = this.client;
    if (this.socket && !this.fatalSeen) {
      // polite goodbye; PostgreSQL then ends the backend
      try {
        this.socket.write(Prebuilt.Terminate);
      } catch {}
    }
    this.setState("closed");
    this.out.close();
    try {
      this.socket?.end();
    } catch {}
    this.client = null;
    if (client && client.server === this) {
      client.unlinkServer();
      if (!this.fatalSeen) client.out.push(errorResponse(SqlState.ConnectionFailure, `server connection closed: ${reason}`, "FATAL"));
      client.out.flush(null);
      client.close(`server closed: ${reason}`);
    }
    this.core.hooks.serverClosed.call(this, reason);
  }
}

