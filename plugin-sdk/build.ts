// Builds @pgbun/plugin-sdk into dist/: ESM bundles of its entries (esbuild, dependencies left external) and .d.ts (tsc).
// Run by `npm run build` and `npm pack` (prepack) in plugin-sdk/, with the esbuild and typescript of pgbun's repo.
import { build } from "esbuild";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join, relative } from "node:path";
import { SDK_API_VERSION } from "./plugin.ts";

const HERE = import.meta.dir;
const DIST = join(HERE, "dist");
/** Entry points, one per `exports` subpath: "." and "./testing". */
const ENTRIES = ["index.ts", "testing.ts"];

function fail(message: string): never {
  console.error(`plugin-sdk build: ${message}`);
  process.exit(1);
}

const pkg = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8")) as { version: string; dependencies?: Record<string, string> };
// the package's version is the API version definePlugin stamps and the loader checks: they cannot differ
if (pkg.version !== SDK_API_VERSION) fail(`package.json version ${pkg.version} is not SDK_API_VERSION ${SDK_API_VERSION} (plugin.ts)`);
const dependencies = new Set(Object.keys(pkg.dependencies ?? {}));

rmSync(DIST, { recursive: true, force: true });

// One bundle per entry with shared code split into chunks, so index and testing share one copy of each module
const result = await build({
  absWorkingDir: HERE,
  entryPoints: ENTRIES,
  outdir: DIST,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "es2022",
  packages: "external",
  sourcemap: true,
  chunkNames: "chunks/[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});
// a package the bundles import at run time must be one the package depends on, or installs will break
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  for (const imp of output.imports) {
    if (!imp.external || isBuiltin(imp.path)) continue;
    const name = imp.path.startsWith("@") ? imp.path.split("/").slice(0, 2).join("/") : imp.path.split("/")[0]!;
    if (!dependencies.has(name)) fail(`${file} imports ${imp.path}, which is not in package.json dependencies`);
  }
}

// Declarations: tsc type-checks the SDK alone (no core, no Bun types) while it emits them
const tsc = Bun.resolveSync("typescript/bin/tsc", HERE);
const proc = Bun.spawnSync([process.execPath, tsc, "-p", join(HERE, "tsconfig.build.json")], { stdout: "inherit", stderr: "inherit" });
if (proc.exitCode !== 0) fail("tsc failed");

// tsc keeps the sources' `.ts` specifiers in .d.ts files (rewriteRelativeImportExtensions rewrites only .js):
// a plugin's tsconfig without allowImportingTsExtensions needs `.js` there
const RELATIVE_TS = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g;
function declarations(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? declarations(path) : name.endsWith(".d.ts") ? [path] : [];
  });
}
for (const file of declarations(DIST)) {
  const text = readFileSync(file, "utf8");
  const rewritten = text.replace(RELATIVE_TS, "$1$2.js$3");
  if (rewritten !== text) writeFileSync(file, rewritten);
}

for (const entry of ENTRIES) {
  const base = entry.replace(/\.ts$/, "");
  for (const out of [`${base}.js`, `${base}.d.ts`]) {
    try {
      statSync(join(DIST, out));
    } catch {
      fail(`dist/${out} was not produced`);
    }
  }
}
console.log(`plugin-sdk build: @pgbun/plugin-sdk@${pkg.version} in ${relative(process.cwd(), DIST) || "."}`);
