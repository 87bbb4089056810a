// Built-in plugin: protocol-level named prepared statements that work in transaction and statement mode.
import { Backend, Frontend, TxStatus } from "../../core/protocol/codes.ts";
import { Prebuilt } from "../../core/protocol/writer.ts";
import { decodeError, errorResponse } from "../../core/protocol/errors.ts";
import { decodeParse, decodeQuery, decodeTarget } from "../../core/protocol/decode.ts";
import { Action, type MessageContext, type MessageResult } from "../../core/context.ts";
import type { ClientConnection } from "../../core/client.ts";
import type { ServerConnection } from "../../core/server.ts";
import type { PgbunPlugin } from "../../core/plugin/types.ts";
import { closeStatement, describeStatement, parseMessage, rebind } from "./messages.ts";
import { Req, RequestQueue, type ReqKind } from "./requests.ts";

const NAME = "pgbun:prepared-statements";
const decoder = new TextDecoder();
const RESETS_STATEMENTS = /^\s*(discard\s+all|deallocate\s+(prepare\s+)?all)\s*;?\s*$/i;

interface ClientStatement {
  query: string;
  paramTypes: number[];
  /** Query text plus parameter types: equal keys share one server-side statement. */
  key: string;
}

/**
 * A Bind of a named statement that opened an implicit transaction, kept with what follows it up to its Sync, so
 * that "cached plan must not change result type" (raised at Bind after DDL) can be retried once, unseen.
 */
interface Retry {
  stmt: ClientStatement;
  /** The Bind as sent (under the server's statement name), and where the portal and name end in it. */
  bind: Buffer;
  portalEnd: number;
  nameEnd: number;
  /** Describe (portal) and Execute messages after the Bind, in order, with their request kinds. */
  rest: Array<{ bytes: Buffer; kind: ReqKind }>;
  synced: boolean;
  fired: boolean;
}

interface ClientStatements {
  byName: Map<string, ClientStatement>;
  queue: RequestQueue;
  retry: Retry | null;
}

interface ServerStatements {
  /** key → pgbun's statement name on this server, in LRU order (oldest first). */
  names: Map<string, string>;
  /** Keys whose server statement has a stale plan (after DDL): closed and re-prepared at next use. */
  stale: Set<string>;
  seq: number;
}

function clientState(client: ClientConnection): ClientStatements {
  let s = client.data[NAME] as ClientStatements | undefined;
  if (!s) client.data[NAME] = s = { byName: new Map(), queue: new RequestQueue(), retry: null };
  return s;
}

function serverState(server: ServerConnection): ServerStatements {
  let s = server.data[NAME] as ServerStatements | undefined;
  if (!s) server.data[NAME] = s = { names: new Map(), stale: new Set(), seq: 0 };
  return s;
}

/** The index of the NUL ending the string that starts at `from` (`end` when there is none). */
function nulAt(buf: Uint8Array, from: number, end: number): number {
  let j = from;
  while (j < end && buf[j] !== 0) j++;
  return j;
}

/** The text between from and to; "" costs nothing, and a Buffer (every read buffer) is read without a view. */
function textOf(buf: Uint8Array, from: number, to: number): string {
  if (from >= to) return "";
  return Buffer.isBuffer(buf) ? buf.toString("utf8", from, to) : decoder.decode(buf.subarray(from, to));
}

/**
 * Each client keeps its statement names; each server keeps statements under pgbun's names (`pgbun_N`), shared
 * by every client of the pool with the same query text and parameter types. A Bind or Describe that lands on a
 * server lacking the statement is preceded by a Parse whose ParseComplete is swallowed; a Parse of a statement
 * the server already has, and a Close of a statement, are answered by pgbun in the position the client expects.
 */
export default function preparedStatements(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["prepared-statements"],
    apply(api) {
      const pooled = (ctx: MessageContext) => ctx.client.poolMode !== "session";
      // Client-side taps run last, so they see exactly what goes to the server: a plugin that answers or drops a
      // message earlier is never mistaken for a request in flight. (Bytes another plugin returns as a replacement
      // are forwarded as they are, unseen by later taps.)
      const onClient: typeof api.onClientMessage = (type, fn) => api.onClientMessage(type, fn, { stage: 1000 });
      const max = () => api.config.settings.max_prepared_statements;

      /** An answer owed to the client: now if nothing is in flight, else when the requests before it are answered. */
      const owe = (ctx: MessageContext, st: ClientStatements, kind: ReqKind, name?: string) => {
        if (st.queue.length === 0) ctx.sendToClient(kind === Req.SynParse ? Prebuilt.ParseComplete : Prebuilt.CloseComplete);
        else st.queue.push(kind, undefined, name);
      };

      /** The Parse the latest prepare() made (null when the server had the statement): a second result, unboxed. */
      let preparedParse: Buffer | null = null;

      /**
       * Names the statement on this server, preparing it (and evicting the least recently used) when needed; the
       * Parse it made is left in preparedParse (sent already unless asClientParse).
       */
      const prepare = (ctx: MessageContext, st: ClientStatements, stmt: ClientStatement, asClientParse: boolean): string => {
        const server = ctx.server!;
        const srv = serverState(server);
        const existing = srv.names.get(stmt.key);
        preparedParse = null;
        if (existing !== undefined && !srv.stale.has(stmt.key)) {
          srv.names.delete(stmt.key);
          srv.names.set(stmt.key, existing);
          return existing;
        }
        if (existing !== undefined) {
          ctx.sendToServer(closeStatement(existing));
          st.queue.push(Req.IntClose);
          srv.names.delete(stmt.key);
          srv.stale.delete(stmt.key);
        }
        const limit = max();
        while (limit > 0 && srv.names.size >= limit) {
          const [oldKey, oldName] = srv.names.entries().next().value as [string, string];
          srv.names.delete(oldKey);
          ctx.sendToServer(closeStatement(oldName));
          st.queue.push(Req.IntClose);
        }
        const name = `pgbun_${++srv.seq}`;
        srv.names.set(stmt.key, name);
        const parse = parseMessage(name, stmt.query, stmt.paramTypes);
        if (!asClientParse) {
          ctx.sendToServer(parse);
          st.queue.push(Req.IntParse, stmt.key);
        }
        preparedParse = parse;
        return name;
      };

      onClient(Frontend.Parse, (ctx): MessageResult => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        if (st.retry !== null && !st.retry.synced) st.retry = null;
        if (ctx.buf[ctx.start + 5] === 0) {
          // unnamed statement: passes through untouched
          st.queue.push(Req.Parse);
          return undefined;
        }
        const p = decodeParse(ctx);
        if (st.byName.has(p.name)) {
          // PostgreSQL refuses a name in use (42P05) and skips to the Sync: a Parse that fails on the server keeps
          // that order and rolls back the implicit transaction as PostgreSQL would; its error is renamed below
          if (ctx.server === null) return Action.WaitForServer;
          st.queue.push(Req.IntDuplicate, undefined, p.name);
          return parseMessage("pgbun_duplicate", "pgbun: prepared statement already exists", []);
        }
        const key = p.paramTypes.length > 0 ? `${p.query}\u0000${p.paramTypes.join(",")}` : p.query;
        const stmt = { query: p.query, paramTypes: p.paramTypes, key };
        st.byName.set(p.name, stmt);
        if (ctx.server === null) {
          const idle = ctx.client.state === "active" ? api.hooks.peekServer.call(ctx.client) : undefined;
          if (idle) ctx.client.linkServer(idle);
          else {
            // no server is free: the statement is prepared where its first Bind/Describe lands, so a client that
            // prepares synchronously (pgbench -M prepared) never waits for a server it does not use; a syntax
            // error then surfaces at that first use
            owe(ctx, st, Req.SynParse, p.name);
            return Action.Drop;
          }
        }
        prepare(ctx, st, stmt, true);
        const parse = preparedParse;
        if (parse === null) {
          owe(ctx, st, Req.SynParse, p.name);
          return Action.Drop;
        }
        st.queue.push(Req.Parse, key, p.name);
        return parse;
      });

      onClient(Frontend.Bind, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        const { buf, start, end } = ctx;
        const portalEnd = nulAt(buf, start + 5, end);
        const nameEnd = nulAt(buf, portalEnd + 1, end);
        const name = textOf(buf, portalEnd + 1, nameEnd);
        const stmt = name === "" ? undefined : st.byName.get(name);
        if (stmt === undefined) {
          st.queue.push(Req.Bind);
          // unknown names must not reach pgbun's own statements on the server
          return name.startsWith("pgbun_") ? rebind(buf, start, end, portalEnd, nameEnd, `${name}_unknown`) : undefined;
        }
        if (ctx.server === null) return Action.WaitForServer;
        const retryable = st.queue.length === 0 && ctx.client.txStatus === TxStatus.Idle;
        const serverName = prepare(ctx, st, stmt, false);
        st.queue.push(Req.Bind);
        const bind = rebind(buf, start, end, portalEnd, nameEnd, serverName);
        // the rewritten Bind is pgbun's own buffer: a retry renames it again, no copy of the client's is kept
        const keptNameEnd = portalEnd - start + 1 + Buffer.byteLength(serverName);
        st.retry = retryable ? { stmt, bind, portalEnd: portalEnd - start, nameEnd: keptNameEnd, rest: [], synced: false, fired: false } : null;
        return bind;
      });

      onClient(Frontend.Describe, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        // 'S' statement or 'P' portal, then the name (read only when there is one)
        const ofStatement = ctx.buf[ctx.start + 5] === 0x53;
        const targetName = textOf(ctx.buf, ctx.start + 6, nulAt(ctx.buf, ctx.start + 6, ctx.end));
        const stmt = ofStatement && targetName !== "" ? st.byName.get(targetName) : undefined;
        if (st.retry !== null && !st.retry.synced) {
          if (!ofStatement) st.retry.rest.push({ bytes: Buffer.from(ctx.bytes()), kind: Req.DescribePortal });
          else st.retry = null;
        }
        if (stmt === undefined) {
          st.queue.push(ofStatement ? Req.DescribeStatement : Req.DescribePortal);
          return ofStatement && targetName.startsWith("pgbun_") ? describeStatement(`${targetName}_unknown`) : undefined;
        }
        if (ctx.server === null) return Action.WaitForServer;
        const serverName = prepare(ctx, st, stmt, false);
        st.queue.push(Req.DescribeStatement);
        return describeStatement(serverName);
      });

      onClient(Frontend.Close, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        const t = decodeTarget(ctx);
        if (t.kind === "S" && t.name !== "") {
          // the server statement may serve other clients: only the client's name goes away
          st.byName.delete(t.name);
          owe(ctx, st, Req.SynClose);
          return Action.Drop;
        }
        st.queue.push(Req.Close);
        return undefined;
      });

      const track = (kind: ReqKind) => (ctx: MessageContext): MessageResult => {
        if (pooled(ctx)) clientState(ctx.client).queue.push(kind);
        return undefined;
      };
      onClient(Frontend.Execute, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        st.queue.push(Req.Execute);
        if (st.retry !== null && !st.retry.synced) st.retry.rest.push({ bytes: Buffer.from(ctx.bytes()), kind: Req.Execute });
        return undefined;
      });
      onClient(Frontend.Sync, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const client = ctx.client;
        if (ctx.server === null && client.state === "active" && client.inSync) {
          // nothing is outstanding and no transaction is open: answer the Sync here
          ctx.sendToClient(Prebuilt.ReadyForQueryIdle);
          return Action.Drop;
        }
        const st = clientState(client);
        st.queue.push(Req.Sync);
        if (st.retry !== null) {
          if (st.retry.synced || st.retry.rest.length === 0) st.retry = null;
          else st.retry.synced = true;
        }
        return undefined;
      });
      onClient(Frontend.FunctionCall, track(Req.Query));
      onClient(Frontend.Query, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        let i = ctx.start + 5;
        while (ctx.buf[i] === 0x20 || ctx.buf[i] === 0x0a || ctx.buf[i] === 0x09) i++;
        const first = ctx.buf[i]! | 0x20;
        if (first === 0x64 /* d */ && RESETS_STATEMENTS.test(decodeQuery(ctx))) {
          if (ctx.server === null) return Action.WaitForServer;
          st.byName.clear();
          serverState(ctx.server).names.clear();
        }
        st.queue.push(Req.Query);
        return undefined;
      });

      // ---- responses ----

      /** Sends the answers owed at the head of the queue right after the current message (forwarded or dropped). */
      const settle = (ctx: MessageContext, st: ClientStatements, forward: boolean): MessageResult => {
        for (let head = st.queue.peek(); head !== undefined && (head.kind === Req.SynParse || head.kind === Req.SynClose); head = st.queue.peek()) {
          ctx.appendAfter(head.kind === Req.SynParse ? Prebuilt.ParseComplete : Prebuilt.CloseComplete);
          st.queue.shift();
        }
        return forward ? undefined : Action.Drop;
      };

      /** Completes the request at the head when it is of one of these kinds. */
      const complete = (...kinds: ReqKind[]) => (ctx: MessageContext): MessageResult => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        const head = st.queue.peek();
        if (head === undefined || !kinds.includes(head.kind)) return undefined;
        st.queue.shift();
        const own = head.kind === Req.IntParse || head.kind === Req.IntClose;
        return settle(ctx, st, !own);
      };
      api.onServerMessage(Backend.ParseComplete, complete(Req.Parse, Req.IntParse));
      api.onServerMessage(Backend.BindComplete, complete(Req.Bind));
      api.onServerMessage(Backend.CloseComplete, complete(Req.Close, Req.IntClose));
      api.onServerMessage(Backend.NoData, complete(Req.DescribeStatement, Req.DescribePortal));
      api.onServerMessage(Backend.RowDescription, complete(Req.DescribeStatement, Req.DescribePortal));
      api.onServerMessage(Backend.CommandComplete, complete(Req.Execute));
      api.onServerMessage(Backend.EmptyQueryResponse, complete(Req.Execute));
      api.onServerMessage(Backend.PortalSuspended, complete(Req.Execute));

      /** Runs the kept Bind/Describe/Execute/Sync again on a freshly prepared statement; the client sees one answer. */
      const retry = (ctx: MessageContext, st: ClientStatements, r: Retry): void => {
        st.retry = null;
        const name = prepare(ctx, st, r.stmt, false);
        st.queue.push(Req.Bind);
        ctx.sendToServer(rebind(r.bind, 0, r.bind.length, r.portalEnd, r.nameEnd, name));
        for (const m of r.rest) {
          st.queue.push(m.kind);
          ctx.sendToServer(m.bytes);
        }
        st.queue.push(Req.Sync);
        ctx.sendToServer(Prebuilt.Sync);
        ctx.server!.out.flush(null);
      };

      api.onServerMessage(Backend.ReadyForQuery, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        if (st.retry?.fired && st.queue.peek()?.kind === Req.Sync) {
          st.queue.shift();
          retry(ctx, st, st.retry);
          return Action.Drop;
        }
        // defensive: anything before the Sync/Query this answers was skipped by the server
        for (let head = st.queue.peek(); head !== undefined; head = st.queue.peek()) {
          st.queue.shift();
          if (head.kind === Req.Sync || head.kind === Req.Query) break;
          if (head.kind === Req.SynParse || head.kind === Req.SynClose) continue;
        }
        return settle(ctx, st, true);
      }, { stage: -20 }); // first: it only observes (owed answers go out after the ReadyForQuery)

      api.onServerMessage(Backend.ErrorResponse, (ctx) => {
        if (!pooled(ctx) || ctx.server === null) return undefined;
        const st = clientState(ctx.client);
        const srv = serverState(ctx.server);
        const head = st.queue.peek();
        if (head === undefined || head.kind === Req.Query) return undefined;
        let replacement: MessageResult = undefined;
        if (head.kind === Req.IntDuplicate) {
          replacement = errorResponse("42P05", `prepared statement "${head.name}" already exists`);
        }
        const error = decodeError(ctx.buf, ctx.start, ctx.end);
        const code = error.code;
        const r = st.retry;
        const retryable = r !== null && r.synced && !r.fired && head.kind === Req.Bind && code === "0A000" && error.message.includes("cached plan");
        if (code === "0A000" || code === "26000") {
          // "cached plan must not change result type" after DDL, or a statement gone from the server:
          // re-prepare this server's statements at their next use so the next attempt works
          for (const key of srv.names.keys()) srv.stale.add(key);
        }
        // the server skips everything up to the next Sync: nothing it skipped was prepared or answered
        for (let p = st.queue.peek(); p !== undefined && p.kind !== Req.Sync; p = st.queue.peek()) {
          st.queue.shift();
          if ((p.kind === Req.Parse || p.kind === Req.IntParse) && p.key !== undefined) srv.names.delete(p.key);
          // a named Parse the server failed or skipped created nothing: the client's name goes too
          if ((p.kind === Req.Parse || p.kind === Req.SynParse) && p.name !== undefined) st.byName.delete(p.name);
        }
        if (retryable) {
          // the Bind opened an implicit transaction that the error rolled back: nothing ran, so run it again
          r.fired = true;
          return Action.Drop;
        }
        st.retry = null;
        return replacement;
      });

      // a server reset (server_reset_query_always) drops every statement on it
      api.hooks.serverReleased.tap({ name: NAME, stage: -10 }, (server) => {
        if (api.config.settings.server_reset_query_always) serverState(server).names.clear();
        return undefined;
      });
      api.hooks.serverLinked.tap(NAME, (client) => {
        // a fresh link starts with nothing in flight
        if (client.inSync) clientState(client).queue.clear();
      });
    },
  };
}
