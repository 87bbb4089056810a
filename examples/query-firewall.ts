// Example plugin: refuses queries matching configured patterns with SQLSTATE 42501, without a server when it can.
import { Action, SqlState, Stage, TxStatus, decodeParse, decodeQuery, definePlugin, errorResponse, query, readyForQuery, type Client, type MessageContext, type MessageResult } from "pgbun/plugin-sdk";

export interface QueryFirewallOptions {
  /** Regular expression sources; a query whose text matches any of them is refused. */
  deny: string[];
  /** Flags for every pattern (default "i": case-insensitive). */
  flags?: string;
  /** The error message the client sees (default "query refused by the pgbun firewall"). */
  message?: string;
}

const NAME = "query-firewall";
/**
 * After the observers (Stage.Observe: they count what clients send, refused or not) and before every plugin that
 * tracks what goes to the server: a message answered here and dropped must not reach them.
 */
const FIRST = { stage: Stage.Answer };
/**
 * After every other tap, pgbun:prepared-statements' and pgbun:stats' (Stage.Rewrite) included: a message replaced
 * by one the server answers must first be seen by the plugins that pair it with that ReadyForQuery. Replaced any
 * earlier, they miss it and take its answer for the next message's (pgbun's own Describe leaked to the client).
 */
const LAST = { stage: Stage.Replace };

/** Per client: the verdict on the current Query, and the refused extended-protocol exchange being skipped. */
interface FirewallState {
  refusedQuery: RegExp | null;
  /** A refused Parse: "local" once the error went out (ReadyForQuery owed at Sync), "server" to raise it there. */
  skipping: null | { route: "local" } | { route: "server"; pattern: RegExp };
}

function stateOf(client: Client): FirewallState {
  let s = client.data[NAME] as FirewallState | undefined;
  if (!s) client.data[NAME] = s = { refusedQuery: null, skipping: null };
  return s;
}

/** Nothing in flight and no transaction open: pgbun may answer in the server's place, and no server is needed. */
function canAnswerHere(client: Client): boolean {
  return client.inSync && client.txStatus === TxStatus.Idle;
}

/**
 * A refused simple Query is answered by pgbun itself (ErrorResponse + ReadyForQuery, no server checked out)
 * when nothing is in flight and no transaction is open. Otherwise the answer must come in order after the
 * server's pending answers, and an open transaction must fail as PostgreSQL would fail it, so the query is
 * replaced by one that makes the server raise the same error.
 *
 * A refused Parse is dropped with everything after it up to Sync, as PostgreSQL skips after an error. Answered
 * here, the ErrorResponse goes out at once and the ReadyForQuery at the Sync; through the server, the Sync is
 * replaced by the raising query, so a client that sends Flush and waits before its Sync hears of the refusal
 * only at the Sync. Tapping Bind, Execute and the rest makes pgbun frame them whole: fine for an example,
 * costly for very large Bind messages.
 */
export default definePlugin((options: QueryFirewallOptions) => {
  // "g" and "y" would make test() stateful across queries
  const flags = (options.flags ?? "i").replace(/[gy]/g, "");
  const deny = (options.deny ?? []).map((source) => new RegExp(source, flags));
  const message = options.message ?? "query refused by the pgbun firewall";
  const refusedBy = (text: string): RegExp | null => deny.find((re) => re.test(text)) ?? null;
  /** A streamed text (ctx.partial) is seen only in part: what follows its prefix could be anything, so it is refused. */
  const UNSEEN = /(?:)/;
  const check = (ctx: MessageContext, text: () => string): RegExp | null => (ctx.partial ? UNSEEN : refusedBy(text()));
  const detail = (re: RegExp) =>
    re === UNSEEN ? "The query is too long for the firewall to read whole." : `The query matches the denied pattern /${re.source}/.`;
  const refusal = (re: RegExp) => errorResponse(SqlState.InsufficientPrivilege, message, "ERROR", detail(re));
  /** SQL that makes PostgreSQL itself raise our error, in order and with its transaction semantics. */
  const raising = (re: RegExp) => {
    const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
    return query(
      `DO $pgbun_firewall$ BEGIN RAISE EXCEPTION USING ERRCODE = '${SqlState.InsufficientPrivilege}', ` +
        `MESSAGE = ${lit(message)}, DETAIL = ${lit(detail(re))}; END $pgbun_firewall$`,
    );
  };

  return {
    name: NAME,
    apply(api) {
      const logRefusal = (ctx: MessageContext, re: RegExp, via: string) =>
        api.log.info({ client: ctx.client.label, user: ctx.client.user, database: ctx.client.database, pattern: re.source, via }, "query refused");

      api.onClientMessage(
        "Query",
        (ctx) => {
          const s = stateOf(ctx.client);
          s.refusedQuery = null;
          if (s.skipping) return Action.Drop; // PostgreSQL ignores a Query until the Sync too
          const re = check(ctx, () => decodeQuery(ctx));
          if (!re) return undefined;
          logRefusal(ctx, re, "Query");
          if (canAnswerHere(ctx.client)) {
            ctx.sendToClient(refusal(re));
            ctx.sendToClient(readyForQuery(TxStatus.Idle));
            return Action.Drop;
          }
          s.refusedQuery = re; // replaced in the LAST tap below, once the other plugins have seen the Query
          return undefined;
        },
        FIRST,
      );
      api.onClientMessage(
        "Query",
        (ctx) => {
          const s = stateOf(ctx.client);
          const re = s.refusedQuery;
          s.refusedQuery = null;
          return re ? raising(re) : undefined;
        },
        LAST,
      );

      api.onClientMessage(
        "Parse",
        (ctx) => {
          const s = stateOf(ctx.client);
          if (s.skipping) return Action.Drop;
          const re = check(ctx, () => decodeParse(ctx).query);
          if (!re) return undefined;
          logRefusal(ctx, re, "Parse");
          if (canAnswerHere(ctx.client)) {
            ctx.sendToClient(refusal(re));
            s.skipping = { route: "local" };
          } else s.skipping = { route: "server", pattern: re };
          return Action.Drop;
        },
        FIRST,
      );
      const skip = (ctx: MessageContext): MessageResult => (stateOf(ctx.client).skipping ? Action.Drop : undefined);
      for (const type of ["Bind", "Describe", "Execute", "Close", "Flush"] as const) api.onClientMessage(type, skip, FIRST);

      api.onClientMessage(
        "Sync",
        (ctx) => {
          const s = stateOf(ctx.client);
          const skipping = s.skipping;
          if (!skipping) return undefined;
          // the server route may have become unnecessary meanwhile (earlier answers arrived, server released)
          if (skipping.route === "server" && !canAnswerHere(ctx.client)) return undefined;
          if (skipping.route === "server") ctx.sendToClient(refusal(skipping.pattern));
          s.skipping = null;
          ctx.sendToClient(readyForQuery(ctx.client.txStatus));
          return Action.Drop;
        },
        FIRST,
      );
      api.onClientMessage(
        "Sync",
        (ctx) => {
          const s = stateOf(ctx.client);
          if (s.skipping?.route !== "server") return undefined;
          const re = s.skipping.pattern;
          s.skipping = null;
          // one Query in place of the Sync: one ErrorResponse and the ReadyForQuery the client waits for
          return raising(re);
        },
        LAST,
      );
    },
  };
});
