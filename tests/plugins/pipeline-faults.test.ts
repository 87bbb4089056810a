// The plugin pipeline against a real PostgreSQL: a plugin whose hook throws fails only what it touched, naming itself.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { harnessTempDir } from "../harness/postgres.ts";
import { firstValue, pluginTestKit, rejection, usePostgres, waitFor, writePlugin } from "../harness/fixtures.ts";
import type { TestPooler } from "../../bin/testing.ts";

// PostgreSQL and pgbun processes start here: generous limits for a loaded machine
setDefaultTimeout(30_000);

const pg = usePostgres();
const { pooler, connect } = pluginTestKit(pg);

describe("a throwing plugin", () => {
  const thrower = `
    import { definePlugin, decodeQuery, decodeDataRow } from "\${SDK}";
    export default definePlugin(() => ({
      name: "thrower",
      apply(api) {
        api.onClientMessage("Query", (ctx) => {
          if (decodeQuery(ctx) === "SELECT 'boom'") throw new Error("kaboom in a client hook");
          return undefined;
        });
        api.onServerMessage("DataRow", (ctx) => {
          if (decodeDataRow(ctx)[0] === "server-boom") throw new Error("kaboom in a server hook");
          return undefined;
        });
      },
    }));
  `;

  async function setup(): Promise<TestPooler> {
    const dir = await harnessTempDir("thrower");
    writePlugin(dir, "thrower.ts", thrower);
    return pooler(["./thrower.ts"], { dir });
  }

  test("a throw in a Query hook: that query fails naming the plugin, the client continues, others are unaffected", async () => {
    const p = await setup();
    const a = await connect(p);
    const b = await connect(p);
    expect(await firstValue(b, "SELECT 'b before'")).toBe("b before");

    const err = await rejection(a.query("SELECT 'boom'"));
    expect(err.message).toContain("kaboom in a client hook");
    expect(err.severity).toBe("ERROR");

    expect(await firstValue(a, "SELECT 'a after'")).toBe("a after");
    expect(await firstValue(b, "SELECT 'b after'")).toBe("b after");
    // inside a transaction block the session ends instead (pipeline-lifecycle-faults.test.ts: the block must not commit)
    await a.query("BEGIN");
    const inBlock = await rejection(a.query("SELECT 'boom'"));
    expect(inBlock.message).toContain('plugin "thrower" failed');
    await rejection(a.query("SELECT 'gone'"));
    // and the pooler still accepts new clients
    expect(await firstValue(await connect(p), "SELECT 'new client'")).toBe("new client");
    // the error says which plugin failed
    expect(err.message).toContain('plugin "thrower" failed');
  });

  test("a throw in a server-message hook ends that client with an error naming the plugin; others keep working", async () => {
    const p = await setup();
    const a = await connect(p);
    const b = await connect(p);
    let ended = false;
    a.on("end", () => (ended = true));

    const err = await rejection(a.query("SELECT 'server-boom'"));
    expect(err.message).toContain("kaboom in a server hook");
    await waitFor("the failed client's connection to end", () => ended, 3_000);
    await rejection(a.query("SELECT 1"));

    expect(await firstValue(b, "SELECT 'b works'")).toBe("b works");
    const c = await connect(p);
    expect(await firstValue(c, "SELECT 'new client works'")).toBe("new client works");
    // the error says which plugin failed
    expect(err.message).toContain('plugin "thrower" failed');
  });
});

describe("a plugin that throws a frozen error", () => {
  test("the query fails naming the plugin and the client continues (logging the error must not throw in its turn)", async () => {
    const dir = await harnessTempDir("frozen");
    writePlugin(
      dir,
      "frozen.ts",
      `
      import { definePlugin, decodeQuery } from "\${SDK}";
      export default definePlugin(() => ({
        name: "frozen-thrower",
        apply(api) {
          api.onClientMessage("Query", (ctx) => {
            if (decodeQuery(ctx) === "SELECT 'frozen'") throw Object.freeze(new Error("a frozen error"));
            return undefined;
          });
        },
      }));
    `,
    );
    const p = await pooler(["./frozen.ts"], { dir });
    const a = await connect(p);
    const err = await rejection(a.query("SELECT 'frozen'"));
    expect(err.message).toContain('plugin "frozen-thrower" failed: a frozen error');
    expect(await firstValue(a, "SELECT 'after'")).toBe("after");
  });
});
