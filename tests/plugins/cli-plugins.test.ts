// The plugin author's commands, run as bin/pgbun: `pgbun plugins` lists what a config loads; `pgbun plugin init` scaffolds.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { SDK_API_VERSION } from "../../plugin-sdk/index.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { writePlugin } from "../harness/fixtures.ts";

// each command is a Bun process that loads plugins (esbuild for .ts ones): generous on a loaded machine
setDefaultTimeout(30_000);

const REPO = resolve(import.meta.dir, "..", "..");
const PGBUN = join(REPO, "bin", "pgbun");
const PKG = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));

async function pgbun(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // inherited PGBUN_* variables would override the config
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PGBUN_"))) as Record<string, string>;
  const proc = Bun.spawn([PGBUN, ...args], { cwd, env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** A pgbun.json in `dir` with these plugins and a database nobody connects to. */
function writeConfig(dir: string, plugins: unknown[], settings: Record<string, unknown> = {}): string {
  const file = join(dir, "pgbun.json");
  writeFileSync(file, JSON.stringify({ pgbun: { listen_addr: "127.0.0.1", listen_port: 0, ...settings, plugins }, databases: { "*": { host: "127.0.0.1", port: 1 } } }));
  return file;
}

/** The listing's block of the plugin with this name (its lines, without the number). */
function blockOf(stdout: string, name: string): string[] {
  const block = stdout.split("\n\n").find((b) => new RegExp(`^\\d+\\. ${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m").test(b));
  if (!block) throw new Error(`no block for ${name} in:\n${stdout}`);
  return block.split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

/** Plugin names in the order the listing gives them. */
function listedNames(stdout: string): string[] {
  return [...stdout.matchAll(/^\d+\. (.+)$/gm)].map((m) => m[1]!);
}

const THING = `
  import { definePlugin, Stage } from "\${SDK}";
  export default definePlugin((o) => ({
    name: "thing",
    provides: ["thing-api"],
    enforce: o.enforce,
    apply(api) {
      api.hooks.startup.tapPromise("thing", async () => undefined);
      api.onClientMessage("Query", () => undefined, { stage: Stage.Observe });
      api.onServerMessage("ReadyForQuery", () => undefined);
    },
  }));
`;

describe("pgbun plugins", () => {
  test("one block per plugin in tap order: name, specifier, provides, options as JSON (secrets masked), the hooks it taps", async () => {
    const dir = await harnessTempDir("cli-plugins");
    writePlugin(dir, "thing.ts", THING);
    const config = writeConfig(dir, [["./thing.ts", { level: 3, tags: ["a", "b"], password: "hunter2", nested: { apiToken: "t0k" } }]]);
    const r = await pgbun(dir, ["plugins", "-c", config]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(blockOf(r.stdout, "thing").slice(1)).toEqual([
      "specifier: ./thing.ts",
      "provides:  thing-api",
      `options:   {"level":3,"tags":["a","b"],"password":"***","nested":{"apiToken":"***"}}`,
      "taps:      startup, clientMessage:Query, serverMessage:ReadyForQuery",
    ]);
    expect(r.stdout).not.toContain("hunter2");
    // the built-ins the config did not list are there too, before it, each with what it taps
    const names = listedNames(r.stdout);
    expect(names).toContain("pgbun:pool");
    expect(names[names.length - 1]).toBe("thing");
    expect(blockOf(r.stdout, "pgbun:pool")).toContain("specifier: pgbun:pool");
    expect(blockOf(r.stdout, "pgbun:pool").find((l) => l.startsWith("taps:"))).toContain("needServer");
    expect(r.stdout.split("\n")[0]).toBe(`# ${names.length} plugins in tap order`);
  });

  test("the order is tap order: enforce pre puts a plugin before the built-ins", async () => {
    const dir = await harnessTempDir("cli-plugins");
    writePlugin(dir, "thing.ts", THING);
    const r = await pgbun(dir, ["plugins", "-c", writeConfig(dir, [["./thing.ts", { enforce: "pre" }]])]);
    expect(r.code).toBe(0);
    expect(listedNames(r.stdout)[0]).toBe("thing");
  });

  test("it loads and applies without listening: the config's port may be taken", async () => {
    const dir = await harnessTempDir("cli-plugins");
    const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await pgbun(dir, ["plugins", "-c", writeConfig(dir, [], { listen_port: held.port })]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(listedNames(r.stdout)).toContain("pgbun:pool");
    } finally {
      held.stop(true);
    }
  });

  test("a plugin that cannot load: exit 1 with the loader's message", async () => {
    const dir = await harnessTempDir("cli-plugins");
    const missing = await pgbun(dir, ["plugins", "-c", writeConfig(dir, ["./missing.ts"])]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain(`pgbun: plugin ./missing.ts: file not found: ${join(dir, "missing.ts")}`);

    const major = Number(SDK_API_VERSION.split(".")[0]);
    writeFileSync(join(dir, "future.js"), `export default { name: "future", apiVersion: "${major + 1}.0.0", apply() {} };\n`);
    const future = await pgbun(dir, ["plugins", "-c", writeConfig(dir, ["./future.js"])]);
    expect(future.code).toBe(1);
    expect(future.stderr).toContain(`pgbun: plugin ./future.js: built for pgbun plugin API ${major + 1}.0.0, this pgbun has ${SDK_API_VERSION}`);

    writeFileSync(join(dir, "broken.js"), `export default { name: "broken", apply() { throw new Error("no config for broken"); } };\n`);
    const broken = await pgbun(dir, ["plugins", "-c", writeConfig(dir, ["./broken.js"])]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("pgbun: plugin ./broken.js: apply() failed: no config for broken");
  });
});

describe("pgbun plugin init", () => {
  test("writes ./pgbun-plugin-NAME/: package.json depending on the SDK only, sources and tests with the name filled in", async () => {
    const dir = await harnessTempDir("cli-init");
    const r = await pgbun(dir, ["plugin", "init", "demo"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const project = join(dir, "pgbun-plugin-demo");
    const files = ["package.json", "tsconfig.json", "README.md", ".gitignore", "src/index.ts", "test/hooks.test.ts", "test/postgres.test.ts"];
    for (const f of files) expect(existsSync(join(project, f))).toBe(true);
    expect(r.stdout).toContain("wrote pgbun-plugin-demo/");

    const pkg = JSON.parse(readFileSync(join(project, "package.json"), "utf8"));
    expect(pkg.name).toBe("pgbun-plugin-demo");
    expect(pkg.type).toBe("module");
    expect(pkg.exports).toEqual({ ".": "./dist/index.js" });
    expect(pkg.dependencies).toEqual({ "@pgbun/plugin-sdk": `^${SDK_API_VERSION.split(".")[0]}.0.0` });
    expect(pkg.devDependencies).toEqual({
      "@types/bun": PKG.devDependencies["@types/bun"],
      esbuild: PKG.dependencies.esbuild,
      pgbun: `^${PKG.version}`,
      typescript: PKG.devDependencies.typescript,
    });
    expect(pkg.scripts.build).toContain("esbuild src/index.ts --bundle --format=esm --platform=node");
    expect(pkg.scripts.build).toContain("--sourcemap");
    expect(pkg.scripts.test).toBe("bun test");
    expect(pkg.scripts.typecheck).toBe("tsc --noEmit");

    // a plain strict tsconfig (its comments are tsc's JSONC): no flag for the SDK's sake
    const tsconfig = JSON.parse(readFileSync(join(project, "tsconfig.json"), "utf8").replace(/^\s*\/\/.*$/gm, ""));
    expect(tsconfig.compilerOptions).toEqual({ target: "ES2022", module: "ESNext", moduleResolution: "bundler", strict: true, noEmit: true });
    const index = readFileSync(join(project, "src", "index.ts"), "utf8");
    expect(index).toContain(`from "@pgbun/plugin-sdk"`);
    expect(index).toContain(`name: "pgbun-plugin-demo"`);
    expect(readFileSync(join(project, "test", "hooks.test.ts"), "utf8")).toContain(`from "@pgbun/plugin-sdk/testing"`);
    expect(readFileSync(join(project, "test", "postgres.test.ts"), "utf8")).toContain(`from "pgbun/testing"`);
    for (const f of files) expect(readFileSync(join(project, f), "utf8")).not.toMatch(/__[A-Z]+__/);
  });

  test("the pgbun-plugin- prefix is not doubled; an existing empty directory is filled", async () => {
    const dir = await harnessTempDir("cli-init");
    mkdirSync(join(dir, "pgbun-plugin-audit"));
    const r = await pgbun(dir, ["plugin", "init", "pgbun-plugin-audit"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "pgbun-plugin-audit", "package.json"), "utf8")).name).toBe("pgbun-plugin-audit");
    expect(existsSync(join(dir, "pgbun-plugin-pgbun-plugin-audit"))).toBe(false);
  });

  test("refuses a directory that is not empty, and changes nothing in it", async () => {
    const dir = await harnessTempDir("cli-init");
    mkdirSync(join(dir, "pgbun-plugin-demo"));
    writeFileSync(join(dir, "pgbun-plugin-demo", "notes.txt"), "mine");
    const r = await pgbun(dir, ["plugin", "init", "demo"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("pgbun: pgbun-plugin-demo/ exists and is not empty");
    expect(readdirSync(join(dir, "pgbun-plugin-demo"))).toEqual(["notes.txt"]);
  });

  test("refuses names npm would not take, or that leave the directory", async () => {
    const dir = await harnessTempDir("cli-init");
    for (const name of ["Demo", ".hidden", "_private", "two words", "../escape", "a/b", "", "x".repeat(202)]) {
      const r = await pgbun(dir, ["plugin", "init", name]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("invalid plugin name");
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
