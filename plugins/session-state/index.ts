// Built-in plugin: session state in transaction mode: SET values follow the client; other state pins its server.
import { Backend, Frontend, TxStatus } from "../../core/protocol/codes.ts";
import { SqlState } from "../../core/protocol/errors.ts";
import type { ClientConnection } from "../../core/client.ts";
import type { MessageContext } from "../../core/context.ts";
import type { ServerConnection } from "../../core/server.ts";
import type { PgbunPlugin, PluginApi } from "../../core/plugin/types.ts";

const NAME = "pgbun:session-state";

/** Statements that may change session state, at the start of a statement. */
const AT_START = /(?:^|;)\s*(?:set|reset|listen|unlisten|prepare|discard|deallocate|declare|load|create\s+(?:(?:global|local)\s+)?temp(?:orary)?)\b/i;
/** Function calls and clauses that may change session state anywhere in a statement. */
const ANYWHERE = /\b(?:set_config|pg_(?:try_)?advisory_(?:un)?lock(?:_shared|_all)?|into\s+(?:temp|temporary)\b)/i;

/** One query tells what session state the server holds: pins, and settings to carry to the next server. */
const STATE_QUERY = `SELECT
 (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid() AND granted),
 (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()),
 (SELECT count(*) FROM pg_catalog.pg_cursors WHERE is_holdable),
 (SELECT count(*) FROM pg_catalog.pg_listening_channels()),
 (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql),
 current_user::text, session_user::text,
 (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(name, setting)) FROM pg_catalog.pg_settings WHERE source = 'session')`;

const PIN_REASONS = ["advisory lock", "temporary table", "cursor WITH HOLD", "LISTEN", "SQL PREPARE"] as const;

interface ClientSessionState {
  /** A statement of the current transaction may have changed session state. */
  suspect: boolean;
}

function stateOf(client: ClientConnection): ClientSessionState {
  let s = client.data[NAME] as ClientSessionState | undefined;
  if (!s) client.data[NAME] = s = { suspect: false };
  return s;
}

function mayChangeSession(ctx: MessageContext, from: number): boolean {
  const b = ctx.buf;
  const text = Buffer.from(b.buffer, b.byteOffset + from, ctx.end - from).toString("latin1");
  return AT_START.test(text) || ANYWHERE.test(text);
}

/** Reads the state row: the pin reason (or null) and the session-level settings. */
function readState(row: Array<string | null>, server: ServerConnection): { pin: string | null; settings: Array<[string, string]> } {
  let pin: string | null = null;
  for (let i = 0; i < PIN_REASONS.length; i++) if (Number(row[i]) > 0) pin ??= PIN_REASONS[i]!;
  const currentUser = row[5];
  const sessionUser = row[6];
  if (pin === null && (currentUser !== sessionUser || sessionUser !== server.target.user)) pin = "SET ROLE / SESSION AUTHORIZATION";
  const settings = row[7] ? (JSON.parse(row[7]) as Array<[string, string]>) : [];
  return { pin, settings };
}

function onTransactionEnd(api: PluginApi, client: ClientConnection, server: ServerConnection): void {
  const mode = api.config.settings.session_state;
  server.runInternal(STATE_QUERY, (error, rows) => {
    if (error || rows.length !== 1) {
      server.closeNeeded = true; // state unknown: never hand this server to anyone else
      if (client.server === server) client.pinReason = "session state unknown";
      return;
    }
    const { pin, settings } = readState(rows[0]!, server);
    // settings the server does not report are carried by the client and replayed where it lands
    for (const name of [...client.settings.keys()]) if (!settings.some(([n]) => n === name)) client.settings.delete(name);
    server.applied.clear();
    for (const [name, value] of settings) {
      if (client.params.has(name)) continue; // reported parameters are tracked through ParameterStatus
      client.settings.set(name, value);
      server.applied.set(name, value);
    }
    if (client.server !== server) return;
    if (pin !== null && mode === "error") {
      server.closeNeeded = true;
      client.fatal(SqlState.FeatureNotSupported, `${pin} is session state, which transaction pooling cannot keep (session_state = error)`);
      return;
    }
    if (pin !== client.pinReason) {
      api.log.info({ client: client.label, server: server.label, pin }, pin ? `client pinned to its server: ${pin}` : "client unpinned");
      client.pinReason = pin;
    }
    if (pin === null && client.inSync && client.txStatus === TxStatus.Idle && server.internalPending === 0) {
      api.core.releaseServer(client, server, "transaction");
    }
  });
}

/**
 * Looks at Query and Parse texts only, with two regular expressions, for statements that can change session
 * state. After such a transaction (and after every transaction of a pinned client) one internal query asks the
 * server what state it holds: session settings are taken along to the next server; advisory locks, temporary
 * tables, holdable cursors, LISTEN, SQL PREPARE and SET ROLE pin the client to its server until they are gone.
 * session_state = "error" refuses such state instead; "ignore" does nothing (PgBouncer's behaviour).
 */
export default function sessionState(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["session-state"],
    apply(api) {
      const active = (c: ClientConnection) => c.poolMode !== "session" && api.config.settings.session_state !== "ignore";
      api.onClientMessage(
        Frontend.Query,
        (ctx) => {
          if (active(ctx.client) && mayChangeSession(ctx, ctx.start + 5)) stateOf(ctx.client).suspect = true;
          return undefined;
        },
        { stage: -30 },
      );
      api.onClientMessage(
        Frontend.Parse,
        (ctx) => {
          if (!active(ctx.client)) return undefined;
          let i = ctx.start + 5;
          while (i < ctx.end && ctx.buf[i] !== 0) i++; // skip the statement name
          if (mayChangeSession(ctx, i + 1)) stateOf(ctx.client).suspect = true;
          return undefined;
        },
        { stage: -30 },
      );
      api.onServerMessage(
        Backend.ReadyForQuery,
        (ctx) => {
          const client = ctx.client;
          const server = ctx.server;
          if (server === null || !active(client) || client.txStatus !== TxStatus.Idle || !client.inSync) return undefined;
          const st = stateOf(client);
          if (!st.suspect && client.pinReason === null) return undefined;
          st.suspect = false;
          onTransactionEnd(api, client, server);
          server.out.flush(null);
          return undefined;
        },
        { stage: -15 },
      );
    },
  };
}
