// Built-in plugin "pgbun:transaction-timeout": transaction_timeout (PgBouncer 1.25) closes a client whose transaction lasts longer.
import { Backend, SqlState, TxStatus, type Client, type PgbunPlugin } from "../../plugin-sdk/index.ts";

const NAME = "pgbun:transaction-timeout";

/** The transaction-timeout plugin; replace it with a plugin that `provides: ["transaction-timeout"]`. */
export default function transactionTimeoutPlugin(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["transaction-timeout"],
    apply(api) {
      /**
       * Clients inside a transaction block, and since when (cached clock, ms): from the ReadyForQuery that first
       * said so. Only those are in it, so an idle client costs nothing; an autocommit statement is timed from its
       * own start (client.queryStart) instead.
       */
      const since = new Map<Client, number>();
      api.onServerMessage(Backend.ReadyForQuery, (ctx) => {
        const status = ctx.buf[ctx.start + 5];
        if (status === TxStatus.Idle) {
          if (since.size !== 0) since.delete(ctx.client);
        } else if (api.config.settings.transaction_timeout > 0 && !since.has(ctx.client)) {
          since.set(ctx.client, api.now);
        }
        return undefined;
      });
      api.hooks.clientClosed.tap(NAME, (client) => void since.delete(client));
      api.hooks.tick.tap(NAME, (now) => {
        const limitMs = api.config.settings.transaction_timeout * 1000;
        if (limitMs <= 0) {
          since.clear();
          return;
        }
        // only a client with a server can be in a transaction: walk the servers, far fewer than the clients
        for (const server of api.servers()) {
          const client = server.client;
          if (client === null || client.closed) continue;
          const start = since.get(client) ?? client.queryStart;
          // PostgreSQL's own transaction_timeout has the same SQLSTATE; the server, mid-transaction, is closed
          if (start > 0 && now - start > limitMs) client.fatal(SqlState.TransactionTimeout, "transaction_timeout");
        }
      });
    },
  };
}
