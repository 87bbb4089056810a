// The plugin API version: the loader refuses a plugin built for another major version of the SDK, and the SDK
// package's version is that API version.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { SDK_API_VERSION } from "../../plugin-sdk/index.ts";
import { loadPlugins, NO_BUILTINS, PluginLoadError } from "../../core/plugin/loader.ts";
import { startTestPooler } from "../../bin/testing.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { writePlugin } from "../harness/fixtures.ts";

const REPO = resolve(import.meta.dir, "..", "..");
const MAJOR = Number(SDK_API_VERSION.split(".")[0]);

/** A plain-object plugin (no definePlugin) declaring `apiVersion`, or none when undefined. */
function plainPlugin(name: string, apiVersion?: string): string {
  return `export default { name: ${JSON.stringify(name)},${apiVersion === undefined ? "" : ` apiVersion: ${JSON.stringify(apiVersion)},`} apply() {} };\n`;
}

async function load(dir: string, file: string) {
  return loadPlugins([{ specifier: `./${file}`, options: {} }], dir, NO_BUILTINS);
}

async function loadError(dir: string, file: string): Promise<PluginLoadError> {
  try {
    await load(dir, file);
  } catch (err) {
    expect(err).toBeInstanceOf(PluginLoadError);
    return err as PluginLoadError;
  }
  throw new Error(`${file} loaded`);
}

describe("the loader checks a plugin's API version", () => {
  test("a plugin built for another major version fails with both versions and the SDK major to rebuild against", async () => {
    const dir = await harnessTempDir("api-version");
    const newer = `${MAJOR + 1}.0.0`;
    writePlugin(dir, "newer.js", plainPlugin("newer", newer));
    expect((await loadError(dir, "newer.js")).message).toBe(
      `plugin ./newer.js: built for pgbun plugin API ${newer}, this pgbun has ${SDK_API_VERSION} (rebuild it against @pgbun/plugin-sdk@${MAJOR})`,
    );
    const older = `${MAJOR - 1}.9.3`;
    writePlugin(dir, "older.js", plainPlugin("older", older));
    expect((await loadError(dir, "older.js")).message).toBe(
      `plugin ./older.js: built for pgbun plugin API ${older}, this pgbun has ${SDK_API_VERSION} (rebuild it against @pgbun/plugin-sdk@${MAJOR})`,
    );
  });

  test("a version that is not semver is refused as a mismatch, not taken as compatible", async () => {
    const dir = await harnessTempDir("api-version");
    writePlugin(dir, "odd.js", plainPlugin("odd", "latest"));
    expect((await loadError(dir, "odd.js")).message).toContain("built for pgbun plugin API latest, this pgbun has");
  });

  test("the same major with another minor or patch loads; so does a plain object without apiVersion", async () => {
    const dir = await harnessTempDir("api-version");
    writePlugin(dir, "minor.js", plainPlugin("minor", `${MAJOR}.99.7`));
    writePlugin(dir, "plain.js", plainPlugin("plain"));
    expect((await load(dir, "minor.js")).map((l) => l.plugin.name)).toEqual(["minor"]);
    expect((await load(dir, "plain.js")).map((l) => l.plugin.name)).toEqual(["plain"]);
  });

  test("definePlugin stamps this SDK's version, which loads", async () => {
    const dir = await harnessTempDir("api-version");
    writePlugin(dir, "defined.ts", `import { definePlugin } from "\${SDK}";\nexport default definePlugin(() => ({ name: "defined", apply() {} }));\n`);
    const [l] = await load(dir, "defined.ts");
    expect(l!.plugin.apiVersion).toBe(SDK_API_VERSION);
  });

  test("a mismatch stops start-up before pgbun listens", async () => {
    const dir = await harnessTempDir("api-version");
    writePlugin(dir, "newer.js", plainPlugin("newer", `${MAJOR + 1}.0.0`));
    const started = startTestPooler({ upstream: { host: "127.0.0.1", port: 1 }, plugins: ["./newer.js"], dir });
    // a pooler that started anyway is stopped, not left listening
    const outcome = await started.then(
      async (p) => (await p.stop(), "listening"),
      (err: Error) => err.message,
    );
    expect(outcome).toStartWith(`plugin ./newer.js: built for pgbun plugin API ${MAJOR + 1}.0.0`);
  });
});

describe("the SDK package", () => {
  test("plugin-sdk/package.json is @pgbun/plugin-sdk at SDK_API_VERSION", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "plugin-sdk", "package.json"), "utf8"));
    expect(pkg.name).toBe("@pgbun/plugin-sdk");
    expect(pkg.version).toBe(SDK_API_VERSION);
  });
});
