// TapOptions.virtualClients: a tap for the admin console's clients only; no pooled client's message calls it.
import { expect, setDefaultTimeout, test } from "bun:test";
import { Frame } from "../../core/protocol/framer.ts";
import { Frontend } from "../../plugin-sdk/index.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { closeAfterEach, firstValue, pgConnect, usePostgres, writePlugin } from "../harness/fixtures.ts";
import { extendedQuery, loginApp, msg, rows, types } from "../harness/wire.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();
const track = closeAfterEach();
const ADMIN = "admin";

/**
 * A plugin whose console-only taps throw for a pooled client (a pooled client's query would fail if one ran) and
 * send a console client a notice ahead of the console's own answer.
 */
const CONSOLE_ONLY = `import { definePlugin, noticeResponse, Stage } from "\${SDK}";
export default definePlugin(() => ({
  name: "console-only",
  apply(api) {
    const tap = (ctx) => {
      if (!ctx.client.virtual) throw new Error("a virtualClients tap was called for a pooled client");
      ctx.sendToClient(noticeResponse("console-only saw " + String.fromCharCode(ctx.type)));
      return undefined;
    };
    // before the console's own tap (Stage.Console), which answers and drops the message
    for (const type of ["Query", "Parse", "Bind", "Execute", "Sync", "Flush"]) api.onClientMessage(type, tap, { stage: Stage.Console - 1, virtualClients: true });
  },
}));`;

async function pooler(): Promise<TestPooler> {
  const dir = await harnessTempDir("virtual-taps");
  writePlugin(dir, "console-only.ts", CONSOLE_ONLY);
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", admin_users: [ADMIN] },
    plugins: ["./console-only.ts"],
    dir,
  });
  return track(p, (p) => p.stop());
}

test("a pooled client's messages of every tapped type never call a virtualClients tap; Flush stays a pass type for it", async () => {
  const p = await pooler();
  // pgbun:admin's console taps and this plugin's are all virtualClients: Flush has no other tap
  expect(p.core.clientFlags[Frontend.Flush]).not.toBe(Frame.Whole);
  expect(p.core.clientHooks[Frontend.Flush]).toBeUndefined();
  expect(p.core.virtualClientHooks[Frontend.Flush]).toBeDefined();
  const c = track(await loginApp(p), (c) => c.destroy());
  c.send(Buffer.concat([msg.parse("", "select $1::text"), msg.bind("", "", ["pooled"]), msg.execute(), msg.flush()]));
  const partial = await c.readUntil((m) => m.type === "C");
  expect(types(partial)).toBe("12DC");
  c.send(msg.sync());
  expect(types(await c.readUntilReady())).toBe("Z");
  expect(await c.query("select 'simple'")).toMatchObject({ errors: [], status: "I" });
  const node = track(await pgConnect(p), (c) => c.end());
  expect(await firstValue(node, "select $1::int + 1", [41])).toBe(42);
});

test("a pooled client's message that goes through tapable's own call (a hook someone intercepts) still skips a virtualClients tap", async () => {
  const p = await pooler();
  // an interceptor of someone else's: the dispatchers call this type through tapable, every tap included
  p.core.hooks.clientMessage.for(Frontend.Query).intercept({ call: () => undefined });
  p.core.compileHooks();
  const c = track(await loginApp(p), (c) => c.destroy());
  expect(await c.query("select 'through tapable'")).toMatchObject({ errors: [], status: "I" });
  const admin = track(await loginApp(p, { user: ADMIN, database: "pgbouncer" }), (c) => c.destroy());
  const r = await admin.query("SHOW VERSION");
  expect(r.messages.filter((m) => m.type === "N").map((m) => m.body.toString("latin1"))).toEqual([expect.stringContaining("console-only saw Q")]);
});

test("a console client's messages call the virtualClients taps, in their stage, before the console answers", async () => {
  const p = await pooler();
  const admin = track(await loginApp(p, { user: ADMIN, database: "pgbouncer" }), (c) => c.destroy());
  const r = await admin.query("SHOW VERSION");
  expect(r.errors).toEqual([]);
  const notices = r.messages.filter((m) => m.type === "N");
  expect(notices.length).toBe(1);
  expect(notices[0]!.body.toString("latin1")).toContain("console-only saw Q");
  expect(rows(r.messages).length).toBe(1);
  // the extended protocol on the console: each message passes the tap first
  admin.send(extendedQuery("SHOW VERSION"));
  const got = await admin.readUntilReady();
  const seen = got.filter((m) => m.type === "N").map((m) => /saw (.)/.exec(m.body.toString("latin1"))?.[1]);
  expect(seen).toEqual(["P", "B", "E", "S"]);
});
