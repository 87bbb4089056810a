// The periodic janitor: one timer, a cached clock, and every client timeout checked by scanning the lists.
import { SqlState } from "../plugin-sdk/protocol/errors.ts";
import { TxStatus } from "../plugin-sdk/protocol/codes.ts";
import type { Pgbun } from "./pgbun.ts";

const TICK_MS = 333;
/**
 * A client without a server that has sent nothing for this long gives back its framer and outbound queue
 * (ClientConnection.shedIO): after one to three ticks. Two ticks, because core.now, which stamps lastActivity,
 * moves only at a tick: a client stamped with the last tick's time may have sent a moment ago.
 */
export const IO_IDLE_MS = 2 * TICK_MS;

export class Janitor {
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly core: Pgbun) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A setting for this client: its [users] entry wins over the global one. Seconds → ms; 0 = off. */
  private limit(user: string, key: "query_timeout" | "idle_transaction_timeout" | "client_idle_timeout"): number {
    const u = this.core.config.users[user] as unknown as Record<string, unknown> | undefined;
    const v = (u?.[key] as number | undefined) ?? this.core.config.settings[key];
    return v > 0 ? v * 1000 : 0;
  }

  tick(): void {
    const core = this.core;
    const now = core.setNow(Date.now());
    const s = core.config.settings;
    const loginMs = s.client_login_timeout * 1000;
    const waitMs = s.query_wait_timeout * 1000;
    for (const c of core.clients) {
      switch (c.state) {
        case "login":
          if (loginMs > 0 && now - c.connectTime > loginMs) c.fatal(SqlState.ProtocolViolation, "client_login_timeout");
          break;
        case "waiting":
          if (waitMs > 0 && now - c.waitStart > waitMs) c.fatal(SqlState.ProtocolViolation, "query_wait_timeout");
          break;
        case "active": {
          const server = c.server;
          if (server && c.queryStart > 0) {
            const q = this.limit(c.user, "query_timeout");
            if (q > 0 && now - c.queryStart > q) {
              // stop the query upstream too: closing our socket alone leaves the backend running it
              core.cancel.cancelServer(server);
              c.fatal(SqlState.QueryCanceled, "query_timeout");
              break;
            }
          }
          if (server && c.inSync && c.txStatus !== TxStatus.Idle) {
            const t = this.limit(c.user, "idle_transaction_timeout");
            if (t > 0 && now - c.lastActivity > t) {
              c.fatal(SqlState.IdleInTransactionSessionTimeout, "idle_transaction_timeout");
              break;
            }
          }
          const idle = this.limit(c.user, "client_idle_timeout");
          if (idle > 0 && c.inSync && now - c.lastActivity > idle) {
            c.fatal(SqlState.IdleSessionTimeout, "client_idle_timeout");
            break;
          }
          if (server === null && c.holdsIO() && now - c.lastActivity >= IO_IDLE_MS) c.shedIO();
          break;
        }
      }
    }
    try {
      core.hooks.tick.call(now);
    } catch (err) {
      core.log.error({ err }, "tick hook failed");
    }
  }
}
