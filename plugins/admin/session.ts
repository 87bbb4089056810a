// One admin console connection: simple Query in, result tables out; extended protocol refused; waits keep order.
import { commandComplete, decodeQuery, errorResponse, Frontend, Prebuilt, SqlState, type Client, type PluginApi } from "../../plugin-sdk/index.ts";
import { isReadOnly, parseCommand } from "./commands.ts";
import { ADMIN_DB, type AdminEnv } from "./env.ts";
import { execute, type Reply } from "./execute.ts";

/** admin_users may run everything; stats_users only SHOW. */
export type AdminRole = "admin" | "stats";

/** A user's console role under the settings in force (admin_users first), or null: not allowed in. */
export function roleOf(api: PluginApi, user: string): AdminRole | null {
  const s = api.config.settings;
  if (s.admin_users.includes(user)) return "admin";
  if (s.stats_users.includes(user)) return "stats";
  return null;
}

export const EXTENDED_REFUSED = "admin console supports only simple query protocol";

/**
 * Every message of the console's client arrives here (the plugin's taps drop them before any server is asked
 * for). While a command waits (PAUSE, WAIT_CLOSE, a plugin's promise, or the other workers' answers) later
 * messages are kept in order and the socket is paused. Answers are gathered and written in one piece: by the
 * console's tap into the current batch, or with client.send when a waiting command completes.
 */
export class AdminSession {
  /** An extended-protocol message was refused: like PostgreSQL after an error, skip until Sync. */
  private skipToSync = false;
  private busy = false;
  private readonly queued: Buffer[] = [];
  /** What the messages handled so far answered, not yet written. */
  private pending: Buffer[] = [];
  /** The command being answered later (a plugin's promise, or workers > 1), until it settles. */
  private later: Extract<Reply, { kind: "later" }> | null = null;

  constructor(
    readonly client: Client,
    readonly role: AdminRole,
    private readonly env: AdminEnv,
  ) {}

  message(type: number, buf: Uint8Array, start: number, end: number): void {
    if (this.busy) {
      this.queued.push(Buffer.from(buf.subarray(start, end)));
      this.client.pauseReading();
      return;
    }
    if (type === Frontend.Sync) {
      this.skipToSync = false;
      this.pending.push(Prebuilt.ReadyForQueryIdle);
      return;
    }
    if (this.skipToSync) return;
    if (type === Frontend.Query) return this.query(buf, start, end);
    this.pending.push(errorResponse(SqlState.ProtocolViolation, EXTENDED_REFUSED));
    if (type === Frontend.FunctionCall) this.pending.push(Prebuilt.ReadyForQueryIdle);
    else this.skipToSync = true;
  }

  /** The answers gathered so far as one buffer, or null; the caller writes them. */
  takeOutput(): Buffer | null {
    const p = this.pending;
    if (p.length === 0) return null;
    this.pending = [];
    return p.length === 1 ? p[0]! : Buffer.concat(p);
  }

  private fail(code: string, message: string): void {
    this.pending.push(errorResponse(code, message), Prebuilt.ReadyForQueryIdle);
  }

  private query(buf: Uint8Array, start: number, end: number): void {
    let sql: string;
    try {
      sql = decodeQuery({ buf, start, end });
    } catch {
      return this.fail(SqlState.ProtocolViolation, "invalid Query message");
    }
    this.env.stats()?.countServed(ADMIN_DB, ADMIN_DB);
    const parsed = parseCommand(sql, this.env.extensions);
    if (!parsed.ok) return this.fail(SqlState.ProtocolViolation, parsed.message);
    const cmd = parsed.command;
    // authorization is checked per command, against the settings in force now (a RELOAD or SET may have taken a
    // user out of admin_users since login): CVE-2026-6667 was a console that did not check every command
    const role = roleOf(this.env.api, this.client.user);
    if (role === null) return this.fail(SqlState.InsufficientPrivilege, "not allowed to use the admin console");
    if (!isReadOnly(cmd) && role !== "admin") return this.fail(SqlState.InsufficientPrivilege, "admin access needed");
    if (!isReadOnly(cmd)) this.env.api.log.info({ client: this.client.label, user: this.client.user, command: sql.trim() }, "admin console command");
    this.answer(execute(this.env, cmd, this.client));
  }

  private answer(reply: Reply): void {
    switch (reply.kind) {
      case "now":
        this.pending.push(reply.bytes, Prebuilt.ReadyForQueryIdle);
        return;
      case "error":
        return this.fail(reply.code ?? SqlState.ProtocolViolation, reply.message);
      case "shutdown":
        // a waiting shutdown is answered (WAIT_FOR_CLIENTS waits for this client too); plain SHUTDOWN closes it unanswered
        if (reply.mode !== "now") this.pending.push(commandComplete("SHUTDOWN"), Prebuilt.ReadyForQueryIdle);
        // after this batch is written
        setTimeout(() => void this.env.api.shutdown(reply.mode), 0);
        return;
      case "wait":
        this.busy = true;
        this.env.control.whenDone(this.client, reply.done, () => this.finish(reply.tag));
        return;
      case "later":
        this.busy = true;
        this.later = reply;
        reply.result.then(
          (r) => this.settled(r),
          (err: unknown) => this.settled({ kind: "error", message: err instanceof Error ? err.message : String(err) }),
        );
        return;
    }
  }

  /** The console's client left: a command still waiting for the other workers is dropped. */
  closed(): void {
    this.later?.cancel();
    this.later = null;
  }

  /** A waiting command completed: answer it, then run what arrived meanwhile. */
  private finish(tag: string): void {
    this.busy = false;
    if (this.client.closed) return;
    this.pending.push(commandComplete(tag), Prebuilt.ReadyForQueryIdle);
    this.runQueued();
  }

  /** A command answered later (a plugin's promise, workers > 1) has its reply. */
  private settled(reply: Reply): void {
    this.busy = false;
    this.later = null;
    if (this.client.closed) return;
    this.answer(reply);
    this.runQueued();
  }

  private runQueued(): void {
    while (!this.busy && this.queued.length > 0) {
      const m = this.queued.shift()!;
      this.message(m[0]!, m, 0, m.length);
    }
    const out = this.takeOutput();
    if (out) this.client.send(out);
    if (!this.busy) this.client.resumeReading();
  }
}
