// A plugin that throws in a lifecycle hook (serverLinked, serverConnected, clientClosed, ...) or inside a transaction block.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { harnessTempDir } from "../harness/postgres.ts";
import { appBackends, firstValue, pluginTestKit, rejection, usePostgres, waitFor, writePlugin } from "../harness/fixtures.ts";
import type { TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(30_000);

const pg = usePostgres((pg) => pg.psql("CREATE TABLE IF NOT EXISTS fault_rows (v text)", "app"));
const { pooler, connect } = pluginTestKit(pg);

/** A plugin whose tap of `hook` (ahead of the built-ins') throws while `globalThis.__throwIn` names that hook. */
function thrower(hook: string, tapKind: "tap" | "tapPromise" = "tap"): string {
  return `
    import { definePlugin } from "\${SDK}";
    export default definePlugin(() => ({
      name: "lifecycle-thrower",
      // first, ahead of the built-ins' taps of the same hook: a throw must not keep theirs from running
      enforce: "pre",
      apply(api) {
        api.hooks.${hook}.${tapKind}("lifecycle-thrower", ${tapKind === "tapPromise" ? "async " : ""}() => {
          if (globalThis.__throwIn === "${hook}") throw new Error("thrown in ${hook}");
          return undefined;
        });
      },
    }));
  `;
}

async function withThrower(hook: string, tapKind: "tap" | "tapPromise" = "tap", settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const dir = await harnessTempDir("lifecycle-faults");
  writePlugin(dir, "thrower.ts", thrower(hook, tapKind));
  return pooler(["./thrower.ts"], { dir, settings });
}

const throwIn = (hook: string | undefined) => ((globalThis as { __throwIn?: string }).__throwIn = hook);

describe("a plugin that throws in a lifecycle hook", () => {
  test("serverLinked: that client gets an error naming the plugin, its server is closed, the pooler serves the next client", async () => {
    const p = await withThrower("serverLinked", "tap", { default_pool_size: 1 });
    const a = await connect(p);
    throwIn("serverLinked");
    const err = await rejection(a.query("SELECT 1"));
    throwIn(undefined);
    expect(err.message).toContain('plugin "lifecycle-thrower" failed: thrown in serverLinked');
    const b = await connect(p);
    expect(await firstValue(b, "SELECT 'next client'")).toBe("next client");
  });

  test("serverConnected: the login fails naming the plugin and the server connection is closed, not left open", async () => {
    const p = await withThrower("serverConnected", "tapPromise");
    const before = await appBackends(pg);
    throwIn("serverConnected");
    const err = await rejection(connect(p));
    throwIn(undefined);
    expect(err.message).toContain("thrown in serverConnected");
    await waitFor("no backend left behind by the failed server login", async () => (await appBackends(pg)) <= before);
    expect([...(p.core as { servers: Set<{ state: string }> }).servers].filter((s) => s.state === "login")).toEqual([]);
    // the fault (XX000) is told to waiters at once and remembered for pgbun:backoff's short delay only: once the
    // plugin stops throwing, a login soon succeeds again
    let b: Awaited<ReturnType<typeof connect>> | undefined;
    await waitFor("a login after the fault", async () => (b = await connect(p).catch(() => undefined)) !== undefined, 5_000);
    expect(await firstValue(b!, "SELECT 'after'")).toBe("after");
  });

  test("clientClosed: the other plugins' taps still run (the pool forgets the client) and the pooler keeps serving", async () => {
    const p = await withThrower("clientClosed", "tap", { default_pool_size: 1, max_db_client_connections: 1 });
    throwIn("clientClosed");
    const a = await connect(p);
    await firstValue(a, "SELECT 1");
    await a.end();
    // the pool counted a's close despite the throw: max_db_client_connections = 1 lets the next one in
    const b = await connect(p);
    throwIn(undefined);
    expect(await firstValue(b, "SELECT 'b in'")).toBe("b in");
  });

  test("serverClosed and serverReset: logged, and the pool goes on (a server closed while the tap throws is still forgotten)", async () => {
    for (const hook of ["serverClosed", "serverReset"]) {
      const p = await withThrower(hook, "tap", { default_pool_size: 1, pool_mode: "session" });
      throwIn(hook);
      const a = await connect(p);
      await firstValue(a, "SELECT pg_terminate_backend(pg_backend_pid())").catch(() => undefined);
      await a.end().catch(() => undefined);
      const b = await connect(p);
      expect(await firstValue(b, `SELECT 'after a throwing ${hook}'`)).toBe(`after a throwing ${hook}`);
      await b.end();
      const c = await connect(p);
      expect(await firstValue(c, "SELECT 'again'")).toBe("again");
      throwIn(undefined);
    }
  });
});

describe("a plugin that throws in a Query hook inside a transaction block", () => {
  test("the session ends naming the plugin and the block is rolled back: its rows never commit", async () => {
    const dir = await harnessTempDir("block-fault");
    writePlugin(
      dir,
      "boom.ts",
      `
      import { definePlugin, decodeQuery } from "\${SDK}";
      export default definePlugin(() => ({
        name: "boom",
        apply(api) {
          api.onClientMessage("Query", (ctx) => {
            if (decodeQuery(ctx) === "SELECT 'boom'") throw new Error("boom in a block");
            return undefined;
          });
        },
      }));
    `,
    );
    const p = await pooler(["./boom.ts"], { dir });
    const a = await connect(p);
    await a.query("BEGIN");
    await a.query("INSERT INTO fault_rows VALUES ('from the failed block')");
    const err = await rejection(a.query("SELECT 'boom'"));
    expect(err.message).toContain('plugin "boom" failed: boom in a block');
    // PostgreSQL would fail the block; pgbun cannot fail it without the server, so it ends the session: a COMMIT
    // after the error must not commit what ran before it
    await rejection(a.query("COMMIT"));
    const b = await connect(p);
    expect(await firstValue(b, "SELECT count(*)::int FROM fault_rows WHERE v = 'from the failed block'")).toBe(0);
    // outside a block the query fails alone and the session goes on, as before
    const c = await connect(p);
    await rejection(c.query("SELECT 'boom'"));
    expect(await firstValue(c, "SELECT 'still here'")).toBe("still here");
  });
});
