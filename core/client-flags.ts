// A client connection's packed flags and rarely used state: one number and a side object, so idle clients stay small.
import { TxStatus } from "../plugin-sdk/protocol/codes.ts";
import type { ClientTls } from "../plugin-sdk/connections.ts";

export const COPY_WINDOW_OPEN = 1;
export const COPY_WINDOW_EXTENDED = 2;
/** Bits of ClientConnection.bits. */
const VIRTUAL = 1;
const PAUSED = 2;
const SYNC_PENDING = 4;
const COPY_IN = 8;
const SESSION_SUSPECT = 16;
/** Accepted on the unix_socket_dir socket (bits 5-6 are the copy window, 8-15 the transaction status). */
const UNIX_SOCKET = 1 << 16;
/** Has sent a message beyond simple Query: extended query protocol or FunctionCall (see TapOptions.extendedQuery). */
const BEYOND_SIMPLE = 1 << 17;
/** Kept its framer and outbound queue when its server went back (counted in core/net/spares.ts: see releasedIO). */
export const IO_KEPT = 1 << 18;
/** A hook held the message being read (WaitForServer, Hold): its next delivery is a second one (ctx.resumed). */
export const REDELIVER = 128;
const COPY_WINDOW_SHIFT = 5;
const TX_STATUS_SHIFT = 8;

/** What few clients need (a login in progress, a pinned session, copy-end bookkeeping): made on first use. */
export class ClientRare {
  startupBuf: Buffer | null = null;
  pinReason: string | null = null;
  copyEndsBeforeWindow = 0;
  copyEndsUnmatched = 0;
  /** Set by PluginApi.route: the [databases] name (and host) the client is served from instead of its own. */
  routedDatabase: string | null = null;
  routedKey: string | null = null;
  /** A plugin awaiting the client's next login message (Client.readLoginMessage). */
  loginWaiter: LoginWaiter | null = null;
  /** The TLS session of a client that negotiated one (see core/net/tls-client.ts). */
  tls: ClientTls | null = null;
  /** appendAfter() bytes of a streamed message, sent once its rest has gone to the server (see client.ts streamEnd). */
  afterStream: Uint8Array[] | null = null;
}

/** The promise of a pending Client.readLoginMessage. */
export interface LoginWaiter {
  resolve(message: Uint8Array): void;
  reject(err: Error): void;
}

/** The base of ClientConnection (under ClientSync, core/client-sync.ts): its flags, packed (see `bits` and `rare`). */
export abstract class ClientFlags {
  /**
   * Flags and small values packed in one field (see the bit constants), and what only some clients ever need in
   * a side object made on first use: every field costs each idle client 8 bytes, and at 31 fields the object
   * moves from JSC's 256-byte size class to its 320-byte one.
   */
  protected bits: number = TxStatus.Idle << TX_STATUS_SHIFT;
  protected rare: ClientRare | null = null;

  // ---- packed flags and rarely used state (see `bits` and `rare`) ----

  /** Served entirely by a plugin (e.g. the admin console): no [databases] entry, no pool, never a server. */
  get virtual(): boolean {
    return (this.bits & VIRTUAL) !== 0;
  }
  set virtual(on: boolean) {
    this.setBit(VIRTUAL, on);
  }

  /** The client has sent an extended-query message or a FunctionCall (sticky: see TapOptions.extendedQuery). */
  get beyondSimple(): boolean {
    return (this.bits & BEYOND_SIMPLE) !== 0;
  }
  protected set beyondSimple(on: boolean) {
    this.setBit(BEYOND_SIMPLE, on);
  }

  /** Came in on the Unix socket: addr reads "unix" as in PgBouncer's SHOW CLIENTS (and HBA `local` lines apply). */
  get viaUnixSocket(): boolean {
    return (this.bits & UNIX_SOCKET) !== 0;
  }
  set viaUnixSocket(on: boolean) {
    this.setBit(UNIX_SOCKET, on);
  }

  /** Extended-protocol messages were sent since the last Sync: the server owes nothing until that Sync. */
  get syncPending(): boolean {
    return (this.bits & SYNC_PENDING) !== 0;
  }
  set syncPending(on: boolean) {
    this.setBit(SYNC_PENDING, on);
  }

  /** The server is in COPY FROM STDIN (CopyInResponse seen, no CopyDone/CopyFail yet). */
  get copyIn(): boolean {
    return (this.bits & COPY_IN) !== 0;
  }
  set copyIn(on: boolean) {
    this.setBit(COPY_IN, on);
  }

  /**
   * Something this client ran may have changed its server's session state and has not been checked yet (set and
   * cleared by the session-state plugin): like a pin, the server is not known clean while this is set.
   */
  get sessionSuspect(): boolean {
    return (this.bits & SESSION_SUSPECT) !== 0;
  }
  set sessionSuspect(on: boolean) {
    this.setBit(SESSION_SUSPECT, on);
  }

  protected get paused(): boolean {
    return (this.bits & PAUSED) !== 0;
  }
  protected set paused(on: boolean) {
    this.setBit(PAUSED, on);
  }

  /** COPY_WINDOW_OPEN while the window is open; COPY_WINDOW_EXTENDED when it was opened by Execute. */
  protected get copyWindow(): number {
    return (this.bits >>> COPY_WINDOW_SHIFT) & 3;
  }
  protected set copyWindow(w: number) {
    this.bits = (this.bits & ~(3 << COPY_WINDOW_SHIFT)) | ((w & 3) << COPY_WINDOW_SHIFT);
  }

  /** Transaction status of the last ReadyForQuery this client saw. */
  get txStatus(): number {
    return (this.bits >>> TX_STATUS_SHIFT) & 0xff;
  }
  set txStatus(status: number) {
    this.bits = (this.bits & ~(0xff << TX_STATUS_SHIFT)) | ((status & 0xff) << TX_STATUS_SHIFT);
  }

  protected setBit(bit: number, on: boolean): void {
    this.bits = on ? this.bits | bit : this.bits & ~bit;
  }

  /** Why this client must keep its server (session state), or null. */
  get pinReason(): string | null {
    return this.rare === null ? null : this.rare.pinReason;
  }
  set pinReason(reason: string | null) {
    if (reason !== null || this.rare !== null) (this.rare ??= new ClientRare()).pinReason = reason;
  }

  /** Startup-phase buffer (untyped packets until the StartupMessage is accepted). */
  get startupBuf(): Buffer | null {
    return this.rare === null ? null : this.rare.startupBuf;
  }
  set startupBuf(buf: Buffer | null) {
    if (buf !== null || this.rare !== null) (this.rare ??= new ClientRare()).startupBuf = buf;
  }

  /** The TLS session, null for a plaintext or Unix-socket client. */
  get tls(): ClientTls | null {
    return this.rare === null ? null : this.rare.tls;
  }
  set tls(t: ClientTls | null) {
    if (t !== null || this.rare !== null) (this.rare ??= new ClientRare()).tls = t;
  }

  /** The pending Client.readLoginMessage, if any (see client-startup.ts). */
  get loginWaiter(): LoginWaiter | null {
    return this.rare === null ? null : this.rare.loginWaiter;
  }
  set loginWaiter(w: LoginWaiter | null) {
    if (w !== null || this.rare !== null) (this.rare ??= new ClientRare()).loginWaiter = w;
  }

  protected get copyEndsBeforeWindow(): number {
    return this.rare === null ? 0 : this.rare.copyEndsBeforeWindow;
  }
  protected set copyEndsBeforeWindow(n: number) {
    if (n !== 0 || this.rare !== null) (this.rare ??= new ClientRare()).copyEndsBeforeWindow = n;
  }

  protected get copyEndsUnmatched(): number {
    return this.rare === null ? 0 : this.rare.copyEndsUnmatched;
  }
  protected set copyEndsUnmatched(n: number) {
    if (n !== 0 || this.rare !== null) (this.rare ??= new ClientRare()).copyEndsUnmatched = n;
  }
}
