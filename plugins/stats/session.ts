// One admin console connection: simple Query in, result tables out; extended protocol refused; waits keep order.
import type { ClientConnection } from "../../core/client.ts";
import { Frontend } from "../../plugin-sdk/protocol/codes.ts";
import { decodeQuery } from "../../plugin-sdk/protocol/decode.ts";
import { errorResponse, SqlState } from "../../plugin-sdk/protocol/errors.ts";
import { commandComplete, Prebuilt } from "../../plugin-sdk/protocol/writer.ts";
import { isReadOnly, parseCommand } from "./commands.ts";
import { ADMIN_DB, type AdminEnv } from "./env.ts";
import { execute, type Reply } from "./execute.ts";

/** admin_users may run everything; stats_users only SHOW. */
export type AdminRole = "admin" | "stats";

export const EXTENDED_REFUSED = "admin console supports only simple query protocol";

/**
 * Every message of the console's client arrives here (the plugin's taps drop them before any server is asked
 * for). While a command waits (PAUSE, WAIT_CLOSE, or the other workers' answers) later messages are kept in order
 * and the socket is paused.
 */
export class AdminSession {
  /** An extended-protocol message was refused: like PostgreSQL after an error, skip until Sync. */
  private skipToSync = false;
  private busy = false;
  private readonly queued: Buffer[] = [];
  /** The command being answered later (workers > 1), until it settles. */
  private later: Extract<Reply, { kind: "later" }> | null = null;

  constructor(
    readonly client: ClientConnection,
    readonly role: AdminRole,
    private readonly env: AdminEnv,
  ) {}

  message(type: number, buf: Uint8Array, start: number, end: number): void {
    if (this.busy) {
      this.queued.push(Buffer.from(buf.subarray(start, end)));
      this.client.pauseReading();
      return;
    }
    const out = this.client.out;
    if (type === Frontend.Sync) {
      this.skipToSync = false;
      out.push(Prebuilt.ReadyForQueryIdle);
      return;
    }
    if (this.skipToSync) return;
    if (type === Frontend.Query) return this.query(buf, start, end);
    out.push(errorResponse(SqlState.ProtocolViolation, EXTENDED_REFUSED));
    if (type === Frontend.FunctionCall) out.push(Prebuilt.ReadyForQueryIdle);
    else this.skipToSync = true;
  }

  private fail(code: string, message: string): void {
    this.client.out.push(errorResponse(code, message));
    this.client.out.push(Prebuilt.ReadyForQueryIdle);
  }

  private query(buf: Uint8Array, start: number, end: number): void {
    let sql: string;
    try {
      sql = decodeQuery({ buf, start, end });
    } catch {
      return this.fail(SqlState.ProtocolViolation, "invalid Query message");
    }
    const counters = this.env.stats.forPool(ADMIN_DB, ADMIN_DB);
    counters.queries++;
    counters.xacts++;
    const parsed = parseCommand(sql);
    if (!parsed.ok) return this.fail(SqlState.ProtocolViolation, parsed.message);
    const cmd = parsed.command;
    // authorization is checked per command (CVE-2026-6667 was a console that did not)
    if (!isReadOnly(cmd) && this.role !== "admin") return this.fail(SqlState.InsufficientPrivilege, "admin access needed");
    if (!isReadOnly(cmd)) this.env.log.info({ client: this.client.label, user: this.client.user, command: sql.trim() }, "admin console command");
    this.answer(execute(this.env, cmd));
  }

  private answer(reply: Reply): void {
    const out = this.client.out;
    switch (reply.kind) {
      case "now":
        out.push(reply.bytes);
        out.push(Prebuilt.ReadyForQueryIdle);
        return;
      case "error":
        return this.fail(SqlState.ProtocolViolation, reply.message);
      case "shutdown":
        // after this batch is written; the shutdown closes this client too (it has no server)
        setTimeout(() => void this.env.core.shutdown("safe"), 0);
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
    const out = this.client.out;
    out.push(commandComplete(tag));
    out.push(Prebuilt.ReadyForQueryIdle);
    this.runQueued();
  }

  /** A command answered later (workers > 1) has its reply. */
  private settled(reply: Reply): void {
    this.busy = false;
    this.later = null;
    if (this.client.closed) return;
    this.answer(reply);
    this.runQueued();
  }

  private runQueued(): void {
    const out = this.client.out;
    while (!this.busy && this.queued.length > 0) {
      const m = this.queued.shift()!;
      this.message(m[0]!, m, 0, m.length);
    }
    out.flush(null);
    if (!this.busy) this.client.resumeReading();
  }
}
