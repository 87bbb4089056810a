// The plugin SDK is the only door: built-in plugins and examples import plugin-sdk, never core; the SDK imports neither.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === "node_modules" || name === "dist") continue;
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function specifiers(file: string): string[] {
  const src = readFileSync(file, "utf8");
  const found: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^"';]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  for (let m = re.exec(src); m !== null; m = re.exec(src)) found.push((m[1] ?? m[2] ?? m[3])!);
  return found;
}

/** Where a relative specifier points, relative to the repository root. */
function target(file: string, spec: string): string {
  return relative(ROOT, resolve(dirname(file), spec));
}

function violations(files: string[], allowed: (file: string, spec: string) => boolean): string[] {
  const bad: string[] = [];
  for (const file of files) for (const spec of specifiers(file)) if (!allowed(file, spec)) bad.push(`${relative(ROOT, file)} imports ${spec}`);
  return bad;
}

describe("the plugin SDK is the only door", () => {
  test("the scanner finds imports of every form (so an empty result means something)", () => {
    const f = join(ROOT, "tests/unit/plugin-boundary.test.ts");
    expect(specifiers(f)).toEqual(expect.arrayContaining(["bun:test", "node:fs", "node:path"]));
  });

  test("built-in plugins import only plugin-sdk/index.ts, their own files, npm packages and node:/bun built-ins", () => {
    // every file: the composition root and the test pooler, which start the core, live in bin/
    const files = tsFiles(join(ROOT, "plugins"));
    expect(files.length).toBeGreaterThan(20);
    const bad = violations(files, (file, spec) => {
      if (!spec.startsWith(".")) return !spec.startsWith("pgbun/") || spec === "pgbun/plugin-sdk";
      const t = target(file, spec);
      if (t === "plugin-sdk/index.ts") return true;
      // its own files: the same plugin directory
      const own = relative(ROOT, file).split("/").slice(0, 2).join("/");
      return t.startsWith(`${own}/`);
    });
    expect(bad).toEqual([]);
  });

  test("examples import the SDK as a package would (pgbun/plugin-sdk) and nothing of core or plugins", () => {
    const files = tsFiles(join(ROOT, "examples"));
    expect(files.length).toBeGreaterThan(0);
    const bad = violations(files, (file, spec) => {
      if (!spec.startsWith(".")) return !spec.startsWith("pgbun/") || spec === "pgbun/plugin-sdk" || spec === "pgbun/plugin-sdk/testing";
      const t = target(file, spec);
      return t.startsWith("examples/");
    });
    expect(bad).toEqual([]);
  });

  test("plugin-sdk imports nothing of core or plugins: the core imports the contract, not the reverse", () => {
    const files = tsFiles(join(ROOT, "plugin-sdk"));
    expect(files.length).toBeGreaterThan(5);
    const bad = violations(files, (file, spec) => {
      if (!spec.startsWith(".")) return !spec.startsWith("pgbun");
      return target(file, spec).startsWith("plugin-sdk/");
    });
    expect(bad).toEqual([]);
  });

  test("the core names no plugin: the built-ins come from the composition root", () => {
    const files = tsFiles(join(ROOT, "core"));
    const bad = violations(files, (file, spec) => !spec.startsWith(".") || !target(file, spec).startsWith("plugins/"));
    expect(bad).toEqual([]);
    for (const f of files) expect(readFileSync(f, "utf8")).not.toMatch(/"pgbun:(pool|stats|admin|session-state|prepared-statements)"/);
  });
});
