// Unit tests of pgbun:prepared-statements' request queue: its FIFO itself, and which kinds the plugin queues and answers in order.
import { describe, expect, test } from "bun:test";
import {
  Action,
  Backend,
  commandComplete,
  decodeBind,
  decodeError,
  decodeParse,
  decodeTarget,
  errorResponse,
  MessageWriter,
  Prebuilt,
  readyForQuery,
  rowDescription,
  TxStatus,
} from "../../plugin-sdk/index.ts";
import { applyPlugin, runClientMessage, runServerMessage, splitMessages, type FakeClient, type FakeServer, type TestApi } from "../../plugin-sdk/testing.ts";
import preparedStatements from "../../plugins/prepared-statements/index.ts";
import { Req, RequestQueue, type Pending, type ReqKind } from "../../plugins/prepared-statements/requests.ts";
import { clientState } from "../../plugins/prepared-statements/state.ts";
import { msg } from "../harness/wire.ts";

const KIND_NAMES = new Map<number, string>(Object.entries(Req).map(([name, kind]) => [kind, name]));

/** The queue's entries, oldest first, without taking them. */
function entries(q: RequestQueue): Pending[] {
  return q.entries();
}

/** The kinds a client's request queue holds, by name. */
function queued(c: FakeClient): string[] {
  return entries(clientState(c).queue).map((p) => KIND_NAMES.get(p.kind)!);
}

/** The type bytes of a run of messages, as characters. */
function typesOf(bytes: Uint8Array | Buffer[]): string {
  const list = Array.isArray(bytes) ? bytes.flatMap((b) => splitMessages(b)) : splitMessages(bytes);
  return list.map((m) => String.fromCharCode(m[0]!)).join("");
}

function parameterDescription(oids: number[]): Buffer {
  const w = new MessageWriter(16).begin(Backend.ParameterDescription).int16(oids.length);
  for (const o of oids) w.uint32(o);
  return Buffer.from(w.end().finish());
}

describe("RequestQueue", () => {
  test("first in, first out; peek does not take; an empty queue gives undefined", () => {
    const q = new RequestQueue();
    expect(q.shift()).toBeUndefined();
    q.push(Req.Parse, "k", "s1");
    q.push(Req.Bind);
    q.push(Req.Execute);
    q.push(Req.Sync);
    expect(q.length).toBe(4);
    expect(q.peek()!.kind).toBe(Req.Parse);
    expect(q.length).toBe(4);
    const out: ReqKind[] = [];
    for (let p = q.shift(); p !== undefined; p = q.shift()) out.push(p.kind);
    expect(out).toEqual([Req.Parse, Req.Bind, Req.Execute, Req.Sync]);
    expect(q.length).toBe(0);
    expect(q.peek()).toBeUndefined();
  });

  test("a kind with nothing else is one shared frozen entry per kind; one carrying a key, name or statement is its own", () => {
    const q = new RequestQueue();
    const stmt = { name: "pgbun_1", key: "SELECT 1", paramOids: null, shape: null, failed: false };
    for (const kind of Object.values(Req)) q.push(kind);
    q.push(Req.Sync);
    q.push(Req.Parse, undefined, "s1", stmt);
    q.push(Req.IntClose, "k");
    const all = entries(q);
    expect(all.slice(0, -3).map((p) => p.kind)).toEqual(Object.values(Req));
    for (const p of all.slice(0, -2)) expect(Object.isFrozen(p)).toBe(true);
    expect(all.at(-3)).toBe(all[Req.Sync - 1]!);
    expect(all.at(-2)).toEqual({ kind: Req.Parse, key: undefined, name: "s1", stmt });
    expect(all.at(-1)).toEqual({ kind: Req.IntClose, key: "k", name: undefined, stmt: undefined });
    expect(Object.isFrozen(all.at(-1))).toBe(false);
  });

  test("a long pipeline keeps its order across the queue's compaction, with pushes in between", () => {
    const q = new RequestQueue();
    for (let i = 0; i < 200; i++) q.push(Req.Bind, `k${i}`);
    const seen: string[] = [];
    for (let i = 0; i < 150; i++) seen.push(q.shift()!.key!);
    for (let i = 200; i < 220; i++) q.push(Req.Bind, `k${i}`);
    expect(q.length).toBe(70);
    for (let p = q.shift(); p !== undefined; p = q.shift()) seen.push(p.key!);
    expect(seen).toEqual(Array.from({ length: 220 }, (_, i) => `k${i}`));
  });

  test("clear empties it, and a drained queue is used again from the start", () => {
    const q = new RequestQueue();
    q.push(Req.Query);
    q.push(Req.Sync);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
    q.push(Req.Execute);
    expect(q.shift()!.kind).toBe(Req.Execute);
    q.push(Req.Sync);
    expect(entries(q).map((p) => p.kind)).toEqual([Req.Sync]);
  });
});

describe("what pgbun:prepared-statements queues, and how the answers take it off", () => {
  async function linked(settings: Record<string, unknown> = {}): Promise<{ t: TestApi; c: FakeClient; s: FakeServer }> {
    const t = await applyPlugin(preparedStatements(), { settings: { pool_mode: "transaction", ...settings } });
    const c = t.client();
    const s = t.server();
    c.linkServer(s);
    return { t, c, s };
  }

  /** The client's named Parse and the server's whole answer to it and to pgbun's Describe. */
  function prepare(t: TestApi, c: FakeClient, name: string, sql: string): void {
    runClientMessage(t, c, msg.parse(name, sql));
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, parameterDescription([]));
    runServerMessage(t, c, rowDescription(["x"]));
  }

  test("a named Parse goes out under pgbun's name with a Describe behind it; only the ParseComplete reaches the client", async () => {
    const { t, c } = await linked();
    const r = runClientMessage(t, c, msg.parse("s1", "SELECT 1 AS x"));
    const [parse, desc] = splitMessages(r.forwarded);
    expect(decodeParse({ buf: parse!, start: 0, end: parse!.length })).toEqual({ name: "pgbun_1", query: "SELECT 1 AS x", paramTypes: [] });
    expect(decodeTarget({ buf: desc!, start: 0, end: desc!.length })).toEqual({ kind: "S", name: "pgbun_1" });
    expect(queued(c)).toEqual(["Parse", "IntDescribe"]);
    expect(entries(clientState(c).queue)[0]!.name).toBe("s1");
    expect(runServerMessage(t, c, Prebuilt.ParseComplete).result).toBeUndefined();
    expect(queued(c)).toEqual(["IntDescribe"]);
    expect(runServerMessage(t, c, parameterDescription([])).result).toBe(Action.Drop);
    expect(runServerMessage(t, c, rowDescription(["x"])).result).toBe(Action.Drop);
    expect(queued(c)).toEqual([]);
    expect(typesOf(c.sent)).toBe("1");
  });

  test("Bind, Execute and Sync are queued in order and each answer takes its own off; the Bind is renamed", async () => {
    const { t, c } = await linked();
    prepare(t, c, "s1", "SELECT 1 AS x");
    const bind = runClientMessage(t, c, msg.bind("", "s1"));
    expect(decodeBind({ buf: bind.forwarded, start: 0, end: bind.forwarded.length }).statement).toBe("pgbun_1");
    runClientMessage(t, c, msg.execute());
    runClientMessage(t, c, msg.sync());
    expect(queued(c)).toEqual(["Bind", "Execute", "Sync"]);
    runServerMessage(t, c, Prebuilt.BindComplete);
    expect(queued(c)).toEqual(["Execute", "Sync"]);
    runServerMessage(t, c, commandComplete("SELECT 1"));
    expect(queued(c)).toEqual(["Sync"]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(queued(c)).toEqual([]);
  });

  test("a Close of a client's statement is answered by pgbun in its place among the answers in flight", async () => {
    const { t, c, s } = await linked();
    prepare(t, c, "s1", "SELECT 1 AS x");
    runClientMessage(t, c, msg.bind("", "s1"));
    runClientMessage(t, c, msg.execute());
    const close = runClientMessage(t, c, msg.close("S", "s1"));
    expect(close.result).toBe(Action.Drop);
    expect(close.sentToClient).toEqual([]);
    runClientMessage(t, c, msg.sync());
    expect(queued(c)).toEqual(["Bind", "Execute", "SynClose", "Sync"]);
    c.sent.length = 0;
    runServerMessage(t, c, Prebuilt.BindComplete);
    const cc = runServerMessage(t, c, commandComplete("SELECT 1"));
    expect(cc.appended).toEqual([Prebuilt.CloseComplete]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    // what PostgreSQL would have sent for Bind, Execute, Close, Sync, in that order; the server never saw the Close
    expect(typesOf(c.sent)).toBe("2C3Z");
    expect(typesOf(s.sent)).not.toContain("C");
    expect(queued(c)).toEqual([]);
    // with nothing in flight, the CloseComplete goes out at once
    const now = runClientMessage(t, c, msg.close("S", "s1"));
    expect(now.sentToClient).toEqual([Prebuilt.CloseComplete]);
    expect(queued(c)).toEqual([]);
  });

  test("a Parse while no server is free is answered at once; its statement is parsed where its first Bind lands, that ParseComplete swallowed", async () => {
    const t = await applyPlugin(preparedStatements(), { settings: { pool_mode: "transaction" } });
    const c = t.client();
    const r = runClientMessage(t, c, msg.parse("s1", "SELECT 1 AS x"));
    expect(r.result).toBe(Action.Drop);
    expect(r.sentToClient).toEqual([Prebuilt.ParseComplete]);
    expect(queued(c)).toEqual([]);
    const s = t.server();
    c.linkServer(s);
    const bind = runClientMessage(t, c, msg.bind("", "s1"));
    expect(typesOf(bind.sentToServer)).toBe("PD");
    expect(decodeBind({ buf: bind.forwarded, start: 0, end: bind.forwarded.length }).statement).toBe("pgbun_1");
    expect(queued(c)).toEqual(["IntParse", "IntDescribe", "Bind"]);
    expect(runServerMessage(t, c, Prebuilt.ParseComplete).result).toBe(Action.Drop);
    runServerMessage(t, c, parameterDescription([]));
    runServerMessage(t, c, rowDescription(["x"]));
    expect(runServerMessage(t, c, Prebuilt.BindComplete).result).toBeUndefined();
    expect(typesOf(c.sent)).toBe("12");
  });

  test("an error skips every request up to the Sync; a named Parse it skipped leaves no statement behind", async () => {
    const { t, c } = await linked();
    runClientMessage(t, c, msg.parse("s2", "SELEC 1"));
    runClientMessage(t, c, msg.bind("", "s2"));
    runClientMessage(t, c, msg.execute());
    runClientMessage(t, c, msg.sync());
    expect(queued(c)).toEqual(["Parse", "IntDescribe", "Bind", "Execute", "Sync"]);
    expect(runServerMessage(t, c, errorResponse("42601", "syntax error")).result).toBeUndefined();
    expect(queued(c)).toEqual(["Sync"]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(queued(c)).toEqual([]);
    // s2 is unknown now: its Bind goes as the client wrote it, for the server to refuse
    const again = runClientMessage(t, c, msg.bind("", "s2"));
    expect(again.result).toBeUndefined();
    expect(queued(c)).toEqual(["Bind"]);
  });

  test("a Parse of a name the client has is sent as a failing Parse; the server's error becomes PostgreSQL's 42P05", async () => {
    const { t, c } = await linked();
    prepare(t, c, "s1", "SELECT 1 AS x");
    const dup = runClientMessage(t, c, msg.parse("s1", "SELECT 2"));
    const parse = dup.forwarded;
    expect(decodeParse({ buf: parse, start: 0, end: parse.length }).name).toBe("pgbun_duplicate");
    runClientMessage(t, c, msg.sync());
    expect(queued(c)).toEqual(["IntDuplicate", "Sync"]);
    const err = runServerMessage(t, c, errorResponse("42601", "syntax error at or near \"pgbun\""));
    const e = decodeError(err.result as Buffer);
    expect([e.code, e.message]).toEqual(["42P05", 'prepared statement "s1" already exists']);
    expect(queued(c)).toEqual(["Sync"]);
  });

  test("beyond max_prepared_statements the oldest is closed on the server first, and that CloseComplete is swallowed", async () => {
    const { t, c } = await linked({ max_prepared_statements: 1 });
    prepare(t, c, "a", "SELECT 1 AS x");
    const r = runClientMessage(t, c, msg.parse("b", "SELECT 2 AS x"));
    expect(typesOf(r.sentToServer)).toBe("C");
    expect(decodeTarget({ buf: r.sentToServer[0]!, start: 0, end: r.sentToServer[0]!.length })).toEqual({ kind: "S", name: "pgbun_1" });
    expect(queued(c)).toEqual(["IntClose", "Parse", "IntDescribe"]);
    expect(runServerMessage(t, c, Prebuilt.CloseComplete).result).toBe(Action.Drop);
    expect(runServerMessage(t, c, Prebuilt.ParseComplete).result).toBeUndefined();
  });

  test("a Sync with nothing outstanding and no server is answered by pgbun; session mode queues nothing", async () => {
    const t = await applyPlugin(preparedStatements(), { settings: { pool_mode: "transaction" } });
    const c = t.client();
    const r = runClientMessage(t, c, msg.sync());
    expect(r.result).toBe(Action.Drop);
    expect(r.sentToClient).toEqual([Prebuilt.ReadyForQueryIdle]);
    const session = t.client({ poolMode: "session" });
    session.linkServer(t.server());
    const p = runClientMessage(t, session, msg.parse("s1", "SELECT 1"));
    expect(p.forwarded).toEqual(msg.parse("s1", "SELECT 1"));
    expect(queued(session)).toEqual([]);
  });

  test("a fresh link starts with an empty queue; a Query counts as one request answered by its ReadyForQuery", async () => {
    const { t, c, s } = await linked();
    runClientMessage(t, c, msg.query("SELECT 1"));
    expect(queued(c)).toEqual(["Query"]);
    runServerMessage(t, c, commandComplete("SELECT 1"));
    expect(queued(c)).toEqual(["Query"]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(queued(c)).toEqual([]);
    clientState(c).queue.push(Req.Bind);
    t.api.releaseServer(c, s, "transaction");
    c.linkServer(t.server());
    expect(queued(c)).toEqual([]);
  });
});
