// Built-in plugin "pgbun:transaction-timeout": transaction_timeout (PgBouncer 1.25) closes a client whose transaction lasts longer.
import { Backend, SqlState, TxStatus, type Client, type MessageContext, type MessageResult, type PgbunConfig, type PgbunPlugin } from "../../plugin-sdk/index.ts";

const NAME = "pgbun:transaction-timeout";

/** Whether any transaction is timed: the global setting or a [users] entry's own. */
function anyLimit(config: PgbunConfig): boolean {
  return config.settings.transaction_timeout > 0 || Object.values(config.users).some((u) => (u.transaction_timeout ?? 0) > 0);
}

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
      let timed = anyLimit(api.config);
      /** In ms, 0 = off: the client's [users] entry wins over the global setting, as PgBouncer's do. */
      const limitMs = (client: Client) => (api.config.users[client.user]?.transaction_timeout ?? api.config.settings.transaction_timeout) * 1000;

      const markOpen = (ctx: MessageContext): MessageResult => {
        const status = ctx.buf[ctx.start + 5];
        if (status === TxStatus.Idle) {
          if (since.size !== 0) since.delete(ctx.client);
        } else if (timed && !since.has(ctx.client)) {
          since.set(ctx.client, api.now);
        }
        return undefined;
      };
      /**
       * With no limit set the ReadyForQuery tap would do nothing, yet run on every transaction: it is tapped only
       * once some configuration sets one (at start, or on the first reload that does), and then stays, doing nothing
       * while no limit is set. A later tap runs all the same: ReadyForQuery is always tapped (transaction-detection).
       */
      let tapped = false;
      const tapIfTimed = () => {
        if (!timed || tapped) return;
        tapped = true;
        api.onServerMessage(Backend.ReadyForQuery, markOpen);
      };
      tapIfTimed();
      api.hooks.clientClosed.tap(NAME, (client) => void since.delete(client));
      api.hooks.reload.tap(NAME, (config) => {
        timed = anyLimit(config);
        tapIfTimed();
      });
      api.hooks.tick.tap(NAME, (now) => {
        if (!timed) {
          since.clear();
          return;
        }
        // only a client with a server can be in a transaction: walk the servers, far fewer than the clients
        for (const server of api.servers()) {
          const client = server.client;
          if (client === null || client.closed) continue;
          const start = since.get(client) ?? client.queryStart;
          if (start === 0) continue;
          const limit = limitMs(client);
          // PostgreSQL's own transaction_timeout has the same SQLSTATE; the server, mid-transaction, is closed
          if (limit > 0 && now - start > limit) client.fatal(SqlState.TransactionTimeout, "transaction_timeout");
        }
      });
    },
  };
}
