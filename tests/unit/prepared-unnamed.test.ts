// Unit tests of pgbun:prepared-statements' unnamed-statement fast paths (the packed run of plain requests, the byte
// tests of Bind and Describe) and of each case where they must not be taken.
import { describe, expect, test } from "bun:test";
import {
  Action,
  Backend,
  commandComplete,
  decodeBind,
  decodeError,
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
import { Req, RequestQueue, type ReqKind } from "../../plugins/prepared-statements/requests.ts";
import { clientState } from "../../plugins/prepared-statements/state.ts";
import { msg } from "../harness/wire.ts";

const KIND_NAMES = new Map<number, string>(Object.entries(Req).map(([name, kind]) => [kind, name]));

function queued(c: FakeClient): string[] {
  return clientState(c).queue.entries().map((p) => KIND_NAMES.get(p.kind)!);
}

function typesOf(bytes: Buffer[]): string {
  return bytes
    .flatMap((b) => splitMessages(b))
    .map((m) => String.fromCharCode(m[0]!))
    .join("");
}

function parameterDescription(oids: number[]): Buffer {
  const w = new MessageWriter(16).begin(Backend.ParameterDescription).int16(oids.length);
  for (const o of oids) w.uint32(o);
  return Buffer.from(w.end().finish());
}

async function linked(): Promise<{ t: TestApi; c: FakeClient; s: FakeServer }> {
  const t = await applyPlugin(preparedStatements(), { settings: { pool_mode: "transaction" } });
  const c = t.client();
  const s = t.server();
  c.linkServer(s);
  return { t, c, s };
}

/** Each message of `bytes` through the client-side taps; what reached the server, in order. */
function sendAll(t: TestApi, c: FakeClient, ...messages: Buffer[]): Buffer[] {
  return messages.map((m) => runClientMessage(t, c, m).forwarded);
}

describe("RequestQueue's packed run", () => {
  test("plain requests pushed behind an entry of pgbun's stay behind it (the run is only ever the front)", () => {
    const q = new RequestQueue();
    q.push(Req.IntClose);
    q.push(Req.Bind);
    expect(q.rich()).toBe(2);
    q.push(Req.Execute, undefined, "x");
    q.push(Req.Sync);
    const out: ReqKind[] = [];
    expect(q.shiftPlain(Req.IntClose)).toBe(false);
    for (let p = q.shift(); p !== undefined; p = q.shift()) {
      out.push(p.kind);
      // a plain push while the list is not empty goes behind what is in it
      if (p.kind === Req.Bind) q.push(Req.Close);
    }
    expect(out).toEqual([Req.IntClose, Req.Bind, Req.Execute, Req.Sync, Req.Close]);
    expect(q.length).toBe(0);
    expect(q.headKind()).toBe(0);
  });

  test("beyond seven plain requests the rest go to the list, in order; Int and Syn kinds are never packed", () => {
    const q = new RequestQueue();
    const kinds: ReqKind[] = [Req.Parse, Req.Bind, Req.DescribePortal, Req.Execute, Req.Sync, Req.Parse, Req.Bind, Req.Execute, Req.Sync, Req.Query];
    for (const k of kinds) q.push(k);
    expect(q.length).toBe(10);
    expect(q.rich()).toBe(3);
    expect(q.entries().map((p) => p.kind)).toEqual(kinds);
    const out: ReqKind[] = [];
    while (q.headKind() !== 0) out.push(q.shift()!.kind);
    expect(out).toEqual(kinds);
    q.push(Req.SynParse);
    expect(q.rich()).toBe(1);
    expect(q.shiftPlain(Req.SynParse)).toBe(false);
    expect(q.peek()!.kind).toBe(Req.SynParse);
  });

  test("shiftPlain takes only a plain head of its kind; clear empties run and list", () => {
    const q = new RequestQueue();
    q.push(Req.Parse);
    expect(q.shiftPlain(Req.Bind)).toBe(false);
    expect(q.shiftPlain(Req.Parse)).toBe(true);
    expect(q.shiftPlain(Req.Parse)).toBe(false);
    q.push(Req.Bind);
    q.push(Req.IntDescribe);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.peek()).toBeUndefined();
    q.push(Req.Sync);
    expect(q.rich()).toBe(0);
    expect(q.entries().map((p) => p.kind)).toEqual([Req.Sync]);
  });
});

describe("the unnamed statement through pgbun:prepared-statements", () => {
  test("Parse, Bind, Describe of the portal, Execute and Sync pass as they are; each answer takes its own off, nothing added", async () => {
    const { t, c } = await linked();
    const sent = [msg.parse("", "SELECT 1 AS x"), msg.bind("", ""), msg.describe("P", ""), msg.execute(), msg.sync()];
    for (let round = 0; round < 3; round++) {
      expect(sendAll(t, c, ...sent)).toEqual(sent);
      expect(queued(c)).toEqual(["Parse", "Bind", "DescribePortal", "Execute", "Sync"]);
      expect(clientState(c).queue.rich()).toBe(0);
      for (const answer of [Prebuilt.ParseComplete, Prebuilt.BindComplete, rowDescription(["x"]), commandComplete("SELECT 1"), readyForQuery(TxStatus.Idle)]) {
        const r = runServerMessage(t, c, answer);
        expect(r.result).toBeUndefined();
        expect(r.appended).toEqual([]);
      }
      expect(queued(c)).toEqual([]);
    }
    // the client got the server's answers, and only those
    expect(typesOf(c.sent)).toBe("12TCZ".repeat(3));
  });

  test("on a server where the client has not parsed its unnamed statement, its Bind goes to a name no server has (not passed)", async () => {
    const { t, c, s } = await linked();
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"), msg.sync());
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    // the same server, next transaction: still the client's own unnamed statement
    const here = runClientMessage(t, c, msg.bind("", ""));
    expect(here.forwarded).toEqual(msg.bind("", ""));
    runClientMessage(t, c, msg.sync());
    runServerMessage(t, c, Prebuilt.BindComplete);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    t.api.releaseServer(c, s, "transaction");
    c.linkServer(t.server());
    for (const portal of ["", "p1"]) {
      const r = runClientMessage(t, c, msg.bind(portal, ""));
      const b = decodeBind({ buf: r.forwarded, start: 0, end: r.forwarded.length });
      expect([b.portal, b.statement]).toEqual([portal, "pgbun_unnamed_gone"]);
    }
    const d = runClientMessage(t, c, msg.describe("S", ""));
    expect(decodeTarget({ buf: d.forwarded, start: 0, end: d.forwarded.length })).toEqual({ kind: "S", name: "pgbun_unnamed_gone" });
    runClientMessage(t, c, msg.sync());
    expect(queued(c)).toEqual(["IntUnnamedGone", "IntUnnamedGone", "IntUnnamedGone", "Sync"]);
    const e = decodeError(runServerMessage(t, c, errorResponse("26000", 'prepared statement "pgbun_unnamed_gone" does not exist')).result as Buffer);
    expect([e.code, e.message]).toEqual(["26000", "unnamed prepared statement does not exist"]);
    expect(queued(c)).toEqual(["Sync"]);
  });

  test("a Bind of the unnamed portal to a named or pgbun_ statement is not taken for the unnamed statement", async () => {
    const { t, c } = await linked();
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"));
    runClientMessage(t, c, msg.parse("s1", "SELECT 2 AS y"));
    const named = runClientMessage(t, c, msg.bind("", "s1"));
    expect(decodeBind({ buf: named.forwarded, start: 0, end: named.forwarded.length }).statement).toBe("pgbun_1");
    const foreign = runClientMessage(t, c, msg.bind("", "pgbun_1"));
    expect(decodeBind({ buf: foreign.forwarded, start: 0, end: foreign.forwarded.length }).statement).toBe("pgbun_1_unknown");
  });

  test("a Describe of a portal passes unread even under a statement's name; a Describe of that statement is renamed", async () => {
    const { t, c } = await linked();
    runClientMessage(t, c, msg.parse("s1", "SELECT 2 AS y"));
    const portal = runClientMessage(t, c, msg.describe("P", "s1"));
    expect(portal.forwarded).toEqual(msg.describe("P", "s1"));
    const stmt = runClientMessage(t, c, msg.describe("S", "s1"));
    expect(decodeTarget({ buf: stmt.forwarded, start: 0, end: stmt.forwarded.length })).toEqual({ kind: "S", name: "pgbun_1" });
    expect(queued(c)).toEqual(["Parse", "IntDescribe", "DescribePortal", "DescribeStatement"]);
  });

  test("unnamed, named, unnamed in one pipeline: pgbun's Describe answers are swallowed in their place, the rest forwarded", async () => {
    const { t, c } = await linked();
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"), msg.bind("", ""), msg.execute());
    expect(clientState(c).queue.rich()).toBe(0);
    sendAll(t, c, msg.parse("s1", "SELECT 2 AS y"), msg.bind("", "s1"), msg.execute());
    sendAll(t, c, msg.parse("", "SELECT 3 AS z"), msg.bind("", ""), msg.describe("P", ""), msg.execute(), msg.sync());
    expect(queued(c)).toEqual(["Parse", "Bind", "Execute", "Parse", "IntDescribe", "Bind", "Execute", "Parse", "Bind", "DescribePortal", "Execute", "Sync"]);
    const answers: Array<[Buffer, unknown]> = [
      [Prebuilt.ParseComplete, undefined],
      [Prebuilt.BindComplete, undefined],
      [commandComplete("SELECT 1"), undefined],
      [Prebuilt.ParseComplete, undefined],
      [parameterDescription([]), Action.Drop],
      [rowDescription(["y"]), Action.Drop],
      [Prebuilt.BindComplete, undefined],
      [commandComplete("SELECT 1"), undefined],
      [Prebuilt.ParseComplete, undefined],
      [Prebuilt.BindComplete, undefined],
      [rowDescription(["z"]), undefined],
      [commandComplete("SELECT 1"), undefined],
      [readyForQuery(TxStatus.Idle), undefined],
    ];
    for (const [answer, want] of answers) expect(runServerMessage(t, c, answer).result).toBe(want as never);
    expect(queued(c)).toEqual([]);
    // the named statement was described: its next Bind goes straight to it
    const again = runClientMessage(t, c, msg.bind("", "s1"));
    expect(typesOf(again.sentToServer)).toBe("");
    expect(decodeBind({ buf: again.forwarded, start: 0, end: again.forwarded.length }).statement).toBe("pgbun_1");
  });

  test("an error at the named Parse in the middle skips to the Sync: that name goes, the unnamed requests after it are taken off too", async () => {
    const { t, c } = await linked();
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"), msg.bind("", ""), msg.execute());
    sendAll(t, c, msg.parse("s2", "SELEC 2"), msg.bind("", "s2"), msg.execute());
    sendAll(t, c, msg.parse("", "SELECT 3"), msg.bind("", ""), msg.execute(), msg.sync());
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, Prebuilt.BindComplete);
    runServerMessage(t, c, commandComplete("SELECT 1"));
    expect(runServerMessage(t, c, errorResponse("42601", "syntax error")).result).toBeUndefined();
    expect(queued(c)).toEqual(["Sync"]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(queued(c)).toEqual([]);
    expect(clientState(c).byName.has("s2")).toBe(false);
    // the next round is plain again, from the packed run
    sendAll(t, c, msg.parse("", "SELECT 4"), msg.bind("", ""), msg.execute(), msg.sync());
    expect(clientState(c).queue.rich()).toBe(0);
    expect(queued(c)).toEqual(["Parse", "Bind", "Execute", "Sync"]);
  });

  test("a Close of a named statement behind unnamed requests is answered after their answers, not at once", async () => {
    const { t, c } = await linked();
    runClientMessage(t, c, msg.parse("s1", "SELECT 2 AS y"));
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, parameterDescription([]));
    runServerMessage(t, c, rowDescription(["y"]));
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"), msg.bind("", ""), msg.describe("P", ""), msg.execute());
    const close = runClientMessage(t, c, msg.close("S", "s1"));
    expect([close.result, close.sentToClient]).toEqual([Action.Drop, []]);
    runClientMessage(t, c, msg.sync());
    expect(queued(c)).toEqual(["Parse", "Bind", "DescribePortal", "Execute", "SynClose", "Sync"]);
    expect(runServerMessage(t, c, Prebuilt.ParseComplete).appended).toEqual([]);
    expect(runServerMessage(t, c, Prebuilt.BindComplete).appended).toEqual([]);
    expect(runServerMessage(t, c, rowDescription(["x"])).appended).toEqual([]);
    expect(runServerMessage(t, c, commandComplete("SELECT 1")).appended).toEqual([Prebuilt.CloseComplete]);
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).appended).toEqual([]);
    expect(queued(c)).toEqual([]);
  });

  test("a Close behind a Sync or a Describe of the portal is answered right after that answer (ReadyForQuery, RowDescription)", async () => {
    const { t, c } = await linked();
    runClientMessage(t, c, msg.parse("s1", "SELECT 2 AS y"));
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, parameterDescription([]));
    runServerMessage(t, c, rowDescription(["y"]));
    runClientMessage(t, c, msg.parse("s2", "SELECT 3 AS z"));
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, parameterDescription([]));
    runServerMessage(t, c, rowDescription(["z"]));
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"), msg.bind("", ""), msg.sync(), msg.close("S", "s1"));
    expect(queued(c)).toEqual(["Parse", "Bind", "Sync", "SynClose"]);
    runServerMessage(t, c, Prebuilt.ParseComplete);
    runServerMessage(t, c, Prebuilt.BindComplete);
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).appended).toEqual([Prebuilt.CloseComplete]);
    sendAll(t, c, msg.bind("", ""), msg.describe("P", ""), msg.close("S", "s2"), msg.sync());
    expect(queued(c)).toEqual(["Bind", "DescribePortal", "SynClose", "Sync"]);
    runServerMessage(t, c, Prebuilt.BindComplete);
    expect(runServerMessage(t, c, rowDescription(["x"])).appended).toEqual([Prebuilt.CloseComplete]);
    expect(queued(c)).toEqual(["Sync"]);
  });

  test("answers that are not the head's kind take nothing off (a Query's RowDescription and CommandComplete)", async () => {
    const { t, c } = await linked();
    sendAll(t, c, msg.parse("", "SELECT 1 AS x"), msg.sync(), msg.query("SELECT 1"));
    runServerMessage(t, c, Prebuilt.ParseComplete);
    expect(runServerMessage(t, c, Prebuilt.BindComplete).result).toBeUndefined();
    expect(queued(c)).toEqual(["Sync", "Query"]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    runServerMessage(t, c, rowDescription(["x"]));
    runServerMessage(t, c, commandComplete("SELECT 1"));
    expect(queued(c)).toEqual(["Query"]);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(queued(c)).toEqual([]);
  });
});
