// Unit tests of pgbun:prepared-statements' LRU order on a server (max_prepared_statements): a Bind of the newest
// statement skips the move to the end; a Bind of any other one must still move it.
import { expect, test } from "bun:test";
import { Backend, decodeBind, decodeTarget, MessageWriter, Prebuilt, readyForQuery, rowDescription, TxStatus } from "../../plugin-sdk/index.ts";
import { applyPlugin, runClientMessage, runServerMessage, type FakeClient, type TestApi } from "../../plugin-sdk/testing.ts";
import preparedStatements from "../../plugins/prepared-statements/index.ts";
import { msg } from "../harness/wire.ts";

function parameterDescription(): Buffer {
  return Buffer.from(new MessageWriter(16).begin(Backend.ParameterDescription).int16(0).end().finish());
}

async function linked(): Promise<{ t: TestApi; c: FakeClient }> {
  const t = await applyPlugin(preparedStatements(), { settings: { pool_mode: "transaction", max_prepared_statements: 2 } });
  const c = t.client();
  c.linkServer(t.server());
  return { t, c };
}

/** The client's named Parse and the server's answers to it and to pgbun's Describe; the Closes pgbun sent before it. */
function prepare(t: TestApi, c: FakeClient, name: string, sql: string): string[] {
  const r = runClientMessage(t, c, msg.parse(name, sql));
  for (const _ of r.sentToServer) runServerMessage(t, c, Prebuilt.CloseComplete);
  runServerMessage(t, c, Prebuilt.ParseComplete);
  runServerMessage(t, c, parameterDescription());
  runServerMessage(t, c, rowDescription(["x"]));
  return r.sentToServer.map((b) => decodeTarget({ buf: b, start: 0, end: b.length }).name);
}

/** A Bind of `name` and its answer; the server statement it went to. */
function bind(t: TestApi, c: FakeClient, name: string): string {
  const r = runClientMessage(t, c, msg.bind("", name));
  runClientMessage(t, c, msg.sync());
  runServerMessage(t, c, Prebuilt.BindComplete);
  runServerMessage(t, c, readyForQuery(TxStatus.Idle));
  return decodeBind({ buf: r.forwarded, start: 0, end: r.forwarded.length }).statement;
}

test("a Bind of the older statement moves it to the end: the next one beyond the limit closes the other", async () => {
  const { t, c } = await linked();
  expect(prepare(t, c, "a", "SELECT 1 AS x")).toEqual([]);
  expect(prepare(t, c, "b", "SELECT 2 AS x")).toEqual([]);
  expect(bind(t, c, "b")).toBe("pgbun_2");
  expect(bind(t, c, "a")).toBe("pgbun_1");
  // a is the newest now: c takes b's place
  expect(prepare(t, c, "c", "SELECT 3 AS x")).toEqual(["pgbun_2"]);
});

test("Binds of the newest statement leave the order as it is: the oldest is closed first", async () => {
  const { t, c } = await linked();
  prepare(t, c, "a", "SELECT 1 AS x");
  prepare(t, c, "b", "SELECT 2 AS x");
  for (let i = 0; i < 3; i++) expect(bind(t, c, "b")).toBe("pgbun_2");
  expect(prepare(t, c, "c", "SELECT 3 AS x")).toEqual(["pgbun_1"]);
  // c is the newest, then b: a Bind of b moves it past c
  expect(bind(t, c, "b")).toBe("pgbun_2");
  expect(prepare(t, c, "d", "SELECT 4 AS x")).toEqual(["pgbun_3"]);
});
