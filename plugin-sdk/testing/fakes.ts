// Fake clients and servers for hook-level tests: the Client and Server interfaces without sockets, acting as the core's.
import type { DatabaseEntry } from "../config.ts";
import type { Client, ClientState, ClientTls, InternalError, InternalRows, Params, PoolMode, Server, ServerState, ServerTarget, ServerTls } from "../connections.ts";
import type { PgbunHooks, Refusal, ReleaseReason } from "../hooks.ts";
import { TxStatus } from "../protocol/codes.ts";
import { errorResponse, SqlState } from "../protocol/errors.ts";
import { query } from "../protocol/writer.ts";

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * What the fakes need of a test world to behave as the core's connections do: its hooks (a closing client runs
 * clientClosed, a linked server serverLinked), its clock, and the core's release path.
 */
export interface World {
  readonly hooks: PgbunHooks;
  readonly now: number;
  release(client: FakeClient, server: FakeServer, reason: ReleaseReason): void;
}

let nextId = 1;

function isMapLike(v: object): v is ReadonlyMap<string, string> | Params {
  return typeof (v as Params).get === "function";
}

function paramsOf(v: Params | Record<string, string> | undefined): Params {
  if (v === undefined) return new Map<string, string>();
  return isMapLike(v) ? (v as Params) : new Map(Object.entries(v));
}

function entriesOf(v: ReadonlyMap<string, string> | Record<string, string>): Array<[string, string]> {
  return isMapLike(v) ? [...(v as ReadonlyMap<string, string>)] : Object.entries(v);
}

/** Options of fakeClient: any Client field, parameter lists as plain objects too. */
export type FakeClientOptions = Partial<Omit<Mutable<Client>, "closed" | "startupParams" | "params" | "settings" | "startupValues" | "welcomeParams" | "server" | "data">> & {
  startupParams?: Params | Record<string, string>;
  params?: Params | Record<string, string>;
  settings?: Params | Record<string, string>;
  startupValues?: Params | Record<string, string>;
  welcomeParams?: ReadonlyMap<string, string> | Record<string, string>;
  data?: Record<string, unknown>;
};

/**
 * A Client without a socket. It records what it was sent (`sent`: send(), fatal(), refuse() and every message a
 * run delivered to it, in order), how it ended (`fatalError`, `refusal`, `closedReason`), and keeps the core's
 * protocol counts: `inSync` is derived as the core derives it (no ReadyForQuery owed, no extended-protocol message
 * without its Sync, no COPY FROM STDIN) unless a test assigns it a fixed value.
 */
export class FakeClient implements Client {
  readonly id: number = nextId++;
  label = `C-${this.id}`;
  state: ClientState = "active";
  user = "postgres";
  database = "postgres";
  addr = "127.0.0.1";
  port = 50000 + this.id;
  localAddr = "127.0.0.1";
  localPort = 6432;
  tls: ClientTls | null = null;
  startupParams: Params = new Map<string, string>();
  params: Params = new Map<string, string>();
  settings: Params = new Map<string, string>();
  startupValues: Params = new Map<string, string>();
  dbEntry: DatabaseEntry | null = null;
  poolDatabase = "postgres";
  routeHost = "";
  poolMode: PoolMode = "session";
  txStatus: number = TxStatus.Idle;
  copyIn = false;
  rfqPending = 0;
  /** An extended-protocol message went to the server and its Sync has not (the core's count). */
  syncPending = false;
  server: FakeServer | null = null;
  connectTime = Date.now();
  waitStart = 0;
  lastActivity = this.connectTime;
  queryStart = 0;
  bytesSent = 0;
  cancelPid = 10000 + this.id;
  virtual = false;
  pool: unknown = null;
  welcomeParams: ReadonlyMap<string, string> = new Map();
  pinReason: string | null = null;
  sessionSuspect = false;
  readonly data: Record<string, unknown> = {};

  /** Every message this client was sent, in order. */
  readonly sent: Buffer[] = [];
  fatalError: { code: string; message: string; detail?: string } | null = null;
  refusal: Refusal | null = null;
  closedReason: string | null = null;
  paused = false;
  /** How many times resumeInput() was called (a hook let held input go on). */
  resumeInputCalls = 0;
  private fixedInSync: boolean | null = null;
  /** @internal the test world this client lives in (hooks, clock, release), or null for a bare fake. */
  world: World | null = null;

  get closed(): boolean {
    return this.state === "closed";
  }

  get inSync(): boolean {
    return this.fixedInSync ?? (this.rfqPending === 0 && !this.syncPending && !this.copyIn);
  }

  /** Fixes inSync to a value (null: derived again from the counts). */
  set inSync(v: boolean | null) {
    this.fixedInSync = v;
  }

  param(name: string): string | undefined {
    return this.params.get(name) ?? this.welcomeParams.get(name);
  }

  setParam(name: string, value: string): void {
    this.params.set(name, value);
  }

  send(bytes: Uint8Array): void {
    this.deliver(bytes);
  }

  /** @internal records bytes as delivered to the client. */
  deliver(bytes: Uint8Array): void {
    this.sent.push(Buffer.from(bytes));
    this.bytesSent += bytes.length;
  }

  fatal(code: string, message: string, detail?: string): void {
    if (this.closed) return;
    this.fatalError = { code, message, detail };
    this.deliver(errorResponse(code, message, "FATAL", detail));
    this.close(message);
  }

  refuse(refusal: Refusal): void {
    if (this.closed) return;
    this.refusal = refusal;
    if (!refusal.error) return this.fatal(refusal.code, refusal.message, refusal.detail);
    this.deliver(refusal.error);
    this.close(refusal.message);
  }

  /** As the core: a synced client's clean server is released, a busy one closed; then clientClosed runs. */
  close(reason: string): void {
    if (this.closed) return;
    const server = this.server;
    if (server !== null) {
      if (this.inSync && server.isClean() && this.world !== null) this.world.release(this, server, "client-close");
      else {
        unlink(this, server, this.world);
        server.close("client closed while the server was busy");
      }
    }
    this.closedReason = reason;
    this.state = "closed";
    this.world?.hooks.clientClosed.call(this, reason);
  }

  pauseReading(): void {
    this.paused = true;
  }

  resumeReading(): void {
    this.paused = false;
  }

  resumeInput(): void {
    this.resumeInputCalls++;
  }

  /** What readLoginMessage() returns, in order (a test queues the client's login messages here). */
  readonly loginMessages: Uint8Array[] = [];

  readLoginMessage(): Promise<Uint8Array> {
    const next = this.loginMessages.shift();
    return next !== undefined ? Promise.resolve(next) : Promise.reject(new Error("the client went away during login"));
  }

  /** As the core: links both ways, runs serverLinked, and a waiting client becomes active. */
  linkServer(server: Server): void {
    const s = server as FakeServer;
    this.server = s;
    s.client = this;
    s.state = "active";
    if (this.world !== null) s.lastUsed = this.world.now;
    this.world?.hooks.serverLinked.call(this, s);
    if (this.state === "waiting") {
      this.state = "active";
      this.waitStart = 0;
    }
  }
}

/** Options of fakeServer: any Server field (target and params merged into the defaults). */
export type FakeServerOptions = Partial<Omit<Mutable<Server>, "internalPending" | "target" | "params" | "client" | "data" | "applied">> & {
  target?: Partial<ServerTarget>;
  params?: ReadonlyMap<string, string> | Record<string, string>;
  client?: FakeClient | null;
  data?: Record<string, unknown>;
};

/** An internal query a plugin ran (Server.runInternal) that the test has not answered yet (see answerInternal). */
export interface InternalCall {
  sql: string;
  done?: (error: InternalError | null, rows: InternalRows) => void;
}

/**
 * A Server without a socket. `runInternal` queues `{ sql, done }` in `internal` until answerInternal answers it
 * (and lists its SQL in `ran`); `sent` holds every message written to it; the state verbs set `state`; `close`
 * records its reason, ends a linked client as the core does and runs serverClosed.
 */
export class FakeServer implements Server {
  readonly id: number = nextId++;
  label = `S-${this.id}`;
  state: ServerState = "idle";
  target: ServerTarget = { host: "127.0.0.1", port: 5432, database: "postgres", user: "postgres" };
  client: FakeClient | null = null;
  params = new Map<string, string>();
  readonly applied = new Map<string, string>();
  backendPid = 20000 + this.id;
  txStatus: number = TxStatus.Idle;
  connectTime = Date.now();
  lastUsed = this.connectTime;
  fatalSeen = false;
  cancelsInFlight = 0;
  bytesSent = 0;
  localAddr = "127.0.0.1";
  localPort = 40000 + this.id;
  tls: ServerTls | null = null;
  pool: unknown = null;
  closeNeeded = false;
  resetNeeded = false;
  readonly data: Record<string, unknown> = {};

  /** Internal queries not answered yet, oldest first. */
  readonly internal: InternalCall[] = [];
  /** The SQL of every internal query, in the order they were run. */
  readonly ran: string[] = [];
  /** Every message written to this server, in order. */
  readonly sent: Buffer[] = [];
  closedReason: string | null = null;
  /** @internal see FakeClient.world */
  world: World | null = null;

  get internalPending(): number {
    return this.internal.length;
  }

  /** As the core's: not closed or closing, no transaction open, no internal query unanswered. */
  isClean(): boolean {
    return this.state !== "closed" && !this.closeNeeded && !this.fatalSeen && this.txStatus === TxStatus.Idle && this.internal.length === 0;
  }

  /** @internal records bytes as written to the server. */
  write(bytes: Uint8Array): void {
    this.sent.push(Buffer.from(bytes));
    this.bytesSent += bytes.length;
  }

  runInternal(sql: string, done?: (error: InternalError | null, rows: InternalRows) => void): void {
    this.internal.push({ sql, done });
    this.ran.push(sql);
    this.write(query(sql));
  }

  close(reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closedReason = reason;
    const client = this.client;
    this.client = null;
    if (client !== null && client.server === this) {
      unlink(client, this, this.world);
      if (!this.fatalSeen) client.deliver(errorResponse(SqlState.ConnectionFailure, `server connection closed: ${reason}`, "FATAL"));
      client.close(`server closed: ${reason}`);
    }
    this.world?.hooks.serverClosed.call(this, reason);
  }

  markIdle(): void {
    this.state = "idle";
  }

  markTested(): void {
    this.state = "tested";
  }

  markBeingCanceled(): void {
    this.state = "being_canceled";
  }
}

/** Unlinks as the core does: the client's protocol counts restart; the server's state is the pool's to set. */
export function unlink(client: FakeClient, server: FakeServer, world: World | null): void {
  if (client.server === server) client.server = null;
  if (server.client === client) server.client = null;
  client.rfqPending = 0;
  client.syncPending = false;
  client.copyIn = false;
  client.queryStart = 0;
  if (world !== null) server.lastUsed = world.now;
}

/** A Client with sensible defaults (active, idle, in sync, session mode, no server) and any fields overridden. */
export function fakeClient(options: FakeClientOptions = {}): FakeClient {
  const c = new FakeClient();
  const { startupParams, params, settings, startupValues, welcomeParams, data, ...rest } = options;
  Object.assign(c, rest);
  if (options.label === undefined) c.label = `C-${c.id}`;
  c.startupParams = paramsOf(startupParams);
  c.params = paramsOf(params);
  c.settings = paramsOf(settings);
  c.startupValues = paramsOf(startupValues);
  if (welcomeParams !== undefined) c.welcomeParams = new Map(entriesOf(welcomeParams));
  if (data !== undefined) Object.assign(c.data, data);
  return c;
}

/** A Server with sensible defaults (idle, clean, no client) and any fields overridden. */
export function fakeServer(options: FakeServerOptions = {}): FakeServer {
  const s = new FakeServer();
  const { target, params, data, ...rest } = options;
  Object.assign(s, rest);
  if (target !== undefined) s.target = { ...s.target, ...target };
  if (params !== undefined) for (const [k, v] of entriesOf(params)) s.params.set(k, v);
  if (data !== undefined) Object.assign(s.data, data);
  return s;
}

/**
 * Answers the oldest unanswered internal query of a server: rows, or PostgreSQL's error. As in the core, the query
 * leaves `internal` (and the server takes the ReadyForQuery's status, Idle unless given) before `done` runs.
 */
export function answerInternal(server: FakeServer, answer: InternalRows | InternalError, options: { txStatus?: number } = {}): InternalCall {
  const call = server.internal.shift();
  if (call === undefined) throw new Error(`${server.label} has no internal query to answer`);
  server.txStatus = options.txStatus ?? TxStatus.Idle;
  if (Array.isArray(answer)) call.done?.(null, answer);
  else call.done?.(answer, []);
  return call;
}
