// A client connection: its state, the relay of its messages to the linked server, parking while it waits.
import type { Socket } from "bun";
import { Frontend, TxStatus } from "../plugin-sdk/protocol/codes.ts";
import { continuesPast, FRONTEND_WHOLE, frontendOnly, type FrameFlags, type Framer, type FrameSink } from "./protocol/framer.ts";
import { errorResponse, SqlState } from "../plugin-sdk/protocol/errors.ts";
import { readyForQuery } from "../plugin-sdk/protocol/writer.ts";
import type { Outbound, Pausable } from "./net/outbound.ts";
import { giveFramer, giveOutbound, keepIdle, takeFramer, takeOutbound, unkeepIdle } from "./net/spares.ts";
import { Action } from "../plugin-sdk/context.ts";
import { HookContext } from "./hook-context.ts";
import { PluginFault } from "./plugin/fault.ts";
import type { ServerConnection } from "./server.ts";
import type { Pgbun } from "./pgbun.ts";
import type { DatabaseEntry } from "./config/databases.ts";
import type { Client, ClientState, PoolMode } from "../plugin-sdk/connections.ts";
import { ParamList } from "./params.ts";
import { intern } from "./intern.ts";
import { ClientRare, IO_KEPT, REDELIVER } from "./client-flags.ts";
import { ClientSync } from "./client-sync.ts";
import { abandonLoginMessage, readLoginMessage } from "./client-startup.ts";

/** Bytes a waiting client may send before its socket is paused (kept by the framer until a server is linked). */
const WAITING_READ_LIMIT = 64 * 1024;
/** The welcome parameters of a client not yet given its pool's. */
const NO_PARAMS: ReadonlyMap<string, string> = new Map();
const NO_BYTES = new Uint8Array(0);

/**
 * A Parse streams only above 1 MB (other messages above STREAM_PREFIX, 64 KB): pgbun:prepared-statements keeps the
 * text of a statement it sees whole, to prepare it again on the next server; a streamed one is its server's only.
 * Statement texts of a few hundred kB (bulk INSERTs with many parameters) stay shareable; memory per client is
 * still bounded.
 */
const PARSE_STREAM_PREFIX = 1024 * 1024;
/** Frontend types beyond simple Query: the first turns on `extendedQuery` taps for the client (TapOptions). */
const BEYOND_SIMPLE_TYPE = new Uint8Array(256);
for (const t of [Frontend.Parse, Frontend.Bind, Frontend.Describe, Frontend.Execute, Frontend.Close, Frontend.Sync, Frontend.Flush, Frontend.FunctionCall]) BEYOND_SIMPLE_TYPE[t] = 1;
const STREAM_BOUNDS = new Uint32Array(256);
STREAM_BOUNDS[Frontend.Parse] = PARSE_STREAM_PREFIX;

/** The core's flags for a linked client with every non-frontend type Invalid (see frontendOnly), made once per table. */
let linkedFrom: FrameFlags | null = null;
let linkedFlags: FrameFlags = FRONTEND_WHOLE;
function linked(core: FrameFlags): FrameFlags {
  if (core !== linkedFrom) {
    linkedFlags = frontendOnly(core);
    linkedFrom = core;
  }
  return linkedFlags;
}

export type { ClientState, PoolMode };

export class ClientConnection extends ClientSync implements Client, FrameSink, Pausable {
  readonly id: number;
  state: ClientState = "login";
  private sock: Socket<any>;
  /** Held only while something is in flight (see net/spares.ts); use `out` and `framer`. */
  private _out: Outbound | null = null;
  private _framer: Framer | null = null;
  private _ctx: HookContext | null = null;
  server: ServerConnection | null = null;

  /** Identity from the StartupMessage. */
  user = "";
  database = "";
  /** Startup parameters as sent (minus user/database), for plugins; read-only (shared) once logged in. */
  startupParams = new ParamList();
  /**
   * Parameters the server reports (ParameterStatus) where this client's value differs from the pool's welcome
   * values (startup parameters, SETs): re-applied on each server. `param()` gives the effective value.
   */
  readonly params = new ParamList();
  /** Settings the server does not report (options -c, custom GUCs) that this client's session must carry. */
  readonly settings = new ParamList();
  /** Values given at connection time (startup parameters, options -c): what RESET returns to; read-only once logged in. */
  startupValues = new ParamList();
  /** Resolved [databases] entry and the pool mode in force for this client. */
  dbEntry: DatabaseEntry | null = null;
  poolMode: PoolMode = "session";
  /** Owned by the pool plugin. */
  pool: unknown = null;
  private _data: Record<string, unknown> | null = null;

  /** Slot in the core's ClientList (-1 when not in it); the cancel key's index entry names it. */
  slot = -1;
  /** Secret of the pooler-issued cancel key (0 until issued at login). */
  cancelSecret = 0;

  /** Bytes committed to a server while none was linked. */
  private parked: Buffer[] | null = null;

  connectTime: number;
  /** When the current wait for a server started (cached clock, ms); 0 when not waiting. */
  waitStart = 0;
  /** Last time the client sent anything (cached clock, ms). */
  lastActivity: number;
  /** The server's parameter values for this pool (filled by the pool plugin at login). */
  welcomeParams: ReadonlyMap<string, string> = NO_PARAMS;

  constructor(
    readonly core: Pgbun,
    socket: Socket<any>,
  ) {
    super();
    this.id = core.nextId();
    this.sock = socket;
    this.connectTime = core.now;
    this.lastActivity = core.now;
  }

  get socket(): Socket<any> {
    return this.sock;
  }

  /** The connection now runs over TLS (core/net/tls-client.ts): reads and writes go through the upgraded socket. */
  swapSocket(socket: Socket<any>): void {
    this.sock = socket;
    this._out?.attach(socket);
  }

  /** The client's address and TCP port (read from the socket: an idle client carries two fields less). */
  get addr(): string {
    return this.viaUnixSocket ? "unix" : intern(this.sock.remoteAddress ?? "");
  }

  /** A Unix-socket client has no port of its own: PgBouncer shows the listen port. */
  get port(): number {
    return this.viaUnixSocket ? this.core.port : ((this.sock as { remotePort?: number }).remotePort ?? 0);
  }

  /** The pooler's end of the connection (a closed socket may no longer know it). */
  get localAddr(): string {
    try {
      return (this.sock as { localAddress?: string }).localAddress ?? "";
    } catch {
      return "";
    }
  }

  get localPort(): number {
    try {
      return this.sock.localPort ?? 0;
    } catch {
      return 0;
    }
  }

  /** Bytes written since the client's output queue was last taken: it is given back when idle (see shedIO). */
  get bytesSent(): number {
    return this._out === null ? 0 : this._out.bytesSent;
  }

  /** The [databases] name this client's pool is for: where a plugin routed it, else the database it asked for. */
  get poolDatabase(): string {
    return this.rare?.routedDatabase ?? this.database;
  }

  /** The host:port a plugin routed the client to, or "". */
  get routeHost(): string {
    return this.rare?.routedKey ?? "";
  }

  /** Serves the client from another [databases] entry (PluginApi.route), before it joins a pool. */
  route(database: string, entry: DatabaseEntry, key: string): void {
    const rare = (this.rare ??= new ClientRare());
    rare.routedDatabase = database;
    rare.routedKey = key;
    this.dbEntry = entry;
  }

  /** Writes bytes to the client now, after anything queued before. */
  send(bytes: Uint8Array): void {
    this.out.send(bytes);
  }

  /** The outbound queue towards the client, taken from the spares when the client had given it back. */
  get out(): Outbound {
    return this._out ?? this.takeOut();
  }

  private takeOut(): Outbound {
    const o = (this._out = takeOutbound(this.sock));
    if (this.state === "closed") o.close(); // late writes to a closed client go nowhere
    return o;
  }

  /** The framer of the client's input; its flags follow whether a server is linked. */
  get framer(): Framer {
    return this._framer ?? this.takeInputFramer();
  }

  private takeInputFramer(): Framer {
    const f = (this._framer = takeFramer(this, this.server !== null ? linked(this.core.clientFlags) : FRONTEND_WHOLE, this.core.config.settings.max_packet_size));
    f.streamAboveOf = STREAM_BOUNDS;
    return f;
  }

  /**
   * Gives back the framer and outbound queue of a client with nothing in flight and no server: an idle client
   * then holds neither. Called once its login is answered, and by the janitor for a client idle since its server
   * went back (see releasedIO).
   */
  shedIO(): void {
    if (this.server !== null || this.paused || this.parked !== null || this.state !== "active") return;
    const f = this._framer;
    const o = this._out;
    if ((f !== null && !f.reusable) || (o !== null && !o.reusable)) return;
    if (f !== null) {
      this._framer = null;
      giveFramer(f);
    }
    if (o !== null) {
      this._out = null;
      giveOutbound(o);
    }
    this.unkeepIO();
    // the hook context still points at the last hooked message's read buffer: an idle client must not keep it
    if (this._ctx !== null) this._ctx.buf = NO_BYTES;
  }

  /** Pid of the pooler-issued cancel key, 0 until issued (see CancelRegistry). */
  get cancelPid(): number {
    return this.core.cancel.pidOf(this);
  }

  /** The StartupMessage was accepted: its user is known from then on (a StartupMessage without one is refused). */
  get startupSeen(): boolean {
    return this.user !== "";
  }

  /** Free-form per-client state for plugins, keyed by plugin name (made on first use). */
  get data(): Record<string, unknown> {
    return (this._data ??= this.core.newPluginData());
  }

  /** The client's name in logs: C-<id>. */
  get label(): string {
    return `C-${this.id}`;
  }

  /** The one place client state changes; keeps the core's lists and counters right. */
  setState(next: ClientState): void {
    const prev = this.state;
    if (prev === next) return;
    this.state = next;
    this.waitStart = next === "waiting" ? this.core.now : 0;
    this.core.clientStateChanged(this, prev, next);
  }

  /**
   * Its server went back to the pool: a client that goes on sending keeps its framer and outbound queue for the
   * next transaction (giving them back and taking them again cost more per transaction than the hand-over's own
   * steps); the janitor gives them back once it has sent nothing for IO_IDLE_MS (core/janitor.ts). The hook
   * context lets go of the last hooked read buffer now.
   */
  releasedIO(): void {
    // a waiting client's set holds its read until it is linked; a closed one gave its set up (see close)
    if (this.state !== "active") return;
    if ((this.bits & IO_KEPT) === 0) {
      // at most MAX_SPARES idle clients keep theirs (net/spares.ts): past that it is given back now, as at login
      if (!keepIdle()) return this.shedIO();
      this.bits |= IO_KEPT;
    }
    if (this._ctx !== null) this._ctx.buf = NO_BYTES;
  }

  /** No longer an idle client keeping its framer and outbound queue (linked, shed or closed). */
  private unkeepIO(): void {
    if ((this.bits & IO_KEPT) === 0) return;
    this.bits &= ~IO_KEPT;
    unkeepIdle();
  }

  /** Holds a framer or an outbound queue (see shedIO). */
  holdsIO(): boolean {
    return this._framer !== null || this._out !== null;
  }

  /** The per-message hook context, made on first use (an idle client that never meets a hook has none). */
  get ctx(): HookContext {
    return (this._ctx ??= new HookContext(this));
  }

  /** The value of a reported parameter as this client sees it: its own, else the pool's welcome value. */
  param(name: string): string | undefined {
    return this.params.get(name) ?? this.welcomeParams.get(name);
  }

  /** Records a reported parameter's value for this client, keeping only what differs from the welcome value. */
  setParam(name: string, value: string): void {
    if (this.welcomeParams.get(name) === value && !this.startupValues.has(name)) this.params.delete(name);
    else this.params.set(name, value);
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  // ---- reading ----

  /** A read from the client; `owned`: nobody writes to chunk again (Framer.feed keeps a held read without a copy). */
  onData(chunk: Uint8Array, owned = false): void {
    this.lastActivity = this.core.now;
    this.framer.feed(chunk, owned);
    // a waiting client is read until it has sent WAITING_READ_LIMIT bytes (most send one query and wait): no
    // pause/resume round trip per queued transaction, and a client that goes away is noticed while it waits
    if ((this.state === "waiting" || this.framer.holding) && !this.paused && this.framer.bufferedBytes > WAITING_READ_LIMIT) this.pauseReading();
    this.flushBatch();
  }

  /**
   * Runs the input a hook held (Action.Hold) again, after the current event: a server hook may call it while that
   * server's read is still being relayed, and the held messages must follow what that read sends the client.
   */
  resumeInput(): void {
    queueMicrotask(() => {
      // a waiting client's input resumes when a server is linked (its first held message needs one)
      if (this.state === "closed" || this.state === "waiting" || !this.framer.holding) return;
      this.framer.resume();
      this.flushBatch();
      if (!this.closed && !this.framer.holding) this.resumeReading();
    });
  }

  /** Writes what this batch produced, in one write per direction. */
  flushBatch(): void {
    const server = this.server;
    if (server) {
      server.out.flush(this);
      if (server.releaseRequested) this.core.releaseServer(this, server, "plugin");
    }
    this.out.flush(server);
    if (this.server === null) this.releasedIO();
  }

  /** The client's next message during login (see client-startup.ts). */
  readLoginMessage(): Promise<Uint8Array> {
    return readLoginMessage(this);
  }

  pauseReading(): void {
    if (!this.paused && this.state !== "closed") {
      this.paused = true;
      this.socket.pause();
    }
  }

  resumeReading(): void {
    if (this.paused && this.state !== "closed" && this.state !== "waiting") {
      this.paused = false;
      this.socket.resume();
    }
  }

  // ---- FrameSink: client-to-server relay ----

  passSpan(buf: Uint8Array, start: number, end: number): void {
    this.server!.out.push(buf, start, end);
  }

  notify(type: number): void {
    if (BEYOND_SIMPLE_TYPE[type] === 1 && !this.beyondSimple) this.goBeyondSimple();
    this.countFrontend(type);
  }

  /**
   * The client's first message beyond simple Query: from now on its servers show it the types only `extendedQuery`
   * taps wanted (the linked one before the message goes out, so before any reply to it).
   */
  private goBeyondSimple(): void {
    this.beyondSimple = true;
    this.server?.refreshFlags();
  }

  /** The rest of a streamed message has gone to the server: what a hook appended after it follows. */
  streamEnd(): void {
    const rare = this.rare;
    const after = rare === null ? null : rare.afterStream;
    if (after === null) return;
    rare!.afterStream = null;
    for (const b of after) this.forwardToServer(b, 0, b.length, true);
  }

  /** The framer reading the client's messages, when it holds one (see shedIO). */
  get inputFramer(): Framer | null {
    return this._framer;
  }

  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    if (BEYOND_SIMPLE_TYPE[type] === 1 && !this.beyondSimple) this.goBeyondSimple();
    const core = this.core;
    // a virtual client (the admin console) has taps of its own (TapOptions.virtualClients)
    const hook = this.virtual ? core.virtualClientHooks[type] : core.clientHooks[type];
    if (hook !== undefined) {
      const ctx = this.ctx;
      ctx.type = type;
      ctx.buf = buf;
      ctx.start = start;
      ctx.end = end;
      ctx.direction = "frontend";
      ctx.resumed = (this.bits & REDELIVER) !== 0;
      this.bits &= ~REDELIVER;
      let r;
      try {
        r = this.virtual ? core.virtualClientDispatch(type, ctx) : core.clientDispatch(type, ctx);
      } catch (err) {
        ctx.after = null;
        return this.pluginFailed(err, type);
      }
      if (this.state === "closed") return false;
      if (ctx.after !== null) return this.forwardWithAfter(r, type, buf, start, end);
      if (r !== undefined) {
        if (r === Action.Drop) {
          if (this._framer!.partialTotal !== 0) this._framer!.dropRest = true; // its rest is not forwarded either
          return this.state !== "waiting";
        }
        if (r === Action.WaitForServer) {
          if (this.server === null) {
            if (this.state === "waiting" || !this.acquireServer()) {
              this.framer.holdCurrent = true;
              this.bits |= REDELIVER;
              return false;
            }
            this.bits |= REDELIVER;
            return this.message(type, buf, start, end);
          }
        } else if (r === Action.Hold) {
          this.framer.holdCurrent = true;
          this.bits |= REDELIVER;
          return false;
        } else if (r instanceof Uint8Array) {
          // whole messages in a streamed message's place: its rest goes with it (see MessageContext.partial)
          if (this._framer!.partialTotal !== 0 && !continuesPast(r)) this._framer!.dropRest = true;
          if (type === Frontend.Terminate) this.terminate();
          return this.forwardToServer(r, 0, r.length, true);
        }
      }
    }
    if (type === Frontend.Terminate) {
      this.terminate();
      return false;
    }
    if (this.state === "waiting") {
      // an earlier hook of this batch committed bytes while no server was free
      (this.parked ??= []).push(Buffer.from(buf.subarray(start, end)));
      this.countFrontend(type);
      return false;
    }
    if (this.server === null && this._framer!.partialTotal === 0) return this.firstToServer(type, buf, start, end);
    return this.forwardToServer(buf, start, end, false);
  }

  /**
   * The first message for a server, whose hooks have run: it goes out once a server is linked. When none is free
   * the framer keeps it with the rest of the read, in one copy, and passes it on unread when the client is linked
   * (not parked apart: the read then goes to the server as one write, as when a server was free).
   */
  private firstToServer(type: number, buf: Uint8Array, start: number, end: number): boolean {
    this.countFrontend(type);
    if (this.acquireServer()) {
      this.server!.out.push(buf, start, end);
      return true;
    }
    if (this.state === "waiting") {
      const f = this._framer!;
      f.holdCurrent = true;
      f.passCurrent = true;
    }
    return false;
  }

  /** A hook asked for bytes after the message: forward (or drop/replace) it, then those bytes, in one piece. */
  private forwardWithAfter(r: unknown, type: number, buf: Uint8Array, start: number, end: number): boolean {
    const after = this.ctx.after!;
    this.ctx.after = null;
    if (r === Action.WaitForServer || r === Action.Hold) throw new Error("appendAfter cannot be combined with WaitForServer or Hold");
    const parts: Uint8Array[] = [];
    if (r === undefined) parts.push(buf.subarray(start, end));
    else if (r instanceof Uint8Array) parts.push(r);
    if (this._framer!.partialTotal !== 0) {
      // a streamed message: its rest goes first, then these (see streamEnd)
      if (r === Action.Drop || (r instanceof Uint8Array && !continuesPast(r))) this._framer!.dropRest = true;
      (this.rare ??= new ClientRare()).afterStream = after;
      if (parts.length === 0) return this.state !== "waiting";
      if (type === Frontend.Terminate) this.terminate();
      return this.forwardToServer(parts[0]!, 0, parts[0]!.length, r !== undefined);
    }
    parts.push(...after);
    const bytes = Buffer.concat(parts);
    if (type === Frontend.Terminate) this.terminate();
    return this.forwardToServer(bytes, 0, bytes.length, true);
  }

  /**
   * Sends bytes to the server, acquiring one if needed. `scan`: the bytes may hold several messages
   * (replacement or injection) and are counted one by one. Returns false when the client had to park.
   */
  forwardToServer(buf: Uint8Array, start: number, end: number, scan: boolean): boolean {
    if (scan) this.countAll(buf, start, end);
    else this.countFrontend(buf[start]!);
    if (this.state === "waiting" || (this.server === null && !this.acquireServer())) {
      (this.parked ??= []).push(Buffer.from(buf.subarray(start, end)));
      return false;
    }
    this.server!.out.push(buf, start, end);
    return true;
  }

  /** Asks the pool for a server; links it now, or parks the client until one is assigned. */
  private acquireServer(): boolean {
    const server = this.core.acquireServer(this);
    if (server) {
      this.linkServer(server);
      return this.server !== null; // a serverLinked tap may have failed and closed the client
    }
    if (this.state === "closed") return false;
    this.setState("waiting");
    return false;
  }

  /** Links a server (from acquire, or later from the pool's waiter queue) and replays what was parked. */
  linkServer(server: ServerConnection): void {
    this.unkeepIO();
    this.server = server;
    server.link(this);
    this.framer.flags = linked(this.core.clientFlags);
    try {
      this.core.callServerLinked(this, server);
    } catch (err) {
      // what the tap meant to do on the server (a parameter sync) may be half done: neither is used again
      const fault = PluginFault.from(err);
      this.core.log.error({ client: this.label, server: server.label, plugin: fault.plugin, err: fault.logged }, `plugin ${fault.plugin} failed in serverLinked`);
      this.unlinkServer();
      server.close("plugin failed while linking");
      this.fatal(SqlState.InternalError, fault.message);
      return;
    }
    if (this.state === "waiting") {
      this.setState("active");
      const parked = this.parked;
      this.parked = null;
      if (parked) for (const b of parked) server.out.push(b);
      this.framer.resume();
      this.flushBatch();
      if (!this.closed) this.resumeReading();
    }
  }

  /** Unlinks the server (the core decides what happens to it). */
  unlinkServer(): void {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.framer.flags = FRONTEND_WHOLE;
    this.out.forgetSource(server);
    server.out.forgetSource(this);
    this.forgetOwed();
  }

  malformed(reason: string): void {
    this.core.log.warn({ client: this.label }, `malformed packet from client: ${reason}`);
    // PostgreSQL's own words for a message type it does not know; pgbun's for a bad length
    this.fatal(SqlState.ProtocolViolation, reason.startsWith("invalid frontend") ? reason : `invalid packet: ${reason}`);
  }

  /** A plugin threw in a message hook: report it by name; a plain Query fails alone, anything else ends the session. */
  private pluginFailed(err: unknown, type: number): boolean {
    const fault = PluginFault.from(err);
    this.core.log.error({ client: this.label, plugin: fault.plugin, err: fault.logged }, `plugin ${fault.plugin} failed`);
    const message = `plugin "${fault.plugin}" failed: ${fault.reason}`;
    // a streamed message's rest must not reach the server without its start
    if (this._framer !== null && this._framer.partialTotal !== 0) this._framer.dropRest = true;
    // a plain Query fails alone outside a transaction block; inside one PostgreSQL would fail the block, which
    // only the server can do: the session ends instead, so a COMMIT cannot commit what ran before the error
    if (type === Frontend.Query && this.inSync && this.state === "active" && this.txStatus === TxStatus.Idle) {
      this.out.push(errorResponse(SqlState.InternalError, message));
      this.out.push(readyForQuery(this.txStatus));
      return true;
    }
    this.fatal(SqlState.InternalError, message);
    return false;
  }

  // ---- closing ----

  /** Ends the session with PostgreSQL's own ErrorResponse when there is one (a failed server login), else pgbun's. */
  refuse(r: { code: string; message: string; detail?: string; error?: Buffer }): void {
    if (this.state === "closed") return;
    if (!r.error) return this.fatal(r.code, r.message, r.detail);
    this.out.send(r.error);
    this.close(r.message);
  }

  /** Sends a FATAL ErrorResponse and closes. */
  fatal(code: string, message: string, detail?: string): void {
    if (this.state === "closed") return;
    this.out.push(errorResponse(code, message, "FATAL", detail));
    this.out.flush(null);
    this.close(message);
  }

  private terminate(): void {
    this.close("client terminated");
  }

  close(reason: string): void {
    if (this.state === "closed") return;
    // a message the client stopped sending halfway leaves the server waiting for its rest: never reuse that
    const framer = this._framer;
    const midMessage = framer !== null && framer.midMessage;
    framer?.close();
    const server = this.server;
    if (server) {
      const synced = this.inSync && !midMessage;
      if (synced && server.isClean()) this.core.releaseServer(this, server, "client-close");
      else if (synced && server.cleanButForInternal()) this.core.releaseAfterInternal(this, server);
      else {
        this.unlinkServer();
        server.close("client closed while the server was busy");
      }
    }
    this.parked = null;
    this.unkeepIO();
    this.setState("closed");
    abandonLoginMessage(this);
    this._out?.close();
    try {
      this.socket.end();
    } catch {}
    this.core.hooks.clientClosed.call(this, reason);
  }
}
