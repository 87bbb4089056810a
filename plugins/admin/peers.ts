// The admin peer channel (workers > 1): a private Unix socket per worker; one command per connection, answers as JSON lines.
import type { Socket, UnixSocketListener } from "bun";
import { chmodSync, rmSync } from "node:fs";
import type { WorkerInfo } from "../../plugin-sdk/index.ts";
import { SHOW_TARGETS, type AdminCommand, type ShowTarget } from "./commands.ts";
import type { Cell, Column, Table } from "./table.ts";

/**
 * What a sibling answers, one JSON line each: a table (SHOW), ok or error (a control command), or for a waiting
 * command (PAUSE, WAIT_CLOSE) `waiting` at once (with its own error, if its state refused the command) and
 * `done` once its wait is over.
 */
export type PeerAnswer =
  | { kind: "table"; table: Table }
  | { kind: "ok" }
  | { kind: "error"; message: string }
  | { kind: "waiting"; error: string | null }
  | { kind: "done" };

/** How a request is answered, on the worker that serves it. `closed`: the asking worker hung up. */
export interface PeerReply {
  send(answer: PeerAnswer): void;
  end(): void;
  readonly closed: boolean;
}

/** A sibling that has not answered within this time is left out (the console never hangs on a stuck worker). */
export const PEER_ANSWER_TIMEOUT_MS = 1_000;
/** A request is one small command; an answer may carry every connection of a worker (SHOW CLIENTS). */
const MAX_REQUEST_BYTES = 4096;
const MAX_ANSWER_BYTES = 64 << 20;
/** A connection that sends no complete request within this time is closed. */
const REQUEST_TIMEOUT_S = 5;

/** The socket where worker `id` serves its siblings' admin requests (next to its CancelRequest socket). */
export function adminPeerPath(worker: WorkerInfo, id: number): string {
  return `${worker.socketPath(id)}.admin`;
}

// ---- framing: newline-delimited JSON with a size limit ----

const utf8 = new TextDecoder();

/** Splits a byte stream into lines; more than `limit` bytes without a newline is an overflow (null). */
class LineReader {
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Uint8Array): string[] | null {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      if (this.heldBytes + nl - start > this.limit) return null;
      const part = chunk.subarray(start, nl);
      lines.push(utf8.decode(this.heldBytes > 0 ? Buffer.concat([...this.held, part]) : part));
      this.held = [];
      this.heldBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.heldBytes += chunk.length - start;
      if (this.heldBytes > this.limit) return null;
      this.held.push(Buffer.from(chunk.subarray(start))); // a copy: the read buffer is reused
    }
    return lines;
  }
}

/**
 * Writes JSON lines: socket.write may take part of a line, or nothing (Bun keeps none of the rest), so what it
 * did not take waits here, in order, for the socket's drain; end() closes once that backlog is written.
 */
class LineWriter {
  private readonly backlog: Uint8Array[] = [];
  private ending = false;
  closed = false;

  constructor(private readonly socket: Socket<any>) {}

  send(value: unknown): void {
    if (this.closed || this.ending) return;
    const line = Buffer.from(`${JSON.stringify(value)}\n`);
    if (this.backlog.length > 0) this.backlog.push(line);
    else this.write(line);
  }

  /** Writes `bytes` now; keeps the rest at the head of the backlog. False when not all of it was written. */
  private write(bytes: Uint8Array): boolean {
    const n = this.socket.write(bytes);
    if (n < 0) {
      this.closed = true; // the socket is gone: nothing more can be written
      this.backlog.length = 0;
      return false;
    }
    if (n < bytes.length) {
      this.backlog.unshift(bytes.subarray(n));
      return false;
    }
    return true;
  }

  drain(): void {
    if (this.closed) return;
    while (this.backlog.length > 0) if (!this.write(this.backlog.shift()!)) return;
    if (this.ending) this.close();
  }

  /** Ends the connection once everything sent is written. */
  end(): void {
    if (this.backlog.length > 0) this.ending = true;
    else this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.backlog.length = 0;
    this.socket.end();
  }
}

// ---- what arrives is checked: a sibling is trusted no more than the bytes it sends ----

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const OPTIONAL_DB = new Set(["pause", "resume", "reconnect", "wait_close", "kill"]);
const REQUIRED_DB = new Set(["disable", "enable"]);

/** The command of a request: SHOW, a control command, RELOAD or SET, rebuilt field by field; anything else is null. */
export function peerCommand(x: unknown): AdminCommand | null {
  if (!isRecord(x) || typeof x.kind !== "string") return null;
  const { kind, db } = x;
  if (kind === "show") return (SHOW_TARGETS as readonly unknown[]).includes(x.target) ? { kind, target: x.target as ShowTarget } : null;
  if (OPTIONAL_DB.has(kind) && (db === null || typeof db === "string")) return { kind: kind as "pause", db };
  if (REQUIRED_DB.has(kind) && typeof db === "string") return { kind: kind as "disable", db };
  if (kind === "kill_client" && Number.isSafeInteger(x.id) && (x.id as number) >= 0) return { kind, id: x.id as number };
  // RELOAD and SET are applied by every worker (the asking one checked them first)
  if (kind === "reload") return { kind };
  if (kind === "set" && typeof x.key === "string" && typeof x.value === "string") return { kind, key: x.key, value: x.value };
  return null;
}

function peerTable(x: unknown): Table | null {
  if (!isRecord(x) || !Array.isArray(x.columns) || !Array.isArray(x.rows)) return null;
  const columns: Column[] = [];
  for (const c of x.columns) {
    if (!isRecord(c) || typeof c.name !== "string" || (c.type !== "text" && c.type !== "int")) return null;
    columns.push({ name: c.name, type: c.type });
  }
  for (const row of x.rows) {
    if (!Array.isArray(row) || row.length !== columns.length) return null;
    for (const v of row) if (!(v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v)))) return null;
  }
  return { columns, rows: x.rows as Cell[][] };
}

/** One answer line, checked; null when it is not one. */
export function peerAnswer(x: unknown): PeerAnswer | null {
  if (!isRecord(x)) return null;
  switch (x.kind) {
    case "table": {
      const table = peerTable(x.table);
      return table ? { kind: "table", table } : null;
    }
    case "ok":
    case "done":
      return { kind: x.kind };
    case "error":
      return typeof x.message === "string" ? { kind: "error", message: x.message } : null;
    case "waiting":
      return x.error === null || typeof x.error === "string" ? { kind: "waiting", error: x.error } : null;
  }
  return null;
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

// ---- serving siblings ----

/** One sibling's request being served. */
class ServedRequest implements PeerReply {
  private readonly reader = new LineReader(MAX_REQUEST_BYTES);
  readonly writer: LineWriter;
  private handled = false;

  constructor(
    private readonly socket: Socket<any>,
    private readonly handler: (command: AdminCommand, reply: PeerReply) => void,
  ) {
    this.writer = new LineWriter(socket);
    socket.timeout(REQUEST_TIMEOUT_S);
  }

  get closed(): boolean {
    return this.writer.closed;
  }

  send(answer: PeerAnswer): void {
    this.writer.send(answer);
  }

  end(): void {
    this.writer.end();
  }

  data(chunk: Uint8Array): void {
    if (this.handled) return; // one request per connection; anything after it is ignored
    const lines = this.reader.push(chunk);
    if (lines === null) return this.writer.close();
    if (lines.length === 0) return;
    this.handled = true;
    this.socket.timeout(0); // a PAUSE may wait as long as transactions run
    const request = parseLine(lines[0]!);
    const command = isRecord(request) ? peerCommand(request.command) : null;
    if (command === null) return this.writer.close();
    // a worker that was stuck past the asker's timeout was reported left out: it must not apply the command late
    if (!isRecord(request) || typeof request.deadline !== "number" || Date.now() > request.deadline) return this.writer.close();
    this.handler(command, this);
  }

  timedOut(): void {
    if (!this.handled) this.writer.close();
  }
}

/** Listens on `path` (a stale file is removed first; only this user may connect) and hands each request to `handler`. */
export function listenForPeers(path: string, handler: (command: AdminCommand, reply: PeerReply) => void): UnixSocketListener<ServedRequest | undefined> {
  rmSync(path, { force: true });
  const umask = process.umask(0o077); // the socket is created 0600: no other user may send admin commands
  try {
    return Bun.listen<ServedRequest | undefined>({
      unix: path,
      socket: {
        open(s) {
          s.data = new ServedRequest(s, handler);
        },
        data(s, chunk) {
          s.data?.data(chunk);
        },
        drain(s) {
          s.data?.writer.drain();
        },
        timeout(s) {
          s.data?.timedOut();
        },
        close(s) {
          if (s.data) s.data.writer.closed = true;
        },
        error(s) {
          if (s.data) s.data.writer.closed = true;
        },
      },
    });
  } finally {
    process.umask(umask);
    try {
      chmodSync(path, 0o600);
    } catch {
      // listening failed: the error is Bun.listen's
    }
  }
}

// ---- asking a sibling ----

/** One request to a sibling worker and its answers, in order. */
export class PeerCall {
  private readonly reader = new LineReader(MAX_ANSWER_BYTES);
  private readonly answers: PeerAnswer[] = [];
  private waiter: ((a: PeerAnswer | null) => void) | null = null;
  private writer: LineWriter | null = null;
  private ended = false;

  constructor(
    readonly worker: number,
    path: string,
    command: AdminCommand,
  ) {
    const call = this;
    Bun.connect<PeerCall>({
      unix: path,
      data: this,
      socket: {
        open(s) {
          if (call.ended) return void s.end();
          call.writer = new LineWriter(s);
          call.writer.send({ command, deadline: Date.now() + PEER_ANSWER_TIMEOUT_MS });
        },
        data(_s, chunk) {
          call.data(chunk);
        },
        drain() {
          call.writer?.drain();
        },
        close() {
          call.close();
        },
        error() {
          call.close();
        },
        connectError() {
          call.close();
        },
      },
    }).catch(() => this.close());
  }

  private data(chunk: Uint8Array): void {
    if (this.ended) return;
    const lines = this.reader.push(chunk);
    if (lines === null) return this.close();
    for (const line of lines) {
      const answer = peerAnswer(parseLine(line));
      if (answer === null) return this.close(); // not our protocol: stop listening to it
      if (this.waiter) this.waiter(answer);
      else this.answers.push(answer);
    }
  }

  /** The next answer; null when the sibling hung up, sent garbage, or said nothing within `timeoutMs` (null: no limit). */
  next(timeoutMs: number | null): Promise<PeerAnswer | null> {
    if (this.answers.length > 0) return Promise.resolve(this.answers.shift()!);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = timeoutMs === null ? undefined : setTimeout(() => this.close(), timeoutMs);
      this.waiter = (a) => {
        clearTimeout(timer);
        this.waiter = null;
        resolve(a);
      };
    });
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.writer?.close();
    this.waiter?.(null);
  }
}
