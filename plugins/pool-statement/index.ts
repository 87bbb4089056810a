// Built-in plugin: statement pooling refuses transaction blocks, as PgBouncer does, without losing the client.
import { Action, Backend, Prebuilt, SqlState, TxStatus, errorResponse, type Client, type MessageContext, type MessageResult, type PgbunConfig, type PgbunPlugin, type PluginApi, type Server, Stage } from "../../plugin-sdk/index.ts";

const NAME = "pgbun:pool-statement";
const REFUSED = "transaction blocks not allowed in statement pooling mode";

/** Rolls the refused transaction back, then releases the server (its own function: no closure per ReadyForQuery). */
function rollBack(api: PluginApi, client: Client, server: Server): void {
  server.runInternal("ROLLBACK", (error) => {
    if (error || server.txStatus !== TxStatus.Idle) return server.close("could not roll back a refused transaction block");
    if (client.server === server && client.inSync) api.releaseServer(client, server, "statement");
  });
}

/** Whether a client may log in in statement mode: pool_mode, or a [databases] or [users] entry's own. */
function namesStatementMode(config: PgbunConfig): boolean {
  if (config.settings.pool_mode === "statement") return true;
  for (const db of Object.values(config.databases)) if (db.pool_mode === "statement") return true;
  for (const u of Object.values(config.users)) if (u.pool_mode === "statement") return true;
  return false;
}

/**
 * In statement mode a server serves one statement at a time. When a statement leaves the server inside a
 * transaction (BEGIN, START TRANSACTION), pgbun rolls it back, answers the client with an ErrorResponse and
 * ReadyForQuery 'I' in place of the 'T', and releases the server: the client never holds a transaction open. A client
 * that pipelined more behind the BEGIN is ended with the same error, FATAL.
 */
export default function poolStatement(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["pool-statement"],
    apply(api) {
      const guard = (ctx: MessageContext): MessageResult => {
        const client = ctx.client;
        const server = ctx.server;
        if (client.poolMode !== "statement" || server === null || client.txStatus === TxStatus.Idle) return undefined;
        if (!client.inSync) {
          // what the client pipelined behind the BEGIN already runs inside that transaction: it can neither be
          // answered as if it ran alone nor rolled back under the client; the session ends (PgBouncer closes too),
          // and its server, mid-stream, is closed with it (which rolls the transaction back)
          client.fatal(SqlState.FeatureNotSupported, REFUSED);
          return Action.Drop;
        }
        client.txStatus = TxStatus.Idle;
        rollBack(api, client, server);
        return Buffer.concat([
          errorResponse(SqlState.FeatureNotSupported, REFUSED, "ERROR"),
          Prebuilt.ReadyForQueryIdle,
        ]);
      };
      /**
       * A client's pool mode comes from the configuration at its login: while none names statement mode the
       * ReadyForQuery tap would only test the mode, on every transaction, so it is tapped once one does (at start
       * or on a reload), and then stays. A later tap runs all the same: ReadyForQuery is always tapped
       * (transaction-detection).
       */
      let tapped = false;
      const tapIfNeeded = (config: PgbunConfig) => {
        if (tapped || !namesStatementMode(config)) return;
        tapped = true;
        api.onServerMessage(Backend.ReadyForQuery, guard, { stage: Stage.StatementGuard });
      };
      tapIfNeeded(api.config);
      api.hooks.reload.tap(NAME, tapIfNeeded);
    },
  };
}
