// Taps marked extendedQuery (TapOptions): skipped for simple-Query clients, and on from a client's first extended message.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { Backend } from "../../plugin-sdk/index.ts";
import { Frame } from "../../core/protocol/framer.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { closeAfterEach, usePostgres, writePlugin } from "../harness/fixtures.ts";
import { describe as show, loginApp, msg, type WireClient } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();

async function pooler(plugins: string[] = [], dir?: string): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 1 },
    ...(plugins.length > 0 ? { plugins, dir } : {}),
  });
  return track(p, (p) => p.stop());
}

async function login(p: TestPooler): Promise<WireClient> {
  return track(await loginApp(p), (c) => c.destroy());
}

describe("extendedQuery taps", () => {
  test("with the default plugins, a simple-Query client's RowDescription and CommandComplete pass from their headers", async () => {
    const p = await pooler();
    const core = p.core as unknown as { serverFlags: Uint8Array; serverFlagsSimple: Uint8Array };
    for (const t of [Backend.RowDescription, Backend.CommandComplete, Backend.ParseComplete, Backend.ParameterDescription]) {
      expect({ t, simple: core.serverFlagsSimple[t], extended: core.serverFlags[t] }).toEqual({ t, simple: Frame.Pass, extended: Frame.Whole });
    }
    // what the core itself needs stays whole for everyone
    for (const t of [Backend.ReadyForQuery, Backend.ErrorResponse, Backend.ParameterStatus]) expect(core.serverFlagsSimple[t]).toBe(Frame.Whole);
  });

  test("a type that another plugin taps without the option is seen for every client", async () => {
    const dir = await harnessTempDir("extended-query-taps");
    writePlugin(
      dir,
      "tags.ts",
      `import { definePlugin, Backend } from "\${SDK}";
      export default definePlugin(() => ({
        name: "tags",
        apply(api) {
          api.onServerMessage(Backend.CommandComplete, (ctx) => {
            const tag = Buffer.from(ctx.body()).toString("latin1").replace(/\\0$/, "");
            ctx.client.send(Buffer.from([]));
            (globalThis as any).__tags = [...((globalThis as any).__tags ?? []), tag];
            return undefined;
          });
        },
      }));`,
    );
    const p = await pooler(["./tags.ts"], dir);
    const core = p.core as unknown as { serverFlagsSimple: Uint8Array };
    expect(core.serverFlagsSimple[Backend.CommandComplete]).toBe(Frame.Whole);
    expect(core.serverFlagsSimple[Backend.RowDescription]).toBe(Frame.Pass);
    (globalThis as any).__tags = [];
    const c = await login(p);
    expect((await c.query("SELECT 1")).rows).toEqual([["1"]]);
    expect((globalThis as any).__tags).toEqual(["SELECT 1"]);
  });

  test("simple Queries, then a named statement on the same server: pgbun's own Describe answers never reach the client", async () => {
    const p = await pooler();
    const c = await login(p);
    // the transaction keeps the server linked from the simple Queries to the extended ones
    expect((await c.query("BEGIN")).status).toBe("T");
    expect((await c.query("SELECT 'simple'")).rows).toEqual([["simple"]]);
    c.send(Buffer.concat([msg.parse("s1", "SELECT $1::int + 1 AS n"), msg.bind("", "s1", ["41"]), msg.execute("", 0), msg.sync()]));
    // pgbun parses s1 under its own name and describes it: that ParameterDescription and RowDescription are its own
    expect(show(await c.readUntilReady(5_000))).toBe('1 2 D(["42"]) C(SELECT 1) Z(T)');
    c.send(Buffer.concat([msg.describe("S", "s1"), msg.sync()]));
    expect(show(await c.readUntilReady(5_000))).toBe("t T Z(T)");
    expect((await c.query("COMMIT")).status).toBe("I");
    // and on the next transaction (the same server again, pool of one), the statement still works
    c.send(Buffer.concat([msg.bind("", "s1", ["1"]), msg.execute("", 0), msg.sync()]));
    expect(show(await c.readUntilReady(5_000))).toBe('2 D(["2"]) C(SELECT 1) Z(I)');
  });

  test("a named statement's Bind with a server free goes on in one pass: a tap before pgbun's sees it once, not again", async () => {
    const dir = await harnessTempDir("extended-query-taps");
    writePlugin(
      dir,
      "binds.ts",
      `import { definePlugin, Frontend } from "\${SDK}";
      export default definePlugin(() => ({
        name: "binds",
        apply(api) {
          api.onClientMessage(Frontend.Bind, (ctx) => {
            (globalThis as any).__binds.push(ctx.resumed ? "again" : "first");
            return undefined;
          });
        },
      }));`,
    );
    const p = await pooler(["./binds.ts"], dir);
    (globalThis as any).__binds = [];
    const c = await login(p);
    c.send(Buffer.concat([msg.parse("s1", "SELECT $1::int * 2 AS n"), msg.sync()]));
    expect(show(await c.readUntilReady(5_000))).toBe("1 Z(I)");
    // each Bind starts a transaction with no server linked (pgbench -M prepared); the pool's one server is free
    for (const n of ["1", "2", "3"]) {
      c.send(Buffer.concat([msg.bind("", "s1", [n]), msg.execute("", 0), msg.sync()]));
      expect(show(await c.readUntilReady(5_000))).toBe(`2 D(["${Number(n) * 2}"]) C(SELECT 1) Z(I)`);
    }
    expect((globalThis as any).__binds).toEqual(["first", "first", "first"]);
  });

  test("another client's simple Queries on the server a prepared-statement client used see plain results", async () => {
    const p = await pooler();
    const a = await login(p);
    a.send(Buffer.concat([msg.parse("s1", "SELECT $1::text AS v"), msg.bind("", "s1", ["a"]), msg.execute("", 0), msg.sync()]));
    expect(show(await a.readUntilReady(5_000))).toBe('1 2 D(["a"]) C(SELECT 1) Z(I)');
    const b = await login(p);
    const r = await b.query("SELECT 'b' AS v");
    expect(r.rows).toEqual([["b"]]);
    expect(r.errors).toEqual([]);
    a.send(Buffer.concat([msg.bind("", "s1", ["again"]), msg.execute("", 0), msg.sync()]));
    expect(show(await a.readUntilReady(5_000))).toBe('2 D(["again"]) C(SELECT 1) Z(I)');
  });
});
