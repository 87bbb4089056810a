// Example plugin: answers the virtual query `SHOW pgbun_version` itself, without a server.
import { Action, Stage, TxStatus, commandComplete, dataRow, decodeQuery, definePlugin, query, readyForQuery, rowDescription, type MessageContext } from "pgbun/plugin-sdk";

export interface HelloAnswerOptions {
  /** The value answered (default "pgbun"). */
  version?: string;
}

const COLUMN = "pgbun_version";

/** Lower case, single spaces, no trailing semicolons: `show  PGBUN_VERSION ;` is the same command. */
function normalize(sql: string): string {
  return sql.replace(/[\s;]+$/, "").trim().replace(/\s+/g, " ").toLowerCase();
}

/**
 * When nothing is in flight the answer goes straight back (RowDescription, DataRow, CommandComplete,
 * ReadyForQuery with the client's transaction status), so it works while every server is busy. With
 * queries in flight, or in a failed transaction, the answer must come in order from the server (which
 * also reports the aborted transaction as PostgreSQL would), so the query is replaced by a SELECT.
 *
 * The two cases tap at two stages: the answer here goes first (Stage.Answer, after the observers), so plugins
 * that track what reaches the server never see a query that does not; the replacement goes after every other
 * tap (past Stage.Rewrite, where pgbun:prepared-statements and pgbun:stats record the Query), so they have all
 * seen the Query that its ReadyForQuery will answer.
 */
export default definePlugin((options: HelloAnswerOptions) => {
  const version = options.version ?? "pgbun";
  const answer = Buffer.concat([rowDescription([COLUMN]), dataRow([version]), commandComplete("SHOW")]);
  const fallback = query(`SELECT '${version.replace(/'/g, "''")}'::text AS ${COLUMN}`);
  // cheap length check first: most queries are not ours and need no decoding
  const isOurs = (ctx: MessageContext) => ctx.length <= 64 && normalize(decodeQuery(ctx)) === `show ${COLUMN}`;
  const answerHere = (ctx: MessageContext) => ctx.client.inSync && ctx.client.txStatus !== TxStatus.Failed;

  return {
    name: "hello-answer",
    apply(api) {
      api.onClientMessage(
        "Query",
        (ctx) => {
          if (!isOurs(ctx) || !answerHere(ctx)) return undefined;
          ctx.sendToClient(answer);
          ctx.sendToClient(readyForQuery(ctx.client.txStatus));
          return Action.Drop;
        },
        { stage: Stage.Answer },
      );
      api.onClientMessage("Query", (ctx) => (isOurs(ctx) ? fallback : undefined), { stage: Stage.Replace });
    },
  };
});
