// Unit tests of the SDK's hook-level test helpers (plugin-sdk/testing.ts): the fakes behave as the core's connections.
import { describe, expect, test } from "bun:test";
import {
  Action,
  Backend,
  commandComplete,
  decodeError,
  decodeQuery,
  errorResponse,
  Frontend,
  parameterStatus,
  Prebuilt,
  query,
  readyForQuery,
  SqlState,
  Stage,
  TxStatus,
  type PgbunPlugin,
  type Server,
} from "../../plugin-sdk/index.ts";
import {
  answerInternal,
  applyPlugin,
  fakeClient,
  fakeServer,
  runClientMessage,
  runClientMessages,
  runServerMessage,
  settle,
  testApi,
} from "../../plugin-sdk/testing.ts";
import { msg } from "../harness/wire.ts";

/** SQLSTATE and severity of an ErrorResponse. */
function errorOf(b: Buffer): { code: string; severity: string } {
  expect(b[0]).toBe(Backend.ErrorResponse);
  const e = decodeError(b, 0, b.length);
  return { code: e.code, severity: e.severity };
}

describe("fakeClient and fakeServer", () => {
  test("a fake client starts active, idle, in sync, with empty parameter lists and data", () => {
    const c = fakeClient();
    expect(c.state).toBe("active");
    expect(c.txStatus).toBe(TxStatus.Idle);
    expect(c.inSync).toBe(true);
    expect(c.server).toBeNull();
    expect(c.data).toEqual({});
    expect(c.label).toBe(`C-${c.id}`);
    expect(c.params.size).toBe(0);
    c.params.set("TimeZone", "UTC");
    expect(c.param("TimeZone")).toBe("UTC");
    expect(fakeClient().id).not.toBe(c.id);
  });

  test("overrides set fields; parameter lists may be given as plain objects; param() falls back to the welcome values", () => {
    const c = fakeClient({ user: "app", poolMode: "transaction", startupParams: { application_name: "x" }, welcomeParams: { DateStyle: "ISO, MDY", TimeZone: "UTC" }, params: { TimeZone: "Europe/Paris" } });
    expect(c.user).toBe("app");
    expect(c.poolMode).toBe("transaction");
    expect(c.startupParams.get("application_name")).toBe("x");
    expect(c.param("DateStyle")).toBe("ISO, MDY");
    expect(c.param("TimeZone")).toBe("Europe/Paris");
  });

  test("inSync is derived from the counts as the core derives it, unless fixed", () => {
    const c = fakeClient();
    c.rfqPending = 1;
    expect(c.inSync).toBe(false);
    c.rfqPending = 0;
    c.syncPending = true;
    expect(c.inSync).toBe(false);
    c.syncPending = false;
    c.copyIn = true;
    expect(c.inSync).toBe(false);
    c.copyIn = false;
    expect(c.inSync).toBe(true);
    const fixed = fakeClient({ inSync: false });
    expect(fixed.inSync).toBe(false);
    fixed.inSync = null;
    expect(fixed.inSync).toBe(true);
  });

  test("send, fatal and refuse are recorded; fatal sends a FATAL ErrorResponse with its SQLSTATE and closes", () => {
    const c = fakeClient();
    c.send(Prebuilt.ReadyForQueryIdle);
    c.fatal(SqlState.TooManyConnections, "too many");
    expect(c.sent.length).toBe(2);
    expect(c.sent[0]).toEqual(Prebuilt.ReadyForQueryIdle);
    expect(errorOf(c.sent[1]!)).toEqual({ code: "53300", severity: "FATAL" });
    expect(c.fatalError).toEqual({ code: "53300", message: "too many", detail: undefined });
    expect(c.closed).toBe(true);
    expect(c.closedReason).toBe("too many");
    const r = fakeClient();
    const pgError = Buffer.from(Prebuilt.ReadyForQueryFailed); // any bytes: sent as they are
    r.refuse({ code: "28P01", message: "password authentication failed", error: pgError });
    expect(r.sent).toEqual([pgError]);
    expect(r.refusal?.code).toBe("28P01");
    expect(r.closed).toBe(true);
  });

  test("linkServer links both ways, marks the server active and a waiting client active", () => {
    const c = fakeClient({ state: "waiting" });
    const s = fakeServer();
    expect(s.state).toBe("idle");
    c.linkServer(s);
    expect(c.server).toBe(s);
    expect(s.client).toBe(c);
    expect(s.state).toBe("active");
    expect(c.state).toBe("active");
  });

  test("runInternal records { sql, done }; answerInternal answers the oldest, with rows or an error, once it left internal", () => {
    const s = fakeServer();
    const answers: unknown[] = [];
    s.runInternal("DISCARD ALL", (error, rows) => answers.push({ error, rows, pending: s.internalPending, clean: s.isClean() }));
    s.runInternal("SELECT 1", (error, rows) => answers.push({ error, rows, pending: s.internalPending, clean: s.isClean() }));
    expect(s.internalPending).toBe(2);
    expect(s.isClean()).toBe(false);
    expect(s.ran).toEqual(["DISCARD ALL", "SELECT 1"]);
    expect(s.sent.map((b) => decodeQuery({ buf: b, start: 0, end: b.length }))).toEqual(["DISCARD ALL", "SELECT 1"]);
    expect(answerInternal(s, []).sql).toBe("DISCARD ALL");
    expect(answerInternal(s, { code: "42601", message: "syntax error" }).sql).toBe("SELECT 1");
    expect(answers).toEqual([
      { error: null, rows: [], pending: 1, clean: false },
      { error: { code: "42601", message: "syntax error" }, rows: [], pending: 0, clean: true },
    ]);
    expect(() => answerInternal(s, [])).toThrow(/no internal query/);
    // the answer's ReadyForQuery status becomes the server's (Idle unless given)
    const t = fakeServer({ txStatus: TxStatus.InTransaction });
    t.runInternal("ROLLBACK");
    answerInternal(t, []);
    expect(t.txStatus).toBe(TxStatus.Idle);
    t.runInternal("BEGIN");
    answerInternal(t, [], { txStatus: TxStatus.InTransaction });
    expect(t.isClean()).toBe(false);
  });

  test("the state verbs set state; close records its reason and ends a linked client with 08006", () => {
    const s = fakeServer();
    s.markTested();
    expect(s.state).toBe("tested");
    s.markBeingCanceled();
    expect(s.state).toBe("being_canceled");
    s.markIdle();
    expect(s.state).toBe("idle");
    const c = fakeClient();
    c.linkServer(s);
    s.close("lifetime");
    expect(s.state).toBe("closed");
    expect(s.closedReason).toBe("lifetime");
    expect(s.isClean()).toBe(false);
    expect(c.server).toBeNull();
    expect(c.closed).toBe(true);
    expect(errorOf(c.sent.at(-1)!)).toEqual({ code: "08006", severity: "FATAL" });
  });
});

describe("testApi", () => {
  test("the config is the SDK's defaults plus overrides; databases are normalized and '*' is the fallback", () => {
    const t = testApi({ settings: { pool_mode: "transaction" }, databases: { app: { host: "db1,db2", port: 5433, dbname: "real" }, "*": {} } });
    expect(t.api.config.settings.pool_mode).toBe("transaction");
    expect(t.api.config.settings.default_pool_size).toBe(20);
    expect(t.api.defaults.pool_mode).toBe("session");
    const app = t.api.resolveDatabase("app")!;
    expect(app).toEqual({ name: "app", host: ["db1", "db2"], port: 5433, dbname: "real" });
    expect(t.api.resolveDatabase("other")!.name).toBe("*");
    expect(t.api.targetFor(app, "app", "u", 1)).toEqual({ host: "db2", port: 5433, database: "real", user: "u", password: undefined });
    expect(testApi({ databases: { app: {} } }).api.resolveDatabase("other")).toBeNull();
  });

  test("a world's client takes its pool mode and entry from the config, as the core sets them at login", () => {
    const t = testApi({ settings: { pool_mode: "transaction" }, databases: { app: { pool_mode: "statement" }, "*": {} }, users: { admin: { pool_mode: "session" } } });
    expect(t.client().poolMode).toBe("transaction");
    expect(t.client({ database: "app" }).poolMode).toBe("statement");
    expect(t.client({ database: "app", user: "admin" }).poolMode).toBe("session");
    expect(t.client({ database: "app" }).dbEntry?.name).toBe("app");
    expect([...t.api.clients()].length).toBe(4);
    expect(t.api.clientCounts.active).toBe(4);
  });

  test("openServer makes a fake server owned by the caller, after the serverConnected hook; a test may supply its own", async () => {
    const t = testApi();
    const connected: Server[] = [];
    t.hooks.serverConnected.tapPromise("spy", async (s) => void connected.push(s));
    const owner = { pool: 1 };
    const s = await t.api.openServer({ host: "h", port: 1, database: "d", user: "u" }, owner);
    expect(s.pool).toBe(owner);
    expect(s.state).toBe("login");
    expect(s.target.host).toBe("h");
    expect(connected).toEqual([s]);
    expect(t.opened).toEqual([{ target: { host: "h", port: 1, database: "d", user: "u" }, owner }]);
    expect([...t.api.servers()]).toEqual([s]);
    const mine = fakeServer();
    const t2 = testApi({ openServer: () => mine });
    expect(await t2.api.openServer({ host: "h", port: 1, database: "d", user: "u" }, null)).toBe(mine);
    const failing = testApi({ openServer: () => Promise.reject(Object.assign(new Error("down"), { failure: { message: "down", code: "57P03" } })) });
    await expect(failing.api.openServer({ host: "h", port: 1, database: "d", user: "u" }, null)).rejects.toThrow("down");
  });

  test("releaseServer hands a clean server to serverReleased and closes it when nobody takes it, or when it is not clean", () => {
    const t = testApi();
    const taken: unknown[] = [];
    t.hooks.serverReleased.tap("pool", (s, c, reason) => {
      taken.push([s.label, c?.label, reason]);
      return s.data.keep ? true : undefined;
    });
    const c = t.client();
    const kept = t.server({ data: { keep: true } });
    c.linkServer(kept);
    t.api.releaseServer(c, kept, "transaction");
    expect(taken).toEqual([[kept.label, c.label, "transaction"]]);
    expect(c.server).toBeNull();
    expect(kept.client).toBeNull();
    expect(kept.state).not.toBe("closed");
    const dropped = t.server();
    c.linkServer(dropped);
    t.api.releaseServer(c, dropped, "transaction");
    expect(dropped.closedReason).toBe("no pool took the released server");
    const busy = t.server({ data: { keep: true } });
    c.linkServer(busy);
    busy.txStatus = TxStatus.InTransaction;
    t.api.releaseServer(c, busy, "plugin");
    expect(busy.closedReason).toBe("released in an unknown state (plugin)");
    expect(taken.length).toBe(2);
    // a pinned client's server is marked for the pool's reset
    const pinned = t.client({ pinReason: "SET" });
    const s = t.server({ data: { keep: true } });
    pinned.linkServer(s);
    t.api.releaseServer(pinned, s, "transaction");
    expect(s.resetNeeded).toBe(true);
  });

  test("a world's client closing releases its clean server and runs clientClosed; a busy server is closed instead", () => {
    const t = testApi();
    const events: string[] = [];
    t.hooks.clientClosed.tap("spy", (c, reason) => void events.push(`closed ${c.label}: ${reason}`));
    t.hooks.serverReleased.tap("spy", (s, _c, reason) => {
      events.push(`released ${s.label}: ${reason}`);
      return true;
    });
    const c = t.client();
    const s = t.server();
    c.linkServer(s);
    c.close("bye");
    expect(events).toEqual([`released ${s.label}: client-close`, `closed ${c.label}: bye`]);
    const c2 = t.client();
    const s2 = t.server();
    c2.linkServer(s2);
    c2.rfqPending = 1;
    c2.close("gone");
    expect(s2.closedReason).toBe("client closed while the server was busy");
  });

  test("acquireServer links what needServer gives, and leaves the client waiting when it gives nothing", () => {
    const t = testApi();
    const idle: Server[] = [t.server()];
    t.hooks.needServer.tap("pool", () => idle.pop());
    const c1 = t.client();
    expect(t.acquireServer(c1)).not.toBeNull();
    expect(c1.server?.client).toBe(c1);
    const c2 = t.client();
    expect(t.acquireServer(c2)).toBeNull();
    expect(c2.state).toBe("waiting");
    expect(c2.waitStart).toBe(t.now);
    idle.push(t.server());
    t.api.retryAcquire(c2);
    expect(c2.state).toBe("active");
    expect(c2.server).not.toBeNull();
  });

  test("applyPlugin applies under the plugin's name and options; capability and plugins() see it; logs are kept", async () => {
    const plugin: PgbunPlugin = {
      name: "demo",
      provides: ["thing"],
      apply(api) {
        this.api = { hello: () => `hi from ${api.name}` };
        api.log.warn({ n: 1 }, "noted");
        api.onClientMessage("Query", () => undefined);
        api.hooks.tick.tap(api.name, () => {});
      },
    };
    const t = await applyPlugin(plugin, { options: { level: 2 } });
    expect(t.api.name).toBe("demo");
    expect(t.api.options).toEqual({ level: 2 });
    expect(t.api.capability<{ hello(): string }>("thing")!.hello()).toBe("hi from demo");
    expect(t.api.capability("demo")).toBe(plugin.api);
    expect(t.api.capability("nothing")).toBeUndefined();
    expect(t.api.plugins()).toEqual([{ name: "demo", specifier: "demo", provides: ["thing"], options: { level: 2 }, taps: ["tick", "clientMessage:Query"] }]);
    expect(t.logs).toEqual([{ level: "warn", obj: { plugin: "demo", n: 1 }, msg: "noted" }]);
  });

  test("tick and reload run their hooks with the clock and the new config", () => {
    const t = testApi({ now: 1000 });
    const seen: unknown[] = [];
    t.hooks.tick.tap("spy", (now) => void seen.push(now));
    t.hooks.reload.tap("spy", (config) => void seen.push(config.settings.default_pool_size));
    t.tick(5000);
    expect(t.api.now).toBe(5000);
    t.reload({ settings: { default_pool_size: 3 } });
    expect(seen).toEqual([5000, 3]);
    expect(t.api.config.settings.default_pool_size).toBe(3);
  });
});

describe("runClientMessage and runServerMessage", () => {
  /** A plugin that answers `SELECT 'pong'` itself, and appends a Flush after every Sync. */
  const answering: PgbunPlugin = {
    name: "answering",
    apply(api) {
      api.onClientMessage("Query", (ctx) => {
        if (decodeQuery(ctx) !== "SELECT 'pong'") return undefined;
        ctx.sendToClient(commandComplete("PONG"));
        ctx.sendToClient(readyForQuery(ctx.client.txStatus));
        return Action.Drop;
      }, { stage: Stage.Answer });
      api.onClientMessage("Sync", (ctx) => void ctx.appendAfter(Prebuilt.Flush));
    },
  };

  test("a message no tap takes is forwarded to the client's server, and a Query counts one ReadyForQuery owed", async () => {
    const t = await applyPlugin(answering);
    const c = t.client();
    const s = t.server();
    c.linkServer(s);
    const r = runClientMessage(t, c, query("SELECT 1"));
    expect(r.result).toBeUndefined();
    expect(r.forwarded).toEqual(query("SELECT 1"));
    expect(s.sent).toEqual([query("SELECT 1")]);
    expect(c.rfqPending).toBe(1);
    expect(c.inSync).toBe(false);
  });

  test("a tap's answer: the result, what it sent the client, and nothing forwarded", async () => {
    const t = await applyPlugin(answering);
    const c = t.client();
    const r = runClientMessage(t, c, query("SELECT 'pong'"));
    expect(r.result).toBe(Action.Drop);
    expect(r.forwarded.length).toBe(0);
    expect(r.sentToClient).toEqual([commandComplete("PONG"), Prebuilt.ReadyForQueryIdle]);
    expect(c.sent).toEqual(r.sentToClient);
    expect(c.rfqPending).toBe(0);
  });

  test("a virtualClients tap runs for a virtual client's message only, as in the core", async () => {
    const seen: string[] = [];
    const t = await applyPlugin({
      name: "console-like",
      apply(api) {
        api.onClientMessage("Query", (ctx) => (seen.push(ctx.client.virtual ? "virtual" : "pooled"), Action.Drop), { virtualClients: true });
        api.onClientMessage("Query", () => void seen.push("everyone"));
      },
    });
    const pooled = t.client();
    pooled.linkServer(t.server());
    expect(runClientMessage(t, pooled, query("SELECT 1")).result).toBeUndefined();
    const console = t.client({ virtual: true });
    expect(runClientMessage(t, console, query("SHOW VERSION")).result).toBe(Action.Drop);
    expect(seen).toEqual(["everyone", "virtual"]);
  });

  test("appendAfter goes after the message, and is counted with it", async () => {
    const t = await applyPlugin(answering);
    const c = t.client();
    const r = runClientMessage(t, c, msg.sync());
    expect(r.appended).toEqual([Prebuilt.Flush]);
    expect(r.forwarded).toEqual(Buffer.concat([msg.sync(), Prebuilt.Flush]));
    expect(c.rfqPending).toBe(1);
    expect(c.syncPending).toBe(true);
  });

  test("the message sits at a non-zero start of a larger buffer that is overwritten after the call", async () => {
    const seen: Array<{ start: number; firstByte: number }> = [];
    let kept: Uint8Array | null = null;
    const t = await applyPlugin({
      name: "keeper",
      apply(api) {
        api.onClientMessage("Query", (ctx) => {
          seen.push({ start: ctx.start, firstByte: ctx.buf[ctx.start]! });
          kept = ctx.bytes();
          return undefined;
        });
      },
    });
    runClientMessage(t, t.client(), query("SELECT 1"));
    expect(seen[0]!.start).toBeGreaterThan(0);
    expect(seen[0]!.firstByte).toBe(Frontend.Query);
    expect(Buffer.from(kept!)).not.toEqual(query("SELECT 1"));
  });

  test("replacement bytes are copied and forwarded in place of the message", async () => {
    const t = await applyPlugin({ name: "rewrite", apply: (api) => api.onClientMessage("Query", () => query("SELECT 2")) });
    const c = t.client();
    const s = t.server();
    c.linkServer(s);
    const r = runClientMessage(t, c, query("SELECT 1"));
    expect(r.result).toEqual(query("SELECT 2"));
    expect(s.sent).toEqual([query("SELECT 2")]);
  });

  test("WaitForServer is returned, not acted on; one message per run; runClientMessages runs a pipeline", async () => {
    const types: number[] = [];
    const t = await applyPlugin({
      name: "waits",
      apply(api) {
        api.onClientMessage("Bind", (ctx) => (ctx.server === null && !ctx.resumed ? Action.WaitForServer : undefined));
        for (const type of ["Parse", "Bind", "Execute", "Sync"] as const) api.onClientMessage(type, (ctx) => void types.push(ctx.type), { stage: Stage.Observe });
      },
    });
    const c = t.client();
    const r = runClientMessage(t, c, msg.bind("", "s"));
    expect(r.result).toBe(Action.WaitForServer);
    expect(r.forwarded.length).toBe(0);
    expect(runClientMessage(t, c, msg.bind("", "s"), { resumed: true }).result).toBeUndefined();
    expect(() => runClientMessage(t, c, Buffer.concat([msg.sync(), msg.sync()]))).toThrow(/one message/);
    types.length = 0;
    const runs = runClientMessages(t, c, Buffer.concat([msg.parse("", "SELECT 1"), msg.bind("", ""), msg.execute(), msg.sync()]));
    expect(runs.length).toBe(4);
    expect(types).toEqual([Frontend.Parse, Frontend.Bind, Frontend.Execute, Frontend.Sync]);
  });

  test("a ReadyForQuery updates the client's and server's txStatus before the hooks see it; a release asked for happens", async () => {
    const seen: number[] = [];
    const t = await applyPlugin({
      name: "releaser",
      apply(api) {
        api.onServerMessage("ReadyForQuery", (ctx) => {
          seen.push(ctx.client.txStatus);
          if (ctx.client.txStatus === TxStatus.Idle && ctx.client.inSync) ctx.releaseServer();
          return undefined;
        });
      },
    });
    const released: string[] = [];
    t.hooks.serverReleased.tap("pool", (_s, _c, reason) => {
      released.push(reason);
      return true;
    });
    const c = t.client({ poolMode: "transaction" });
    const s = t.server();
    c.linkServer(s);
    runClientMessage(t, c, query("BEGIN"));
    const inTx = runServerMessage(t, c, readyForQuery(TxStatus.InTransaction));
    expect(inTx.released).toBe(false);
    expect(s.txStatus).toBe(TxStatus.InTransaction);
    expect(c.server).toBe(s);
    expect(c.sent).toEqual([Prebuilt.ReadyForQueryInTransaction]);
    runClientMessage(t, c, query("COMMIT"));
    const idle = runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(seen).toEqual([TxStatus.InTransaction, TxStatus.Idle]);
    expect(idle.released).toBe(true);
    expect(released).toEqual(["transaction"]);
    expect(c.server).toBeNull();
  });

  test("a FATAL ErrorResponse marks the server fatalSeen; a ParameterStatus is recorded on server and client", () => {
    const t = testApi();
    const c = t.client();
    const s = t.server();
    c.linkServer(s);
    runServerMessage(t, c, parameterStatus("TimeZone", "UTC"));
    expect(s.params.get("TimeZone")).toBe("UTC");
    expect(c.param("TimeZone")).toBe("UTC");
    runServerMessage(t, c, errorResponse(SqlState.AdminShutdown, "terminating", "FATAL"));
    expect(s.fatalSeen).toBe(true);
    expect(s.isClean()).toBe(false);
  });

  test("settle lets a pending login finish", async () => {
    const t = testApi();
    let done = false;
    void t.api.openServer({ host: "h", port: 1, database: "d", user: "u" }, null).then(() => (done = true));
    expect(done).toBe(false);
    await settle();
    expect(done).toBe(true);
  });
});
