// Unit tests of pgbun:prepared-statements' statement-name reading: the last name decoded is reused only for the same
// bytes, never for another name of the same length nor for bytes that are not its UTF-8.
import { expect, test } from "bun:test";
import { Backend, decodeBind, MessageWriter, Prebuilt, rowDescription } from "../../plugin-sdk/index.ts";
import { applyPlugin, runClientMessage, runServerMessage, type FakeClient, type TestApi } from "../../plugin-sdk/testing.ts";
import preparedStatements from "../../plugins/prepared-statements/index.ts";
import { msg } from "../harness/wire.ts";

async function linked(): Promise<{ t: TestApi; c: FakeClient }> {
  const t = await applyPlugin(preparedStatements(), { settings: { pool_mode: "transaction" } });
  const c = t.client();
  c.linkServer(t.server());
  return { t, c };
}

function prepare(t: TestApi, c: FakeClient, name: string, sql: string): void {
  runClientMessage(t, c, msg.parse(name, sql));
  runServerMessage(t, c, Prebuilt.ParseComplete);
  runServerMessage(t, c, Buffer.from(new MessageWriter(16).begin(Backend.ParameterDescription).int16(0).end().finish()));
  runServerMessage(t, c, rowDescription(["x"]));
}

/** The statement a Bind of these name bytes went to on the server. */
function boundTo(t: TestApi, c: FakeClient, name: Buffer): string {
  const bind = Buffer.from(new MessageWriter(32).begin(0x42).cstring("").bytes(name).int8(0).int16(0).int16(0).int16(0).end().finish());
  const r = runClientMessage(t, c, bind);
  return decodeBind({ buf: r.forwarded, start: 0, end: r.forwarded.length }).statement;
}

test("names of one length bind each their own statement, in any order", async () => {
  const { t, c } = await linked();
  prepare(t, c, "s1", "SELECT 1 AS x");
  prepare(t, c, "s2", "SELECT 2 AS x");
  for (const [name, want] of [["s1", "pgbun_1"], ["s1", "pgbun_1"], ["s2", "pgbun_2"], ["s1", "pgbun_1"], ["s3", "s3"], ["s2", "pgbun_2"]]) {
    expect(boundTo(t, c, Buffer.from(name!))).toBe(want!);
  }
});

test("a byte that is a character code of the last name but not its UTF-8 is decoded, not taken for it", async () => {
  const { t, c } = await linked();
  prepare(t, c, "é", "SELECT 1 AS x");
  expect(boundTo(t, c, Buffer.from("é"))).toBe("pgbun_1");
  // one byte 0xE9: "é" is one character of code 0xE9, but these bytes are not its UTF-8 (they decode to U+FFFD)
  expect(boundTo(t, c, Buffer.from([0xe9]))).toBe("\ufffd");
  expect(boundTo(t, c, Buffer.from("é"))).toBe("pgbun_1");
});
