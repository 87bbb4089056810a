// The compile cache of a path plugin (.pgbun-cache): reused only while every file of the bundle has the content it was built from.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { harnessTempDir } from "../harness/postgres.ts";
import { firstValue, pluginTestKit, usePostgres, writePlugin } from "../harness/fixtures.ts";

// PostgreSQL and pgbun processes start here: generous limits for a loaded machine
setDefaultTimeout(30_000);

const pg = usePostgres();
const { pooler, connect } = pluginTestKit(pg);

/** Answers `SHOW which` with the string its helper exports. */
const entry = `
  import { definePlugin, decodeQuery, query } from "\${SDK}";
  import { WHICH } from "./helper.ts";
  export default definePlugin(() => ({
    name: "which",
    apply(api) {
      api.onClientMessage("Query", (ctx) => (decodeQuery(ctx) === "SHOW which" ? query("SELECT '" + WHICH + "'::text") : undefined));
    },
  }));
`;
const helper = (which: string) => `export const WHICH = ${JSON.stringify(which)};\n`;

async function which(dir: string): Promise<unknown> {
  const p = await pooler(["./which.ts"], { dir });
  const client = await connect(p);
  const value = await firstValue(client, "SHOW which");
  await client.end();
  await p.stop();
  return value;
}

const COMPILE = join(import.meta.dir, "..", "..", "core", "plugin", "compile.ts");

const outputs = (dir: string) => readdirSync(join(dir, ".pgbun-cache")).filter((f) => f.endsWith(".mjs")).sort();

describe("the compile cache", () => {
  test("an edit of an imported helper alone (same size, same mtime) is compiled anew", async () => {
    const dir = await harnessTempDir("cache-helper");
    writePlugin(dir, "which.ts", entry);
    const helperFile = join(dir, "helper.ts");
    // a whole second, which every file system stores exactly
    const mtime = new Date("2026-01-02T03:04:05Z");
    writeFileSync(helperFile, helper("first"));
    utimesSync(helperFile, mtime, mtime);
    expect(await which(dir)).toBe("first");

    // the same number of bytes and the old mtime: only the content says it changed
    const before = statSync(helperFile);
    writeFileSync(helperFile, helper("other"));
    utimesSync(helperFile, mtime, mtime);
    const after = statSync(helperFile);
    expect(after.size).toBe(before.size);
    expect(after.mtimeMs).toBe(before.mtimeMs);

    expect(await which(dir)).toBe("other");
  });

  test("an unchanged bundle is not compiled again; going back to an earlier content reuses its output", async () => {
    const dir = await harnessTempDir("cache-reuse");
    writePlugin(dir, "which.ts", entry);
    const helperFile = join(dir, "helper.ts");
    writeFileSync(helperFile, helper("one"));
    expect(await which(dir)).toBe("one");
    const [built] = outputs(dir);
    const first = statSync(join(dir, ".pgbun-cache", built!));

    // touched, not changed: the same output, not rewritten
    utimesSync(helperFile, new Date(), new Date(Date.now() + 5_000));
    expect(await which(dir)).toBe("one");
    expect(outputs(dir)).toEqual([built!]);
    const again = statSync(join(dir, ".pgbun-cache", built!));
    expect(again.ino).toBe(first.ino);
    expect(again.mtimeMs).toBe(first.mtimeMs);

    writeFileSync(helperFile, helper("two"));
    expect(await which(dir)).toBe("two");
    expect(outputs(dir).length).toBe(2);

    writeFileSync(helperFile, helper("one"));
    expect(await which(dir)).toBe("one");
    expect(outputs(dir).length).toBe(2);
  });

  /** A package `greet` in `<dir>/node_modules` whose export says where it was installed. */
  function installGreet(dir: string, where: string): void {
    const pkg = join(dir, "node_modules", "greet");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "greet", version: "1.0.0", type: "module", main: "index.js" }));
    writeFileSync(join(pkg, "index.js"), `export const WHERE = ${JSON.stringify(where)};\n`);
  }

  test("a package the plugin imports is found from the plugin's directory, not from the cache's", async () => {
    // the config (and so .pgbun-cache) in one directory, the plugin and its packages in another
    const configDir = await harnessTempDir("cache-config");
    const pluginDir = await harnessTempDir("cache-plugin");
    const file = writePlugin(pluginDir, "which.ts", entry);
    writeFileSync(join(pluginDir, "helper.ts"), `export { WHERE as WHICH } from "greet";\n`);
    installGreet(pluginDir, "beside the plugin");
    const p = await pooler([file], { dir: configDir });
    expect(await firstValue(await connect(p), "SHOW which")).toBe("beside the plugin");
    expect(readdirSync(configDir)).toContain(".pgbun-cache");
  });

  test("the next start rebuilds when a package the bundle imports now resolves elsewhere", async () => {
    const configDir = await harnessTempDir("cache-config");
    const pluginRoot = await harnessTempDir("cache-plugin");
    const pluginDir = join(pluginRoot, "sub");
    mkdirSync(pluginDir);
    const file = writePlugin(pluginDir, "which.ts", entry);
    writeFileSync(join(pluginDir, "helper.ts"), `export { WHERE as WHICH } from "greet";\n`);
    installGreet(pluginRoot, "outer");
    const p = await pooler([file], { dir: configDir });
    expect(await firstValue(await connect(p), "SHOW which")).toBe("outer");
    await p.stop();

    // Bun's resolver remembers directories for the life of a process: ask a fresh one, as a restart would
    const cacheDir = join(configDir, ".pgbun-cache");
    const reused = async () => {
      const script = `import { cachedBundle } from ${JSON.stringify(COMPILE)}; console.log(cachedBundle(${JSON.stringify(file)}, ${JSON.stringify(cacheDir)}) !== null);`;
      const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
      const out = await new Response(proc.stdout).text();
      expect(await proc.exited).toBe(0);
      return out.trim();
    };
    expect(await reused()).toBe("true");
    // no plugin file changed, but "greet" now resolves to a nearer install
    installGreet(pluginDir, "inner");
    expect(await reused()).toBe("false");
  });
});
