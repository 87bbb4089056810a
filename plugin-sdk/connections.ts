// Clients and servers as plugins see them: identity, state, parameters, per-plugin data, and the verbs they may call.
import type { DatabaseEntry, PoolMode } from "./config.ts";

/**
 * login: startup and authentication; active: logged in, with or without a server;
 * waiting: parked until a server is assigned; closed: gone.
 */
export type ClientState = "login" | "active" | "waiting" | "closed";

/**
 * PgBouncer's server states. login: connecting and authenticating; idle: in its pool, ready; active: linked to a
 * client; used: released, waiting for its reset or check; tested: running a reset or check query;
 * being_canceled: released while a cancel to it is in flight; closed: gone.
 */
export type ServerState = "login" | "idle" | "active" | "used" | "tested" | "being_canceled" | "closed";

export type { PoolMode };

/** Where a server connection goes and as whom. */
export interface ServerTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** Extra startup parameters sent at login (api.targetFor: the entry's client_encoding, datestyle, timezone, application_name). */
  startupParams?: Record<string, string>;
  /**
   * Run once after the login, before the server is used (api.targetFor: the entry's connect_query). Its reported
   * settings are what the server reports; an error, a COPY or a transaction left open fails the login.
   */
  connectQuery?: string;
  /**
   * The [databases] entry this target was made from (api.targetFor sets it): a plugin choosing the host of a login
   * (the connectServer hook) reads its host list, ports, target_session_attrs and load_balance_hosts there.
   */
  entry?: DatabaseEntry;
}

/** The error of an internal query, as PostgreSQL reported it. */
export interface InternalError {
  code: string;
  message: string;
}

/** Rows of an internal query, as text (null for SQL NULL). */
export type InternalRows = Array<Array<string | null>>;

/** A small name → value list (startup parameters, reported parameters, settings). Names are compared exactly. */
export interface Params extends Iterable<[string, string]> {
  readonly size: number;
  get(name: string): string | undefined;
  has(name: string): boolean;
  keys(): IterableIterator<string>;
  set(name: string, value: string): this;
  delete(name: string): boolean;
  /**
   * Replaced on every change, and the same for lists sharing one content: equal identities mean equal content
   * (different ones prove nothing; null may stand for empty). Absent where the list does not say.
   */
  identity?(): object | null;
}

/** `version` counts a map's changes: the same version means the same content since. Absent where it does not count. */
export interface Counted {
  readonly version?: number;
}

/** Why a server login failed; `error` is PostgreSQL's own ErrorResponse when it sent one (forwarded as is). */
export interface LoginFailure {
  message: string;
  code?: string;
  error?: Buffer;
  /** The configuration's fault, which will not pass by itself (a failed connect_query): waiters get it at once. */
  permanent?: boolean;
}

/** The failure an openServer rejection carries (its `failure`), or one made from any other error. */
export function loginFailureOf(err: unknown): LoginFailure {
  const f = (err as { failure?: LoginFailure } | null)?.failure;
  if (f && typeof f.message === "string") return f;
  return { message: err instanceof Error ? err.message : String(err) };
}

/** A refusal: the client gets this ErrorResponse (FATAL) and is closed. */
export interface Refusal {
  code: string;
  message: string;
  detail?: string;
  /** PostgreSQL's own ErrorResponse, sent as is instead of building one. */
  error?: Buffer;
}

/** The TLS session of a client connection, as negotiated. */
export interface ClientTls {
  /** "TLSv1.3", "TLSv1.2", ... */
  readonly protocol: string;
  /** The OpenSSL name of the cipher suite in use. */
  readonly cipher: string;
  /** The client certificate's subject CN, null when the client sent none. */
  readonly peerCommonName: string | null;
  /** The client certificate was verified against client_tls_ca_file. */
  readonly peerVerified: boolean;
}

/** The TLS session of a server connection (server_tls_sslmode), as negotiated. */
export interface ServerTls {
  /** "TLSv1.3", "TLSv1.2", ... */
  readonly protocol: string;
  /** The OpenSSL name of the cipher suite in use. */
  readonly cipher: string;
}

/**
 * A client connection. Identity and protocol state are read-only; the writable fields belong to the plugin
 * named in their comment. Implemented by the core's connection class itself: there is no wrapper per client.
 */
export interface Client {
  /** Unique among the clients and servers of all workers. */
  readonly id: number;
  /** The client's name in logs: C-<id>. */
  readonly label: string;
  readonly state: ClientState;
  readonly closed: boolean;
  /** From the StartupMessage. */
  readonly user: string;
  readonly database: string;
  /** The client's address and TCP port, and the pooler's end of the connection. */
  readonly addr: string;
  readonly port: number;
  readonly localAddr: string;
  readonly localPort: number;
  /** The TLS session, null for a plaintext or Unix-socket client. */
  readonly tls: ClientTls | null;
  /** Startup parameters as sent (minus user and database); read-only once logged in. */
  readonly startupParams: Params;
  /** Reported parameters where this client's value differs from its pool's welcome values. */
  readonly params: Params;
  /** Settings the server does not report (options -c, custom GUCs) that this client's session carries. */
  readonly settings: Params;
  /** Values given at connection time: what RESET returns to. */
  readonly startupValues: Params;
  /** The [databases] entry this client is served from (see PluginApi.route), null for virtual clients. */
  readonly dbEntry: DatabaseEntry | null;
  /** The [databases] name its pool is for: the database asked for, or where a plugin routed it. */
  readonly poolDatabase: string;
  /** The host:port a plugin routed this client to (PluginApi.route with a host), else "". */
  readonly routeHost: string;
  readonly poolMode: PoolMode;
  /**
   * Transaction status of the last ReadyForQuery the client saw (TxStatus). A plugin that replaces a
   * ReadyForQuery with one of another status sets it to what it sent.
   */
  txStatus: number;
  /** Everything sent to the server has been answered: the server may go to someone else. */
  readonly inSync: boolean;
  /** The server is in COPY FROM STDIN (CopyInResponse seen, no CopyDone or CopyFail yet). */
  readonly copyIn: boolean;
  /** ReadyForQuery answers the server still owes. */
  readonly rfqPending: number;
  readonly server: Server | null;
  /** Cached clock (ms): connected, waiting since (0 when not waiting), last input, oldest unanswered query (0: none). */
  readonly connectTime: number;
  readonly waitStart: number;
  readonly lastActivity: number;
  readonly queryStart: number;
  /** Bytes written to the client; the count restarts when an idle client gives back its buffers: take differences while a server is linked. */
  readonly bytesSent: number;
  /** Pid of the cancel key pgbun issued to this client. */
  readonly cancelPid: number;
  /** Served entirely by a plugin (the admin console): no pool, never a server. Set only in the startup hook. */
  virtual: boolean;
  /** Owned by the pool plugin. */
  pool: unknown;
  /** The server's parameter values for this client's pool (set by the pool plugin at login). */
  welcomeParams: ReadonlyMap<string, string>;
  /** Why this client must keep its server (session state), or null (set by the session-state plugin). */
  pinReason: string | null;
  /** Something this client ran may have changed its server's session and is not yet checked (session-state). */
  sessionSuspect: boolean;
  /**
   * Free-form state, one key per plugin (use your plugin's name). Every loaded plugin's key is present from the start,
   * undefined until it stores: test `data[name] === undefined`, not `name in data`. Keeping to your own key keeps
   * every connection's record one shape for the engine.
   */
  readonly data: Record<string, unknown>;

  /** The value of a reported parameter as this client sees it: its own, else the pool's welcome value. */
  param(name: string): string | undefined;
  /** Records a reported parameter's value for this client. */
  setParam(name: string, value: string): void;
  /** Writes bytes to the client now, after anything queued before (outside a message hook; inside, use ctx). */
  send(bytes: Uint8Array): void;
  /** Sends a FATAL ErrorResponse and closes. */
  fatal(code: string, message: string, detail?: string): void;
  /** Ends the session with a refusal (PostgreSQL's own ErrorResponse when it carries one). */
  refuse(refusal: Refusal): void;
  close(reason: string): void;
  /** Stops and restarts reading the client's socket (a plugin answering slowly, as the admin console's PAUSE). */
  pauseReading(): void;
  resumeReading(): void;
  /** Runs the input a hook held (Action.Hold) again, after the current event. */
  resumeInput(): void;
  /**
   * During login (the authenticate hook): the client's next message, whole (type byte and length included), once
   * it has arrived: a PasswordMessage, SASLInitialResponse or SASLResponse (type 'p'), at most 65535 bytes of body.
   * Send the Authentication request first (client.send). Anything else the client sends refuses it (08P01); the
   * promise rejects when the client goes away or is refused first (client_login_timeout included).
   */
  readLoginMessage(): Promise<Uint8Array>;
  /** Links a server to this client (a pool handing one out, or an idle one from peekServer). */
  linkServer(server: Server): void;
}

/** A server connection to PostgreSQL. Its state changes only through the verbs below and the core. */
export interface Server {
  readonly id: number;
  /** The server's name in logs: S-<id>. */
  readonly label: string;
  readonly state: ServerState;
  readonly target: ServerTarget;
  readonly client: Client | null;
  /** Values the server reported with ParameterStatus (the core's count their changes). */
  readonly params: ReadonlyMap<string, string> & Counted;
  /** Non-reported settings applied with SET (owned by the parameter-tracking plugin; cleared by a reset). */
  readonly applied: Map<string, string> & Counted;
  readonly backendPid: number;
  /** Transaction status of the server's last ReadyForQuery (TxStatus). */
  readonly txStatus: number;
  readonly connectTime: number;
  /** Last time it was linked or released (cached clock, ms). */
  readonly lastUsed: number;
  /** A FATAL ErrorResponse came from PostgreSQL: the connection is ending. */
  readonly fatalSeen: boolean;
  /** Internal queries not yet answered. */
  readonly internalPending: number;
  readonly cancelsInFlight: number;
  /** Bytes written to the server so far. */
  readonly bytesSent: number;
  readonly localAddr: string;
  readonly localPort: number;
  /** The TLS session, null for plaintext (read from the socket when asked: for the console, not per message). */
  readonly tls: ServerTls | null;
  /** Owned by the pool plugin. */
  pool: unknown;
  /** Close instead of reusing at the next release (reload, lifetime, state unknown). */
  closeNeeded: boolean;
  /** Its last client left session state of unknown cleanliness: the pool resets and checks it first. */
  resetNeeded: boolean;
  /**
   * Free-form state, one key per plugin (use your plugin's name). Every loaded plugin's key is present from the start,
   * undefined until it stores: test `data[name] === undefined`, not `name in data`. Keeping to your own key keeps
   * every connection's record one shape for the engine.
   */
  readonly data: Record<string, unknown>;

  /** No transaction open, nothing in flight, not closing: only a clean server may serve another client. */
  isClean(): boolean;
  /**
   * Runs a query whose results no client sees (a reset, a check, a parameter sync), queued behind what was sent
   * before; it is written by the end of the current event. `done` gets PostgreSQL's error, if any, and the rows.
   */
  runInternal(sql: string, done?: (error: InternalError | null, rows: InternalRows) => void): void;
  close(reason: string): void;
  /** Pool verbs (PgBouncer's states): back in its pool, ready; running a reset or check; waiting for a cancel. */
  markIdle(): void;
  markTested(): void;
  markBeingCanceled(): void;
}
