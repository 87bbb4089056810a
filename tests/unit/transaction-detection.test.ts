// Unit tests of pgbun:transaction-detection: which ReadyForQuery releases the server (transaction and statement mode), and which never does.
import { beforeEach, describe, expect, test } from "bun:test";
import { commandComplete, errorResponse, readyForQuery, TxStatus, type PoolMode, type ReleaseReason } from "../../plugin-sdk/index.ts";
import { applyPlugin, runClientMessage, runServerMessage, type FakeClient, type FakeServer, type TestApi } from "../../plugin-sdk/testing.ts";
import transactionDetection from "../../plugins/transaction-detection/index.ts";
import { msg } from "../harness/wire.ts";

let t: TestApi;
/** Releases the pool took back, as "<server> <reason>". */
let released: string[];

beforeEach(async () => {
  t = await applyPlugin(transactionDetection());
  released = [];
  t.hooks.serverReleased.tap("pool", (s, _c, reason: ReleaseReason) => {
    released.push(`${s.label} ${reason}`);
    return true;
  });
});

function linked(poolMode: PoolMode = "transaction"): { c: FakeClient; s: FakeServer } {
  const c = t.client({ poolMode });
  const s = t.server();
  c.linkServer(s);
  return { c, s };
}

/** A simple-protocol round trip: the Query goes out, the server answers CommandComplete and ReadyForQuery(status). */
function roundTrip(c: FakeClient, status: number, sql = "SELECT 1"): boolean {
  runClientMessage(t, c, msg.query(sql));
  runServerMessage(t, c, commandComplete("SELECT 1"));
  return runServerMessage(t, c, readyForQuery(status)).released;
}

describe("releases at a transaction boundary", () => {
  test("transaction mode: ReadyForQuery 'I' with everything answered releases the server", () => {
    const { c, s } = linked();
    expect(roundTrip(c, TxStatus.Idle)).toBe(true);
    expect(released).toEqual([`${s.label} transaction`]);
    expect(c.server).toBeNull();
  });

  test("statement mode releases the same way, as a statement's end", () => {
    const { c, s } = linked("statement");
    expect(roundTrip(c, TxStatus.Idle)).toBe(true);
    expect(released).toEqual([`${s.label} statement`]);
  });

  test("an extended-protocol pipeline is released at the ReadyForQuery of its Sync", () => {
    const { c } = linked();
    for (const m of [msg.parse("", "SELECT 1"), msg.bind("", ""), msg.execute(), msg.sync()]) runClientMessage(t, c, m);
    expect(runServerMessage(t, c, commandComplete("SELECT 1")).released).toBe(false);
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(true);
  });

  test("a failed statement outside a transaction (ErrorResponse, then 'I') still releases", () => {
    const { c } = linked();
    runClientMessage(t, c, msg.query("SELEC 1"));
    runServerMessage(t, c, errorResponse("42601", "syntax error"));
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(true);
  });
});

describe("keeps the server", () => {
  test("inside a transaction ('T') and in a failed one ('E'), until the 'I' after COMMIT or ROLLBACK", () => {
    const { c, s } = linked();
    expect(roundTrip(c, TxStatus.InTransaction, "BEGIN")).toBe(false);
    expect(roundTrip(c, TxStatus.Failed, "SELECT 1/0")).toBe(false);
    expect(c.server).toBe(s);
    expect(roundTrip(c, TxStatus.Idle, "ROLLBACK")).toBe(true);
    expect(released.length).toBe(1);
  });

  test("session mode never releases at ReadyForQuery", () => {
    const { c, s } = linked("session");
    expect(roundTrip(c, TxStatus.Idle)).toBe(false);
    expect(c.server).toBe(s);
    expect(released).toEqual([]);
  });

  test("a pinned client (session state) keeps its server", () => {
    const { c, s } = linked();
    c.pinReason = "SET search_path";
    expect(roundTrip(c, TxStatus.Idle)).toBe(false);
    expect(c.server).toBe(s);
  });

  test("pipelined queries: not at the first 'I' while another ReadyForQuery is owed, at the last", () => {
    const { c } = linked();
    runClientMessage(t, c, msg.query("SELECT 1"));
    runClientMessage(t, c, msg.query("SELECT 2"));
    expect(c.rfqPending).toBe(2);
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(false);
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(true);
  });

  test("an extended-protocol message sent after the Sync and not yet synced keeps the server", () => {
    const { c, s } = linked();
    for (const m of [msg.parse("", "SELECT 1"), msg.bind("", ""), msg.execute(), msg.sync(), msg.parse("", "SELECT 2")]) runClientMessage(t, c, m);
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(false);
    expect(c.server).toBe(s);
  });

  test("internal work another plugin queued (a rollback, a state check) finishes first: that plugin releases", () => {
    const { c, s } = linked();
    runClientMessage(t, c, msg.query("SELECT 1"));
    s.runInternal("SELECT 1");
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(false);
    expect(c.server).toBe(s);
  });

  test("the decision reads the ReadyForQuery's own status, not the client's previous one", () => {
    const { c } = linked();
    c.txStatus = TxStatus.Idle;
    runClientMessage(t, c, msg.query("BEGIN"));
    expect(runServerMessage(t, c, readyForQuery(TxStatus.InTransaction)).released).toBe(false);
    c.txStatus = TxStatus.InTransaction;
    runClientMessage(t, c, msg.query("COMMIT"));
    expect(runServerMessage(t, c, readyForQuery(TxStatus.Idle)).released).toBe(true);
  });
});
