// The compile cache of TypeScript path plugins: esbuild bundles, reused only while every input has its old content.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join, resolve } from "node:path";
import { build, version as esbuildVersion, type Plugin } from "esbuild";
import { registerBundle } from "./source-map.ts";

/**
 * Beside each output, `<hash of the entry's path>.json` lists what the bundle was built from. Bump FORMAT when
 * the build options change, so bundles built the old way are not reused.
 */
const FORMAT = 2;

interface Manifest {
  format: number;
  esbuild: string;
  entry: string;
  /** File name of the bundle in the cache dir. */
  output: string;
  /** Absolute path → sha256 of the content esbuild compiled. */
  inputs: Record<string, string>;
  /** [specifier, directory it was imported from, the file it resolved to] of each package left out of the bundle. */
  externals: Array<[string, string, string | null]>;
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

function hashOf(path: string): string | null {
  try {
    return sha256(readFileSync(path));
  } catch {
    return null;
  }
}

/** A package as the importing file would find it at run time; null when it is not installed. */
function resolvePackage(specifier: string, fromDir: string): string | null {
  try {
    return Bun.resolveSync(specifier, fromDir);
  } catch {
    return null;
  }
}

function manifestPath(entry: string, cacheDir: string): string {
  return join(cacheDir, `${sha256(entry).slice(0, 16)}.json`);
}

/** tmp + rename: a concurrent reader (another worker starting) sees the old file or the new one, never half. */
function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** The cached bundle of `entry` (an absolute path) when every file it was built from is unchanged, else null. */
export function cachedBundle(entry: string, cacheDir: string): string | null {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(manifestPath(entry, cacheDir), "utf8")) as Manifest;
  } catch {
    return null;
  }
  if (m.format !== FORMAT || m.esbuild !== esbuildVersion || m.entry !== entry) return null;
  const out = join(cacheDir, m.output);
  if (!existsSync(out)) return null;
  for (const path in m.inputs) if (hashOf(path) !== m.inputs[path]) return null;
  // a package installed, removed or moved since would be imported from elsewhere now
  for (const [specifier, fromDir, resolved] of m.externals) if (resolvePackage(specifier, fromDir) !== resolved) return null;
  registerBundle(out);
  return out;
}

/**
 * Hashes the exact bytes esbuild compiles (read once, here: a file saved during the build cannot be recorded
 * with content it was not built from), and resolves packages from the file importing them, as an uncompiled
 * plugin would find them, rather than from the cache dir the bundle runs in.
 */
function recorder(inputs: Map<string, string>, externals: Map<string, [string, string, string | null]>): Plugin {
  return {
    name: "pgbun-compile-cache",
    setup(b) {
      b.onLoad({ filter: /.*/, namespace: "file" }, (args) => {
        const contents = readFileSync(args.path);
        inputs.set(args.path, sha256(contents));
        return { contents, loader: "default" };
      });
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.kind === "entry-point" || args.pluginData === recorder) return undefined;
        // esbuild's own answer first: tsconfig paths map some bare-looking imports to files that are bundled
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: recorder });
        if (r.errors.length > 0 || !r.external || isBuiltin(r.path) || /^[a-z][a-z0-9+.-]*:/i.test(r.path)) return r;
        const resolved = resolvePackage(r.path, args.resolveDir);
        if (resolved === r.path) return r; // a runtime built-in ("bun")
        externals.set(`${r.path}\0${args.resolveDir}`, [r.path, args.resolveDir, resolved]);
        // not installed: left bare, so the import fails as it would uncompiled (maybe under a try)
        return { path: resolved ?? r.path, external: true };
      });
    },
  };
}

/** Bundles `entry` (an absolute path) into the cache dir; returns the bundle's path. */
export async function buildBundle(entry: string, cacheDir: string): Promise<string> {
  const inputs = new Map<string, string>();
  const externals = new Map<string, [string, string, string | null]>();
  // the metafile names inputs relative to this
  const workingDir = process.cwd();
  const result = await build({
    absWorkingDir: workingDir,
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "esnext",
    write: false,
    packages: "external",
    metafile: true,
    // for the frames of plugin faults (source-map.ts); the sources are on disk, so the map need not carry them
    sourcemap: "inline",
    sourcesContent: false,
    // the name is chosen below: this only makes the map's source paths relative to the cache dir
    outfile: join(cacheDir, "bundle.mjs"),
    logLevel: "silent",
    plugins: [recorder(inputs, externals)],
  });
  const code = result.outputFiles[0]!.contents;
  const entryKey = sha256(entry).slice(0, 16);
  // named by content: a changed bundle gets a new path, which import() has not cached in this process
  const output = `${entryKey}.${sha256(code).slice(0, 16)}.mjs`;
  const manifest: Manifest = { format: FORMAT, esbuild: esbuildVersion, entry, output, inputs: {}, externals: [...externals.values()] };
  for (const input of Object.keys(result.metafile!.inputs)) {
    const path = resolve(workingDir, input);
    const hash = inputs.get(path) ?? hashOf(path);
    if (hash) manifest.inputs[path] = hash; // else not a file (esbuild's own namespaces): nothing to change
  }
  mkdirSync(cacheDir, { recursive: true });
  const out = join(cacheDir, output);
  // the bundle before the manifest that names it
  if (!existsSync(out)) writeAtomic(out, code);
  writeAtomic(manifestPath(entry, cacheDir), JSON.stringify(manifest, null, 1));
  registerBundle(out);
  return out;
}
