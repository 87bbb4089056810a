// The counting taps: synchronous, no allocation per message, the clock read only at query/transaction boundaries.
import { Backend, Frontend, Stage, TxStatus, type Client, type MessageContext, type MessageResult, type PluginApi } from "../../plugin-sdk/index.ts";
import { PLUGIN_NAME } from "./api.ts";
import { ClientCounters, settleBytes, type StatsRegistry } from "./counters.ts";
import { bucketOf, KINDS, QUERY, WAIT, XACT } from "./histogram.ts";

/**
 * The taps' clock: monotonic nanoseconds. Bun.nanoseconds() costs a quarter of performance.now()'s instructions
 * (callgrind: 17 against 65 Ir a call), and it runs twice per transaction.
 */
export const clockNs = (): number => Bun.nanoseconds();

/** Observers that must see every message run first; marks for forwarded queries run after every other tap. */
const FIRST = { stage: Stage.Observe };
const LAST = { stage: Stage.ObserveLast };

export interface CounterTaps {
  countersOf(client: Client): ClientCounters | undefined;
  /** Starts a client's wait clock (if not running): it waits for a server. */
  markWaiting(client: Client): void;
  refreshBytes(): void;
}

/**
 * Query/Sync/FunctionCall (forwarded, so tapped last) mark the start of a query and of a transaction;
 * ReadyForQuery from the server ends the query, and with status 'I' the transaction, as PgBouncer counts.
 * Bytes are sampled from the connections' byte counts when a server is linked and when it is released or closed.
 */
export function tapCounters(api: PluginApi, stats: StatsRegistry): CounterTaps {
  /**
   * The client looked up last and its counters: a transaction's messages, its link and its release come in runs of
   * one client, so most lookups are one compare instead of the client's data object and a class test. Forgotten when
   * that client closes.
   */
  let lastClient: Client | null = null;
  let lastCounters: ClientCounters | null = null;
  /** A pooled client's counters, made on first use (never for virtual clients: the console serves those). */
  const countersOf = (c: Client): ClientCounters => {
    if (c === lastClient) return lastCounters!;
    const found = c.data[PLUGIN_NAME];
    const st = found instanceof ClientCounters ? found : (c.data[PLUGIN_NAME] = new ClientCounters(c, stats.forPool(c.database, c.user)));
    lastClient = c;
    lastCounters = st;
    return st;
  };
  const existing = (c: Client): ClientCounters | undefined => {
    const st = c.data[PLUGIN_NAME];
    return st instanceof ClientCounters ? st : undefined;
  };

  const markQuery = (ctx: MessageContext): MessageResult => {
    const client = ctx.client;
    if (client.virtual) return undefined;
    const st = countersOf(client);
    if (st.queryStart === 0) {
      const t = clockNs();
      st.queryStart = t;
      if (st.xactStart === 0) st.xactStart = t;
    }
    return undefined;
  };
  api.onClientMessage(Frontend.Query, markQuery, LAST);
  api.onClientMessage(Frontend.Sync, markQuery, LAST);
  api.onClientMessage(Frontend.FunctionCall, markQuery, LAST);

  // after the console's tap (Stage.Console), which takes its own clients' messages
  const COUNT = { stage: Stage.ObserveTiming };
  api.onClientMessage(
    Frontend.Parse,
    (ctx) => {
      if (!ctx.client.virtual && !ctx.resumed) countersOf(ctx.client).pool.clientParses++;
      return undefined;
    },
    COUNT,
  );
  api.onClientMessage(
    Frontend.Bind,
    (ctx) => {
      if (!ctx.client.virtual && !ctx.resumed) countersOf(ctx.client).pool.binds++;
      return undefined;
    },
    COUNT,
  );

  api.onServerMessage(
    Backend.ReadyForQuery,
    (ctx) => {
      const client = ctx.client;
      const st = countersOf(client);
      const p = st.pool;
      const ended = ctx.buf[ctx.start + 5] === TxStatus.Idle;
      const queryStart = st.queryStart;
      const xactStart = ended ? st.xactStart : 0;
      p.queries++;
      if (ended) p.xacts++;
      // each query and transaction counted lands in one bucket (an untimed one in the first, without a search), so
      // the histograms' counts are the counters
      if (queryStart === 0 && xactStart === 0) {
        const b = p.buckets;
        b[QUERY]!++;
        if (ended) b[XACT]!++;
        return undefined;
      }
      // one clock read ends both; pipelined queries: the next one's time runs from this answer
      const now = clockNs();
      const next = client.rfqPending > 0 ? now : 0;
      let slot = 0;
      if (queryStart > 0) {
        const us = (now - queryStart) / 1000;
        p.queryTime += us;
        st.queryStart = next;
        slot = bucketOf(us);
      }
      const b = p.buckets;
      b[slot * KINDS + QUERY]!++;
      if (ended) {
        slot = 0;
        if (xactStart > 0) {
          const us = (now - xactStart) / 1000;
          p.xactTime += us;
          st.xactStart = next;
          slot = bucketOf(us);
        }
        b[slot * KINDS + XACT]!++;
      }
      return undefined;
    },
    FIRST,
  );
  api.onServerMessage(
    Backend.ParseComplete,
    (ctx) => {
      countersOf(ctx.client).pool.serverParses++;
      return undefined;
    },
    { ...FIRST, extendedQuery: true }, // only ever answers a Parse
  );

  const h = api.hooks;
  const markWaiting = (client: Client): void => {
    const st = countersOf(client);
    // a client waits only between transactions, so a query mark is this transaction's, made by the message
    // that asks for the server a moment ago in the same event: the wait starts there, without a clock read
    if (st.waitStart === 0) st.waitStart = st.queryStart !== 0 ? st.queryStart : clockNs();
  };
  // runs only when the pool queued the client (a server handed out bails before it)
  h.needServer.tap({ name: PLUGIN_NAME, ...LAST }, (client) => {
    markWaiting(client);
    return undefined;
  });
  // last, so a login another tap refused is not counted; once per login, never per message
  h.authenticated.tap({ name: PLUGIN_NAME, ...LAST }, (client) => {
    // the pool's counters, not the client's (made on its first query): an idle client costs no more
    if (!client.virtual) stats.forPool(client.database, client.user).clientLogins++;
    return undefined;
  });
  h.serverLinked.tap({ name: PLUGIN_NAME, ...FIRST }, (client, server) => {
    if (client.virtual) return;
    const st = countersOf(client);
    settleBytes(st, false);
    st.pool.serverAssignments++;
    let waitUs = 0;
    if (st.waitStart > 0) {
      const now = clockNs();
      waitUs = (now - st.waitStart) / 1000;
      st.pool.waitTime += waitUs;
      st.waitStart = 0;
      // query and transaction time count while connected to a server, not the wait for one
      if (st.queryStart > 0) st.queryStart = now;
      if (st.xactStart > 0) st.xactStart = now;
    }
    // a server that was free is a wait of 0 (the first slot, no search): every assignment is in the histogram
    st.pool.buckets[(waitUs === 0 ? 0 : bucketOf(waitUs)) * KINDS + WAIT]!++;
    st.linked = server;
    st.serverSent0 = server.bytesSent;
    st.clientSent0 = client.bytesSent;
    server.data[PLUGIN_NAME] = st;
  });
  h.serverReleased.tap({ name: PLUGIN_NAME, ...FIRST }, (_server, client) => {
    // client is null when a cancelled server comes back (api.cancelFinished)
    const st = !client ? undefined : client === lastClient ? lastCounters! : existing(client);
    if (st) settleBytes(st, false);
    return undefined;
  });
  h.serverClosed.tap({ name: PLUGIN_NAME, ...FIRST }, (server) => {
    const st = server.data[PLUGIN_NAME];
    if (st instanceof ClientCounters && st.linked === server) settleBytes(st, false);
  });
  h.clientClosed.tap({ name: PLUGIN_NAME, ...FIRST }, (client) => {
    const st = existing(client);
    if (st) settleBytes(st, false);
    if (client === lastClient) lastClient = lastCounters = null;
  });

  return {
    countersOf: existing,
    markWaiting,
    refreshBytes() {
      for (const c of api.clients()) {
        const st = existing(c);
        if (st && st.linked) settleBytes(st, true);
      }
    },
  };
}
