// Built-in plugin: protocol-level named prepared statements that work in transaction and statement mode.
import { Action, Backend, DEALLOCATES_ALL, Frontend, Prebuilt, cstringEnd, decodeError, decodeParse, decodeQuery, decodeTarget, errorResponse, errorResponseOf, type MessageContext, type MessageResult, type PgbunPlugin, Stage } from "../../plugin-sdk/index.ts";
import { closeStatement, describeStatement, parameterDescription, parseMessage, rebind, renameParsePrefix } from "./messages.ts";
import { Req, type ReqKind } from "./requests.ts";
import { parameterTypes, shapeOf } from "./shape.ts";
import { shared, sharedTypes } from "./shared.ts";
import { clientState, knownState, NAME, serverState, type ClientStatement, type ClientStatements, type ServerStatement, type ServerStatements } from "./state.ts";

const decoder = new TextDecoder();
/** A statement name that never exists on a server: a Bind or Describe of it fails there, in place. */
const CHANGED_NAME = "pgbun_changed";
/** What resolve() returns when the message must wait for the server's Describe. */
const HOLD = null;
/** What resolve() returns when the client's statement would fail with "cached plan must not change result type". */
const CHANGED = "";
/** PostgreSQL's error for a statement whose result type changed since it was prepared (routine included: postgres.js re-prepares on it). */
const CACHED_PLAN_CHANGED = errorResponseOf({
  severity: "ERROR",
  code: "0A000",
  message: "cached plan must not change result type",
  routine: "RevalidateCachedQuery",
});
/** PostgreSQL's error for a Bind or Describe of an unnamed statement that does not exist. */
const UNNAMED_GONE = errorResponseOf({ severity: "ERROR", code: "26000", message: "unnamed prepared statement does not exist" });
/** Where a Bind/Describe of an unnamed statement that is not the client's goes: a name no server has. */
const UNNAMED_GONE_NAME = "pgbun_unnamed_gone";
/** Where a Bind/Describe of a streamed statement goes on a server that does not have it: a name no server has. */
const STREAMED_GONE_NAME = "pgbun_streamed_gone";
/** What resolve() returns for a streamed statement this server does not have. */
const STREAMED_GONE = "\u0000gone";
/** Numbers the keys of streamed statements: each is its own (no text to share it by). */
let streamedSeq = 0;
/** Error classes at Execute that may mean a shared statement no longer fits the schema (feature, statement, syntax/access). */
const STALE_CLASSES = new Set(["0A", "26", "42"]);

/** The text between from and to; "" costs nothing, and a Buffer (every read buffer) is read without a view. */
function textOf(buf: Uint8Array, from: number, to: number): string {
  if (from >= to) return "";
  return Buffer.isBuffer(buf) ? buf.toString("utf8", from, to) : decoder.decode(buf.subarray(from, to));
}

/** The statement name nameOf() last decoded: every client of an application binds the same few names. */
let lastName = "";

/**
 * A statement name in a Bind or Describe: the last one decoded when the bytes are its characters (ASCII only: then
 * they decode to exactly those), so a Bind of the same name as the one before needs no new string (nor hashing it).
 */
function nameOf(buf: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (n <= 0) return "";
  const last = lastName;
  if (last.length === n) {
    let i = 0;
    for (; i < n; i++) {
      const c = buf[from + i]!;
      if (c >= 0x80 || c !== last.charCodeAt(i)) break;
    }
    if (i === n) return last;
  }
  return (lastName = textOf(buf, from, to));
}

/**
 * Each client keeps its statement names; each server keeps statements under pgbun's names (`pgbun_N`), shared by
 * every client of the pool with the same query text and parameter types as long as they have the same shape
 * (parameter types and result columns, learned with a Describe after each Parse pgbun makes).
 *
 * A client's Parse is always parsed on the server, so it gets what its own Parse would give after any schema
 * change. A Bind or Describe that lands on a server whose statement has the client's shape uses it; where the server
 * has none, pgbun parses one (with the parameter types the client's statement resolved) and holds the message until
 * the server has described it: the same shape goes on, another one is answered as PostgreSQL answers the client's own
 * statement after such a change ("cached plan must not change result type"). Nothing is ever retried unseen.
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
      const onClient: typeof api.onClientMessage = (type, fn) => api.onClientMessage(type, fn, { stage: Stage.Rewrite });
      // Server-side taps place answers for requests of the extended protocol (and FunctionCall), which a client
      // of simple Queries never sends (it gets no state: see knownState): for it, RowDescription and CommandComplete
      // pass unseen (TapOptions.extendedQuery).
      const onServer: typeof api.onServerMessage = (type, fn, o) => api.onServerMessage(type, fn, { ...o, extendedQuery: true });
      const max = () => api.config.settings.max_prepared_statements;

      /**
       * Links a free server now, if there is one (none is waited for): the message goes on in this pass, where
       * Action.WaitForServer would have run all its taps again once linked. False when none is free (or the link failed).
       */
      const linkIfFree = (ctx: MessageContext): boolean => {
        const client = ctx.client;
        const idle = client.state === "active" ? api.hooks.peekServer.call(client) : undefined;
        if (!idle) return false;
        client.linkServer(idle);
        return ctx.server !== null;
      };

      /** An answer owed to the client: now if nothing is in flight, else when the requests before it are answered. */
      const owe = (ctx: MessageContext, st: ClientStatements, kind: ReqKind, name?: string) => {
        if (st.queue.length === 0) ctx.sendToClient(kind === Req.SynParse ? Prebuilt.ParseComplete : Prebuilt.CloseComplete);
        else st.queue.push(kind, undefined, name);
      };

      /** Closes what was forgotten after errors, and the least recently used statements beyond the limit. */
      const makeRoom = (ctx: MessageContext, st: ClientStatements, srv: ServerStatements) => {
        for (const name of srv.forgotten) {
          ctx.sendToServer(closeStatement(name));
          st.queue.push(Req.IntClose);
        }
        srv.forgotten.length = 0;
        const limit = max();
        while (limit > 0 && srv.names.size >= limit) {
          const [oldKey, old] = srv.names.entries().next().value as [string, ServerStatement];
          srv.names.delete(oldKey);
          ctx.sendToServer(closeStatement(old.name));
          st.queue.push(Req.IntClose);
        }
      };

      /**
       * A new statement of pgbun's on the linked server for `key`, replacing the one it had, and its Parse (not
       * sent: the caller sends it, with describe() after it).
       */
      const newStatement = (ctx: MessageContext, st: ClientStatements, key: string): ServerStatement => {
        const srv = serverState(ctx.server!);
        const old = srv.names.get(key);
        if (old !== undefined) {
          srv.names.delete(key);
          ctx.sendToServer(closeStatement(old.name));
          st.queue.push(Req.IntClose);
        }
        makeRoom(ctx, st, srv);
        const stmt: ServerStatement = { name: `pgbun_${++srv.seq}`, key, paramOids: null, shape: null, failed: false };
        srv.names.set(key, stmt);
        srv.newest = stmt;
        return stmt;
      };

      /** The Describe that learns a new statement's shape (its answers are swallowed). */
      const describe = (st: ClientStatements, stmt: ServerStatement): Buffer => {
        st.queue.push(Req.IntDescribe, undefined, undefined, stmt);
        return describeStatement(stmt.name);
      };

      /** Parses a statement of pgbun's for `cs` on the linked server and describes it; `types`: its parameter types. */
      const parseOnServer = (ctx: MessageContext, st: ClientStatements, cs: ClientStatement, types: readonly number[]): ServerStatement => {
        const stmt = newStatement(ctx, st, cs.key);
        ctx.sendToServer(parseMessage(stmt.name, cs.query, types));
        st.queue.push(Req.IntParse, undefined, undefined, stmt);
        ctx.sendToServer(describe(st, stmt));
        return stmt;
      };

      /**
       * The server statement a Bind or Describe of `cs` goes to on the linked server: its name; CHANGED when the
       * client's statement would fail as PostgreSQL fails a statement whose result type changed; HOLD when pgbun
       * has just sent a Parse and Describe and the message must wait for the answer (then resolve() runs again).
       */
      const resolve = (ctx: MessageContext, st: ClientStatements, cs: ClientStatement): string | typeof HOLD => {
        const own = cs.own;
        if (cs.streamed) return own !== null && serverState(ctx.server!).names.get(cs.key) === own ? own.name : STREAMED_GONE;
        const held = st.held;
        if (held !== null) {
          // the statement parsed for this message has been described (or failed, and the server skips to the Sync)
          st.held = null;
          if (held.failed || held.shape === own!.shape) return held.name;
          return CHANGED;
        }
        const srv = serverState(ctx.server!);
        const stmt = srv.names.get(cs.key);
        if (stmt !== undefined && (stmt === own || (own !== null && own.shape !== null && stmt.shape === own.shape))) {
          // to the end of the LRU order, unless it is there: the last set() of the map (every set() moves `newest`)
          if (srv.newest !== stmt) {
            srv.names.delete(cs.key);
            srv.names.set(cs.key, stmt);
            srv.newest = stmt;
          }
          return stmt.name;
        }
        if (own === null || own.shape === null || own.paramOids === null) {
          // never parsed for real (its Parse was answered while no server was free): this is its Parse
          cs.own = parseOnServer(ctx, st, cs, cs.paramTypes);
          return cs.own.name;
        }
        // parsed elsewhere, and this server has no statement of its shape: parse one as the client's statement
        // would be re-planned (its parameter types fixed), and look at it before binding
        st.held = parseOnServer(ctx, st, cs, own.paramOids);
        ctx.sendToServer(Prebuilt.Flush);
        return HOLD;
      };

      /** Forgets the statements bound since the last ReadyForQuery on this server (an error may mean they are stale). */
      const forgetBound = (st: ClientStatements, srv: ServerStatements) => {
        for (const key of st.bound) {
          const stmt = srv.names.get(key);
          if (stmt === undefined) continue;
          srv.names.delete(key);
          srv.forgotten.push(stmt.name);
        }
        st.bound.length = 0;
      };

      onClient(Frontend.Parse, (ctx): MessageResult => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        if (ctx.buf[ctx.start + 5] === 0) {
          // unnamed statement: passes through untouched, and is this client's on this server from now on
          st.queue.pushPlain(Req.Parse);
          st.unnamedHere = true;
          return undefined;
        }
        if (ctx.partial) return streamedParse(ctx, st);
        const p = decodeParse(ctx);
        if (st.byName.has(p.name)) {
          // PostgreSQL refuses a name in use (42P05) and skips to the Sync: a Parse that fails on the server keeps
          // that order and rolls back the implicit transaction as PostgreSQL would; its error is renamed below
          if (ctx.server === null) return Action.WaitForServer;
          st.queue.push(Req.IntDuplicate, undefined, p.name);
          return parseMessage("pgbun_duplicate", "pgbun: prepared statement already exists", []);
        }
        // shared copies: every client of an application prepares the same texts under the same names
        const query = shared(p.query);
        const key = p.paramTypes.length > 0 ? shared(`${query}\u0000${p.paramTypes.join(",")}`) : query;
        const cs: ClientStatement = { query, paramTypes: sharedTypes(p.paramTypes), key, own: null };
        st.byName.set(shared(p.name), cs);
        if (ctx.server === null && !linkIfFree(ctx)) {
          // no server is free: the statement is parsed where its first Bind/Describe lands, so a client that
          // prepares synchronously (pgbench -M prepared) never waits for a server it does not use; a syntax
          // error then surfaces at that first use
          owe(ctx, st, Req.SynParse, p.name);
          return Action.Drop;
        }
        // the client's own Parse is parsed for real: after DDL it must give what PostgreSQL gives a new statement
        const stmt = newStatement(ctx, st, key);
        cs.own = stmt;
        st.queue.push(Req.Parse, undefined, p.name, stmt);
        ctx.appendAfter(describe(st, stmt));
        return parseMessage(stmt.name, p.query, p.paramTypes);
      });

      /**
       * A named Parse too long to hold (ctx.partial): renamed in its prefix, its text streams on unseen and unkept.
       * The statement is this server's only (see ClientStatement.streamed); it waits for a server rather than be
       * answered early, as there is no text to parse later.
       */
      const streamedParse = (ctx: MessageContext, st: ClientStatements): MessageResult => {
        const { buf, start, end } = ctx;
        const nameEnd = cstringEnd(buf, start + 5, end);
        // a name longer than the prefix: PostgreSQL cuts it to 63 bytes, so it cannot be one of pgbun's names
        if (nameEnd === end) return undefined;
        if (ctx.server === null && !linkIfFree(ctx)) return Action.WaitForServer;
        const name = textOf(buf, start + 5, nameEnd);
        if (st.byName.has(name)) {
          // fails on the server whatever its text: reported as 42P05, as for a short one
          st.queue.push(Req.IntDuplicate, undefined, name);
          return renameParsePrefix(buf, start, end, ctx.length, nameEnd, "pgbun_duplicate", "pgbun: prepared statement already exists ");
        }
        const key = `\u0000streamed ${++streamedSeq}`;
        const cs: ClientStatement = { query: "", paramTypes: [], key, own: null, streamed: true };
        st.byName.set(shared(name), cs);
        const stmt = newStatement(ctx, st, key);
        cs.own = stmt;
        st.queue.push(Req.Parse, undefined, name, stmt);
        ctx.appendAfter(describe(st, stmt));
        return renameParsePrefix(buf, start, end, ctx.length, nameEnd, stmt.name);
      };

      /** A Bind/Describe of a streamed statement its server no longer has: fails there; the client's name goes. */
      const streamedGone = (st: ClientStatements, name: string): void => {
        st.byName.delete(name);
        st.queue.push(Req.IntStreamedGone, undefined, name);
      };

      onClient(Frontend.Bind, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        const { buf, start, end } = ctx;
        const portalEnd = buf[start + 5] === 0 ? start + 5 : cstringEnd(buf, start + 5, end);
        // the unnamed statement (its name is one byte 0), parsed by this client here: passes as it is
        if (buf[portalEnd + 1] === 0 && st.unnamedHere) {
          st.queue.pushPlain(Req.Bind);
          return undefined;
        }
        const nameEnd = cstringEnd(buf, portalEnd + 1, end);
        const name = nameOf(buf, portalEnd + 1, nameEnd);
        if (name === "" && !st.unnamedHere) {
          st.queue.push(Req.IntUnnamedGone);
          return rebind(buf, start, end, portalEnd, nameEnd, UNNAMED_GONE_NAME);
        }
        const cs = name === "" ? undefined : st.byName.get(name);
        if (cs === undefined) {
          st.queue.pushPlain(Req.Bind);
          // unknown names must not reach pgbun's own statements on the server
          return name.startsWith("pgbun_") ? rebind(buf, start, end, portalEnd, nameEnd, `${name}_unknown`) : undefined;
        }
        if (ctx.server === null && !linkIfFree(ctx)) return Action.WaitForServer;
        const target = resolve(ctx, st, cs);
        if (target === HOLD) return Action.Hold;
        if (target === STREAMED_GONE) {
          streamedGone(st, name);
          return rebind(buf, start, end, portalEnd, nameEnd, STREAMED_GONE_NAME);
        }
        st.bound.push(cs.key);
        st.queue.push(target === CHANGED ? Req.IntChanged : Req.Bind);
        return rebind(buf, start, end, portalEnd, nameEnd, target === CHANGED ? CHANGED_NAME : target);
      });

      onClient(Frontend.Describe, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const st = clientState(ctx.client);
        // 'S' statement or 'P' portal, then the name: a portal's passes as it is, unread
        if (ctx.buf[ctx.start + 5] === 0x50) {
          st.queue.pushPlain(Req.DescribePortal);
          return undefined;
        }
        const ofStatement = ctx.buf[ctx.start + 5] === 0x53;
        const targetName = nameOf(ctx.buf, ctx.start + 6, cstringEnd(ctx.buf, ctx.start + 6, ctx.end));
        if (ofStatement && targetName === "" && !st.unnamedHere) {
          st.queue.push(Req.IntUnnamedGone);
          return describeStatement(UNNAMED_GONE_NAME);
        }
        const cs = ofStatement && targetName !== "" ? st.byName.get(targetName) : undefined;
        if (cs === undefined) {
          st.queue.pushPlain(ofStatement ? Req.DescribeStatement : Req.DescribePortal);
          return ofStatement && targetName.startsWith("pgbun_") ? describeStatement(`${targetName}_unknown`) : undefined;
        }
        if (ctx.server === null && !linkIfFree(ctx)) return Action.WaitForServer;
        const target = resolve(ctx, st, cs);
        if (target === HOLD) return Action.Hold;
        if (target === STREAMED_GONE) {
          streamedGone(st, targetName);
          return describeStatement(STREAMED_GONE_NAME);
        }
        st.bound.push(cs.key);
        if (target === CHANGED) {
          st.queue.push(Req.IntChangedDescribe, undefined, undefined, cs.own!);
          return describeStatement(CHANGED_NAME);
        }
        st.queue.pushPlain(Req.DescribeStatement);
        return describeStatement(target);
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
        st.queue.pushPlain(Req.Close);
        return undefined;
      });

      const track = (kind: ReqKind) => (ctx: MessageContext): MessageResult => {
        if (pooled(ctx)) clientState(ctx.client).queue.pushPlain(kind);
        return undefined;
      };
      onClient(Frontend.Execute, track(Req.Execute));
      onClient(Frontend.Sync, (ctx) => {
        if (!pooled(ctx)) return undefined;
        const client = ctx.client;
        if (ctx.server === null && client.state === "active" && client.inSync) {
          // nothing is outstanding and no transaction is open: answer the Sync here
          ctx.sendToClient(Prebuilt.ReadyForQueryIdle);
          return Action.Drop;
        }
        clientState(client).queue.pushPlain(Req.Sync);
        return undefined;
      });
      onClient(Frontend.FunctionCall, track(Req.Query));
      onClient(Frontend.Query, (ctx) => {
        if (!pooled(ctx)) return undefined;
        // a client that never used the extended protocol has no state, and gets none for a Query (see clientState)
        const st = knownState(ctx.client);
        let i = ctx.start + 5;
        while (ctx.buf[i] === 0x20 || ctx.buf[i] === 0x0a || ctx.buf[i] === 0x09) i++;
        const first = ctx.buf[i]! | 0x20;
        if (first === 0x64 /* d */ && DEALLOCATES_ALL.test(decodeQuery(ctx))) {
          if (ctx.server === null) return Action.WaitForServer;
          st?.byName.clear();
          const srv = serverState(ctx.server);
          srv.names.clear();
          srv.newest = null;
          srv.forgotten.length = 0;
        }
        st?.queue.pushPlain(Req.Query);
        return undefined;
      });

      // ---- responses ----

      /** Sends the answers owed at the head of the queue right after the current message (forwarded or dropped). */
      const settle = (ctx: MessageContext, st: ClientStatements, forward: boolean): MessageResult => {
        // owed answers are never in the packed run of plain requests: with nothing else queued there are none
        if (st.queue.rich() !== 0) {
          for (let head = st.queue.peek(); head !== undefined && (head.kind === Req.SynParse || head.kind === Req.SynClose); head = st.queue.peek()) {
            ctx.appendAfter(head.kind === Req.SynParse ? Prebuilt.ParseComplete : Prebuilt.CloseComplete);
            st.queue.shift();
          }
        }
        return forward ? undefined : Action.Drop;
      };

      /**
       * Completes the request at the head when it is the client's `plain` kind (forwarded) or pgbun's `own` (0: none;
       * swallowed). A plain request at the head of the packed run with nothing else queued is the whole work.
       */
      const complete = (plain: ReqKind, own: ReqKind | 0) => (ctx: MessageContext): MessageResult => {
        const st = knownState(ctx.client);
        if (st === undefined || !pooled(ctx)) return undefined;
        const q = st.queue;
        if (q.shiftPlain(plain)) return settle(ctx, st, true);
        const kind = q.headKind();
        if (kind !== plain && (own === 0 || kind !== own)) return undefined;
        q.shift();
        return settle(ctx, st, kind === plain);
      };
      onServer(Backend.ParseComplete, complete(Req.Parse, Req.IntParse));
      onServer(Backend.BindComplete, complete(Req.Bind, 0));
      onServer(Backend.CloseComplete, complete(Req.Close, Req.IntClose));
      onServer(Backend.CommandComplete, complete(Req.Execute, 0));
      onServer(Backend.EmptyQueryResponse, complete(Req.Execute, 0));
      onServer(Backend.PortalSuspended, complete(Req.Execute, 0));

      /** ParameterDescription: part of a Describe's answer; pgbun's own Describe is read and swallowed. */
      onServer(Backend.ParameterDescription, (ctx) => {
        const st = knownState(ctx.client);
        if (st === undefined || !pooled(ctx) || st.queue.headKind() !== Req.IntDescribe) return undefined;
        const head = st.queue.peek()!;
        head.stmt!.paramOids = sharedTypes(parameterTypes(ctx.buf, ctx.start));
        return Action.Drop;
      });

      /** RowDescription or NoData: ends a Describe; pgbun's own gives the statement its shape. */
      const described = (ctx: MessageContext): MessageResult => {
        const st = knownState(ctx.client);
        if (st === undefined || !pooled(ctx)) return undefined;
        const q = st.queue;
        if (q.shiftPlain(Req.DescribePortal) || q.shiftPlain(Req.DescribeStatement)) return settle(ctx, st, true);
        const head = q.peek();
        if (head === undefined) return undefined;
        if (head.kind === Req.DescribeStatement || head.kind === Req.DescribePortal) {
          st.queue.shift();
          return settle(ctx, st, true);
        }
        if (head.kind !== Req.IntDescribe) return undefined;
        st.queue.shift();
        const stmt = head.stmt!;
        stmt.shape = shared(shapeOf(stmt.paramOids ?? [], ctx.buf, ctx.start, ctx.end));
        if (st.held === stmt) ctx.client.resumeInput();
        return settle(ctx, st, false);
      };
      onServer(Backend.RowDescription, described);
      onServer(Backend.NoData, described);

      onServer(Backend.ReadyForQuery, (ctx) => {
        // first and cheapest: a client of simple Queries only (pgbench -M simple) has no state, nothing to place
        const st = knownState(ctx.client);
        if (st === undefined || !pooled(ctx)) return undefined;
        if (st.bound.length !== 0) st.bound.length = 0;
        // defensive: anything before the Sync/Query this answers was skipped by the server
        const q = st.queue;
        for (let kind = q.headKind(); kind !== 0; kind = q.headKind()) {
          q.shift();
          if (kind === Req.Sync || kind === Req.Query) break;
        }
        return settle(ctx, st, true);
      }, { stage: Stage.PreparedObserve }); // first: it only observes (owed answers go out after the ReadyForQuery)

      onServer(Backend.ErrorResponse, (ctx) => {
        if (!pooled(ctx) || ctx.server === null) return undefined;
        const st = knownState(ctx.client);
        if (st === undefined) return undefined;
        const head = st.queue.peek();
        if (head === undefined || head.kind === Req.Query) return undefined;
        const srv = serverState(ctx.server);
        let replacement: MessageResult = undefined;
        if (head.kind === Req.IntDuplicate) replacement = errorResponse("42P05", `prepared statement "${head.name}" already exists`);
        else if (head.kind === Req.IntChanged) replacement = CACHED_PLAN_CHANGED;
        else if (head.kind === Req.IntChangedDescribe) replacement = Buffer.concat([parameterDescription(head.stmt!.paramOids ?? []), CACHED_PLAN_CHANGED]);
        else if (head.kind === Req.IntUnnamedGone) replacement = UNNAMED_GONE;
        else if (head.kind === Req.IntStreamedGone) {
          replacement = errorResponse(
            "26000",
            `prepared statement "${head.name}" does not exist`,
            "ERROR",
            "Its text is over 1 MB: pgbun:prepared-statements keeps no copy of it, so it exists only on the server connection it was prepared on. Prepare it again.",
          );
        }
        // an error about a shared statement may mean it no longer fits the schema: forget it on this server
        if (head.kind !== Req.Execute || STALE_CLASSES.has(decodeError(ctx.buf, ctx.start, ctx.end).code.slice(0, 2))) forgetBound(st, srv);
        // the server skips everything up to the next Sync: nothing it skipped was prepared or answered
        for (let p = st.queue.peek(); p !== undefined && p.kind !== Req.Sync; p = st.queue.peek()) {
          st.queue.shift();
          const stmt = p.stmt;
          if (stmt !== undefined && (p.kind === Req.Parse || p.kind === Req.IntParse)) {
            stmt.failed = true;
            if (srv.names.get(stmt.key) === stmt) srv.names.delete(stmt.key);
          }
          // a named Parse the server failed or skipped created nothing: the client's name goes too
          if ((p.kind === Req.Parse || p.kind === Req.SynParse) && p.name !== undefined) st.byName.delete(p.name);
        }
        // a held message waits for a Describe the server now skips: let it go on (the server skips it too)
        if (st.held !== null) ctx.client.resumeInput();
        return replacement;
      });

      // a server reset (server_reset_query, DISCARD ALL) drops every statement on it
      api.hooks.serverReset.tap(NAME, (server) => {
        const srv = serverState(server);
        srv.names.clear();
        srv.newest = null;
        srv.forgotten.length = 0;
      });
      // the next server's unnamed statement is not this client's until it parses one there
      api.hooks.serverReleased.tap({ name: NAME, stage: Stage.PreparedRelease }, (_server, client) => {
        const st = client === null ? undefined : (client.data[NAME] as ClientStatements | undefined);
        if (st !== undefined) st.unnamedHere = false;
        return undefined;
      });
      api.hooks.serverLinked.tap(NAME, (client) => {
        // a fresh link starts with nothing in flight; a client with no state yet (session mode, or no message
        // seen) is given none here: it is made on first use
        const st = client.data[NAME] as ClientStatements | undefined;
        if (st !== undefined && client.inSync) {
          st.queue.clear();
          st.held = null;
          if (st.bound.length !== 0) st.bound.length = 0;
        }
      });
    },
  };
}
