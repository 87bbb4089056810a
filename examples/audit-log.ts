// Example plugin: an audit log of every query (simple Query and Parse text) with client, user, database and duration.
import { decodeErrorResponse, decodeParse, decodeQuery, definePlugin, type Client, type MessageContext } from "pgbun/plugin-sdk";

const NAME = "audit-log";

/** One line of the audit log: one Query, or one extended-protocol exchange up to its Sync. */
export interface AuditEntry {
  /** The client's connection id, e.g. "C-12" (grep the pgbun log for it). */
  client: string;
  user: string;
  database: string;
  /** The SQL text: a Query's text, or the Parse texts of one Sync exchange joined by "; ". */
  text: string;
  /** "query" for the simple protocol, "extended" for Parse/Bind/Execute/Sync. */
  protocol: "query" | "extended";
  /** From the Query or Sync arriving at pgbun to the ReadyForQuery that answers it. */
  durationMs: number;
  /** SQLSTATE of the first ErrorResponse of the exchange, if there was one. */
  error?: string;
}

export interface AuditLogOptions {
  /** Log only exchanges slower than this many milliseconds (default: log everything). */
  slowMs?: number;
  /** Receives each entry instead of the logger (tests, shipping to another system). */
  sink?: (entry: AuditEntry) => void;
}

/** What one client has in flight: exchanges sent to the server and not yet answered, oldest first. */
interface Pending {
  text: string;
  protocol: "query" | "extended";
  start: number;
  error?: string;
}

interface ClientAudit {
  inFlight: Pending[];
  /** Parse texts since the last Sync. */
  parses: string[];
}

function stateOf(client: Client): ClientAudit {
  let s = client.data[NAME] as ClientAudit | undefined;
  if (!s) {
    s = { inFlight: [], parses: [] };
    client.data[NAME] = s;
  }
  return s;
}

/**
 * `enforce: "post"`: it taps after the other plugins, so a message some plugin answered or dropped never gets
 * here, and every Query and Sync it records gets a ReadyForQuery from the server (a tap at a later stage may
 * still replace the message, but the replacement is answered by one ReadyForQuery too). Bind of an already
 * prepared statement carries no text and is not looked at: that would make pgbun buffer every Bind whole.
 */
export default definePlugin((options: AuditLogOptions) => ({
  name: NAME,
  enforce: "post",
  apply(api) {
    const slowMs = options.slowMs ?? -1;
    const emit =
      options.sink ??
      ((e: AuditEntry) => api.log.info({ client: e.client, user: e.user, database: e.database, durationMs: e.durationMs, error: e.error, protocol: e.protocol, query: e.text }, "query"));

    api.onClientMessage("Query", (ctx) => {
      stateOf(ctx.client).inFlight.push({ text: decodeQuery(ctx), protocol: "query", start: performance.now() });
      return undefined;
    });
    api.onClientMessage("Parse", (ctx) => {
      stateOf(ctx.client).parses.push(decodeParse(ctx).query);
      return undefined;
    });
    api.onClientMessage("Sync", (ctx) => {
      // the server ignores a Sync during COPY FROM STDIN and sends no ReadyForQuery for it
      if (ctx.client.copyIn) return undefined;
      const s = stateOf(ctx.client);
      s.inFlight.push({ text: s.parses.join("; "), protocol: "extended", start: performance.now() });
      s.parses = [];
      return undefined;
    });
    // a FunctionCall is answered by a ReadyForQuery too: keep the queue aligned
    api.onClientMessage("FunctionCall", (ctx) => {
      stateOf(ctx.client).inFlight.push({ text: "", protocol: "query", start: performance.now() });
      return undefined;
    });

    api.onServerMessage("ErrorResponse", (ctx) => {
      const head = stateOf(ctx.client).inFlight[0];
      if (head && head.error === undefined) head.error = decodeErrorResponse(ctx).code;
      return undefined;
    });
    api.onServerMessage("ReadyForQuery", (ctx: MessageContext) => {
      const head = stateOf(ctx.client).inFlight.shift();
      if (!head || head.text === "") return undefined;
      const durationMs = Math.round((performance.now() - head.start) * 1000) / 1000;
      if (durationMs <= slowMs) return undefined;
      const c = ctx.client;
      const entry: AuditEntry = { client: c.label, user: c.user, database: c.database, text: head.text, protocol: head.protocol, durationMs };
      if (head.error !== undefined) entry.error = head.error;
      try {
        emit(entry);
      } catch (err) {
        // a failing sink must not cost the client its answer
        api.log.warn({ client: c.label, err }, "audit sink failed");
      }
      return undefined;
    });
  },
}));
