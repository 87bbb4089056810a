// The plugin pipeline against a real PostgreSQL: loading (paths, esbuild cache, npm packages), tap order, replacing
// a built-in, dependencies. Faults: pipeline-faults.test.ts; rewriting, answering, the examples: pipeline-examples.test.ts.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { harnessTempDir } from "../harness/postgres.ts";
import { startPgbun } from "../harness/pgbun.ts";
import { firstValue, pluginNames, pluginTestKit, rejection, sdkFrom, usePostgres, waitFor, writePlugin } from "../harness/fixtures.ts";

// PostgreSQL and pgbun processes start here: generous limits for a loaded machine
setDefaultTimeout(30_000);

const pg = usePostgres();
const { pooler, connect } = pluginTestKit(pg);

describe("tap order", () => {
  const recorderSource = (name: string) => `
    import { definePlugin } from "\${SDK}";
    export default definePlugin((o) => ({
      name: ${JSON.stringify(name)},
      enforce: o.enforce,
      apply(api) {
        api.onClientMessage("Query", () => {
          o.record(${JSON.stringify(name)});
          return undefined;
        });
      },
    }));
  `;

  async function callOrder(plugins: Array<[string, Record<string, unknown>]>, dir: string): Promise<{ calls: string[]; names: string[] }> {
    const calls: string[] = [];
    const record = (n: string) => calls.push(n);
    const p = await pooler(
      plugins.map(([spec, o]) => [spec, { ...o, record }] as [string, Record<string, unknown>]),
      { dir },
    );
    const c = await connect(p);
    calls.length = 0;
    await firstValue(c, "SELECT 1");
    const names = pluginNames(p);
    await c.end();
    await p.stop();
    return { calls, names };
  }

  test("Query taps run in config order; enforce pre and post move plugins first and last", async () => {
    const dir = await harnessTempDir("order");
    for (const n of ["first", "second", "third"]) writePlugin(dir, `${n}.ts`, recorderSource(n));

    expect((await callOrder([["./first.ts", {}], ["./second.ts", {}], ["./third.ts", {}]], dir)).calls).toEqual(["first", "second", "third"]);
    expect((await callOrder([["./third.ts", {}], ["./first.ts", {}], ["./second.ts", {}]], dir)).calls).toEqual(["third", "first", "second"]);

    const pre = await callOrder([["./first.ts", {}], ["./second.ts", {}], ["./third.ts", { enforce: "pre" }]], dir);
    expect(pre.calls).toEqual(["third", "first", "second"]);
    expect(pre.names.indexOf("third")).toBeLessThan(pre.names.indexOf("first"));

    const post = await callOrder([["./first.ts", { enforce: "post" }], ["./second.ts", {}], ["./third.ts", {}]], dir);
    expect(post.calls).toEqual(["second", "third", "first"]);
    expect(post.names[post.names.length - 1]).toBe("first");
  });
});

describe("replacing a built-in", () => {
  const tinyPool = `
    import { definePlugin, SqlState } from "\${SDK}";
    const NAME = "tiny-pool";
    /** One server per client, opened at login, kept across transactions, closed with the client. */
    export default definePlugin(() => ({
      name: NAME,
      provides: ["pool"],
      apply(api) {
        const open = async (client) => {
          const target = api.targetFor(client.dbEntry, client.database, client.user);
          const server = await api.openServer(target, NAME);
          server.markIdle();
          client.data[NAME] = server;
          return server;
        };
        api.hooks.authenticated.tapPromise(NAME, async (client) => {
          try {
            const server = await open(client);
            client.welcomeParams = new Map(server.params);
          } catch (err) {
            return { code: SqlState.ConnectionFailure, message: "tiny-pool: " + (err && err.message) };
          }
          return undefined;
        });
        api.hooks.needServer.tap(NAME, (client) => {
          const server = client.data[NAME];
          if (server && server.state === "idle") return server;
          // its server is gone: open another and hand it over once logged in
          open(client).then(
            (s) => (client.state === "waiting" ? client.linkServer(s) : s.close("client left")),
            (err) => client.fatal(SqlState.ConnectionFailure, "tiny-pool: " + (err && err.message)),
          );
          return undefined;
        });
        api.hooks.serverReleased.tap(NAME, (server, client, reason) => {
          if (reason === "client-close" || !client || client.data[NAME] !== server) return undefined; // the core closes it
          server.markIdle();
          return true;
        });
        api.hooks.clientClosed.tap(NAME, (client) => {
          const server = client.data[NAME];
          delete client.data[NAME];
          if (server && server.state !== "closed") server.close("client closed");
        });
      },
    }));
  `;

  test("a plugin providing pool replaces pgbun:pool and queries still work", async () => {
    const dir = await harnessTempDir("tiny-pool");
    writePlugin(dir, "tiny-pool.ts", tinyPool);
    const p = await pooler(["./tiny-pool.ts"], { dir });
    const names = pluginNames(p);
    expect(names).toContain("tiny-pool");
    expect(names).not.toContain("pgbun:pool");
    // the other defaults still fill their capabilities
    expect(names).toContain("pgbun:transaction-detection");
    expect(names).toContain("pgbun:parameter-tracking");

    const a = await connect(p);
    const b = await connect(p);
    // used one after the other: the built-in pool would hand both the same idle server; this one never shares
    const pidA1 = await firstValue(a, "SELECT pg_backend_pid()");
    const pidB1 = await firstValue(b, "SELECT pg_backend_pid()");
    const pidA2 = await firstValue(a, "SELECT pg_backend_pid()");
    expect(pidA1).not.toBe(pidB1);
    expect(pidA2).toBe(pidA1);
    await a.query("BEGIN");
    await a.query("CREATE TEMP TABLE t (x int)");
    await a.query("INSERT INTO t VALUES (1), (2)");
    expect(await firstValue(a, "SELECT count(*)::int FROM t")).toBe(2);
    await a.query("COMMIT");
    expect(p.core.servers.size).toBe(2);

    await a.end();
    await b.end();
    await waitFor("the clients' servers to close", () => p.core.servers.size === 0, 3_000);
  });

  test("listing pgbun:pool next to another pool provider is refused", async () => {
    const dir = await harnessTempDir("tiny-pool");
    writePlugin(dir, "tiny-pool.ts", tinyPool);
    const err = await rejection(pooler(["pgbun:pool", "./tiny-pool.ts"], { dir }));
    expect(err.message).toContain('"pool"');
    expect(err.message).toContain("pgbun:pool");
  });
});

describe("dependencies", () => {
  test("a plugin depending on a capability nobody provides fails start-up, naming the plugin and the capability", async () => {
    const dir = await harnessTempDir("deps");
    // the file name differs from the plugin name: the error must name the plugin, not only its file
    writePlugin(
      dir,
      "dep-missing.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "wants-cache", dependencies: ["pool", "query-cache"], apply() {} }));`,
    );
    const err = await rejection(pooler(["./dep-missing.ts"], { dir }));
    expect(err.message).toContain("wants-cache");
    expect(err.message).toContain("query-cache");
  });

  test("the same failure stops a pgbun process with the message on its output", async () => {
    const dir = await harnessTempDir("deps");
    const file = writePlugin(
      dir,
      "dep-missing.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "wants-cache", dependencies: ["query-cache"], apply() {} }));`,
    );
    const err = await rejection(startPgbun({ pg, config: { pgbun: { plugins: [file] } } }));
    expect(err.message).toContain("exited with code 1");
    expect(err.message).toContain("query-cache");
    expect(err.message).toContain("wants-cache");
  });

  test("a dependency on a built-in capability is satisfied by the defaults", async () => {
    const dir = await harnessTempDir("deps");
    writePlugin(
      dir,
      "needs-pool.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "needs-pool", dependencies: ["pool", "transaction-detection", "pgbun:parameter-tracking"], apply() {} }));`,
    );
    const p = await pooler(["./needs-pool.ts"], { dir });
    expect(pluginNames(p)).toContain("needs-pool");
    expect(await firstValue(await connect(p), "SELECT 1")).toBe(1);
  });

  test("two plugins providing the same capability fail start-up, naming the capability and both", async () => {
    const dir = await harnessTempDir("deps");
    // file names differ from plugin names: the error must name the plugins, not only where they came from
    for (const [file, n] of [["provider-a.ts", "cache-one"], ["provider-b.ts", "cache-two"]]) {
      writePlugin(
        dir,
        file!,
        `import { definePlugin } from "\${SDK}";
         export default definePlugin(() => ({ name: "${n}", provides: ["query-cache"], apply() {} }));`,
      );
    }
    const err = await rejection(pooler(["./provider-a.ts", "./provider-b.ts"], { dir }));
    expect(err.message).toContain("query-cache");
    expect(err.message).toContain("cache-one");
    expect(err.message).toContain("cache-two");
  });
});

describe("plugin options and the esbuild cache", () => {
  const optionsEcho = `
    import { definePlugin, decodeQuery, query } from "\${SDK}";
    export default definePlugin((factoryOptions) => ({
      name: "options-echo",
      apply(api) {
        const json = JSON.stringify({ factory: factoryOptions, api: api.options }).replace(/'/g, "''");
        api.onClientMessage("Query", (ctx) => (decodeQuery(ctx) === "SHOW plugin_options" ? query("SELECT '" + json + "'::text") : undefined));
      },
    }));
  `;

  test("options from the config reach the factory and api.options", async () => {
    const dir = await harnessTempDir("options");
    writePlugin(dir, "options-echo.ts", optionsEcho);
    const given = { level: "strict", limits: { perUser: 3, list: ["a", "b's"] }, enabled: true };
    const p = await pooler([["./options-echo.ts", given]], { dir });
    const echoed = JSON.parse((await firstValue(await connect(p), "SHOW plugin_options")) as string);
    expect(echoed).toEqual({ factory: given, api: given });
  });

  test("a TS plugin importing the SDK by relative path is compiled once into .pgbun-cache and reused", async () => {
    const dir = await harnessTempDir("cache");
    const source = (v: string) => `
      import { definePlugin, decodeQuery, query } from "\${SDK}";
      export default definePlugin(() => ({
        name: "cached-plugin",
        apply(api) {
          api.onClientMessage("Query", (ctx) => (decodeQuery(ctx) === "SHOW cached_plugin" ? query("SELECT '${v}'::text") : undefined));
        },
      }));
    `;
    const file = writePlugin(dir, "cached.ts", source("version one"));
    expect(sdkFrom(dir).startsWith("..")).toBe(true);
    const cacheDir = join(dir, ".pgbun-cache");
    const cached = () => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.endsWith(".mjs")) : []);

    const first = await pooler(["./cached.ts"], { dir });
    expect(await firstValue(await connect(first), "SHOW cached_plugin")).toBe("version one");
    const files = cached();
    expect(files.length).toBe(1);
    const stat1 = statSync(join(cacheDir, files[0]!));
    await first.stop();

    const second = await pooler(["./cached.ts"], { dir });
    expect(await firstValue(await connect(second), "SHOW cached_plugin")).toBe("version one");
    expect(cached()).toEqual(files);
    const stat2 = statSync(join(cacheDir, files[0]!));
    expect(stat2.mtimeMs).toBe(stat1.mtimeMs);
    expect(stat2.ino).toBe(stat1.ino);
    await second.stop();

    // an edited source is compiled anew
    await Bun.sleep(20);
    writeFileSync(file, source("version two, edited").replaceAll("${SDK}", sdkFrom(dir)));
    const third = await pooler(["./cached.ts"], { dir });
    expect(await firstValue(await connect(third), "SHOW cached_plugin")).toBe("version two, edited");
    expect(cached().length).toBe(2);
  });
});

describe("an npm-style plugin package", () => {
  test("node_modules/pgbun-plugin-demo is loaded by its name, with its options", async () => {
    const dir = await harnessTempDir("npm");
    const pkg = join(dir, "node_modules", "pgbun-plugin-demo");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "pgbun-plugin-demo", version: "1.0.0", type: "module", main: "index.js" }));
    writeFileSync(
      join(pkg, "index.js"),
      `// A published plugin: plain JavaScript, no build step, no import of pgbun's files.
       const encoder = new TextEncoder();
       function queryMessage(sql) {
         const text = encoder.encode(sql);
         const out = new Uint8Array(6 + text.length);
         out[0] = 0x51; // 'Q'
         new DataView(out.buffer).setInt32(1, 5 + text.length);
         out.set(text, 5);
         return out;
       }
       export default function demo(options = {}) {
         return {
           name: "pgbun-plugin-demo",
           apply(api) {
             api.onClientMessage("Query", (ctx) => {
               const body = ctx.body();
               const sql = new TextDecoder().decode(body.subarray(0, body.length - 1));
               if (sql !== "SHOW demo") return undefined;
               return queryMessage("SELECT '" + (options.greeting ?? "hello") + " from pgbun-plugin-demo'::text");
             });
           },
         };
       }
      `,
    );
    const p = await pooler([["pgbun-plugin-demo", { greeting: "hi" }]], { dir });
    expect(pluginNames(p)).toContain("pgbun-plugin-demo");
    expect(await firstValue(await connect(p), "SHOW demo")).toBe("hi from pgbun-plugin-demo");
  });

  test("a package that is not installed fails start-up naming it", async () => {
    const dir = await harnessTempDir("npm");
    const err = await rejection(pooler(["pgbun-plugin-not-installed"], { dir }));
    expect(err.message).toContain("pgbun-plugin-not-installed");
  });
});
