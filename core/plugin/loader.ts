// Finds, compiles (esbuild), orders and applies plugins; attributes every tap to the plugin that made it.
import { existsSync } from "node:fs";
import { extname, isAbsolute, join, resolve } from "node:path";
import { stop as stopEsbuild } from "esbuild";
import { HookMap } from "tapable";
import type { PluginSpec } from "../config/load.ts";
import type { PgbunHooks } from "../../plugin-sdk/hooks.ts";
import { buildBundle, cachedBundle } from "./compile.ts";
import { PluginFault } from "./fault.ts";
import { backendName, frontendName } from "../../plugin-sdk/protocol/codes.ts";
import { SDK_API_VERSION, type PgbunPlugin, type PluginApi } from "../../plugin-sdk/plugin.ts";

/**
 * The built-in plugins by specifier (loaded lazily) and the default list: given by the composition root
 * (bin/builtins.ts), so the core knows no plugin by name.
 */
export interface BuiltinPlugins {
  readonly table: Readonly<Record<string, () => Promise<unknown>>>;
  /** Loaded when the config names no plugins, and added for any capability no listed plugin provides. */
  readonly defaults: readonly string[];
}

/** No built-ins: a core that loads only what the config names. */
export const NO_BUILTINS: BuiltinPlugins = { table: {}, defaults: [] };

export class PluginLoadError extends Error {
  constructor(
    readonly specifier: string,
    reason: string,
  ) {
    super(`plugin ${specifier}: ${reason}`);
    this.name = "PluginLoadError";
  }
}

export interface LoadedPlugin {
  plugin: PgbunPlugin;
  specifier: string;
  options: Record<string, unknown>;
}

/** Set once esbuild's service process has been started by a compile, so loadPlugins stops it afterwards. */
let esbuildStarted = false;

/** Compiles a TypeScript plugin with esbuild into a cached ES module; returns the module's path. */
async function compile(file: string, cacheDir: string): Promise<string> {
  const cached = cachedBundle(file, cacheDir);
  if (cached) return cached;
  esbuildStarted = true;
  return buildBundle(file, cacheDir);
}

async function importSpecifier(spec: string, dir: string, cacheDir: string, builtins: BuiltinPlugins): Promise<unknown> {
  const builtin = builtins.table[spec];
  if (builtin) return builtin();
  if (spec.startsWith("pgbun:")) throw new PluginLoadError(spec, `no built-in plugin of that name (known: ${Object.keys(builtins.table).join(", ")})`);
  if (spec.startsWith(".") || isAbsolute(spec)) {
    const file = resolve(dir, spec);
    if (!existsSync(file)) throw new PluginLoadError(spec, `file not found: ${file}`);
    const ext = extname(file);
    const path = ext === ".ts" || ext === ".mts" || ext === ".tsx" ? await compile(file, cacheDir) : file;
    return import(path);
  }
  let path: string;
  try {
    path = Bun.resolveSync(spec, dir);
  } catch {
    throw new PluginLoadError(spec, `npm package not found from ${dir} (install it, e.g. npm install ${spec})`);
  }
  return import(path);
}

function instantiate(spec: string, mod: unknown, options: Record<string, unknown>): PgbunPlugin {
  const m = mod as Record<string, unknown>;
  let exported = (m && (m.default ?? m.plugin)) ?? mod;
  if (typeof exported === "function") exported = (exported as (o: Record<string, unknown>) => unknown)(options);
  const p = exported as PgbunPlugin;
  if (!p || typeof p !== "object" || typeof p.name !== "string" || typeof p.apply !== "function") {
    throw new PluginLoadError(spec, "must export a plugin ({ name, apply }) or a factory returning one");
  }
  // definePlugin stamps the SDK version the plugin was built with; a plain object without one is taken on trust
  if (p.apiVersion !== undefined && majorOf(p.apiVersion) !== majorOf(SDK_API_VERSION)) {
    throw new PluginLoadError(
      spec,
      `built for pgbun plugin API ${p.apiVersion}, this pgbun has ${SDK_API_VERSION} (rebuild it against @pgbun/plugin-sdk@${majorOf(SDK_API_VERSION)})`,
    );
  }
  return p;
}

/** The major of a semver string; NaN for anything else, which matches no version. */
function majorOf(version: unknown): number {
  const m = typeof version === "string" ? /^v?(\d+)\.\d+\.\d+/.exec(version) : null;
  return m ? Number(m[1]) : Number.NaN;
}

function provides(p: PgbunPlugin): string[] {
  return [p.name, ...(p.provides ?? [])];
}

/** Resolves the plugin list: loads each, fills in defaults for unprovided capabilities, orders, checks dependencies. */
export async function loadPlugins(specs: PluginSpec[] | null, dir: string, builtins: BuiltinPlugins): Promise<LoadedPlugin[]> {
  const cacheDir = join(dir, ".pgbun-cache");
  const listed = specs ?? builtins.defaults.map((s) => ({ specifier: s, options: {} }));
  const loaded: LoadedPlugin[] = [];
  try {
    for (const s of listed) {
      let mod: unknown;
      try {
        mod = await importSpecifier(s.specifier, dir, cacheDir, builtins);
      } catch (err) {
        if (err instanceof PluginLoadError) throw err;
        throw new PluginLoadError(s.specifier, err instanceof Error ? err.message : String(err));
      }
      loaded.push({ plugin: instantiate(s.specifier, mod, s.options), specifier: s.specifier, options: s.options });
    }
  } finally {
    // esbuild's service process is only needed while compiling: do not leave it running beside the pooler
    if (esbuildStarted) {
      esbuildStarted = false;
      await stopEsbuild();
    }
  }
  /** capability → "plugin "name" (specifier)" for messages */
  const provided = new Map<string, string>();
  for (const l of loaded) {
    for (const cap of provides(l.plugin)) {
      const other = provided.get(cap);
      if (other) throw new PluginLoadError(l.specifier, `plugin "${l.plugin.name}" provides "${cap}", which ${other} provides too; list only one`);
      provided.set(cap, `plugin "${l.plugin.name}" (${l.specifier})`);
    }
  }
  // a built-in default is added unless a listed plugin already provides what it provides
  const defaults: LoadedPlugin[] = [];
  for (const spec of builtins.defaults) {
    if (listed.some((s) => s.specifier === spec)) continue;
    const p = instantiate(spec, await builtins.table[spec]!(), {});
    if (provides(p).some((c) => provided.has(c))) continue;
    for (const c of provides(p)) provided.set(c, spec);
    defaults.push({ plugin: p, specifier: spec, options: {} });
  }
  const all = [...defaults, ...loaded];
  for (const l of all) {
    for (const dep of l.plugin.dependencies ?? []) {
      if (!provided.has(dep)) throw new PluginLoadError(l.specifier, `plugin "${l.plugin.name}" depends on "${dep}", which no loaded plugin provides`);
    }
  }
  const rank = (p: PgbunPlugin) => (p.enforce === "pre" ? 0 : p.enforce === "post" ? 2 : 1);
  return all.map((l, i) => ({ l, i })).sort((a, b) => rank(a.l.plugin) - rank(b.l.plugin) || a.i - b.i).map((x) => x.l);
}

/**
 * Hooks that only tell plugins something happened: a tap that throws there is reported (by its plugin's name) and
 * the other taps still run, since the core cannot undo what is being reported.
 */
const CONTAINED_HOOKS: ReadonlySet<string> = new Set(["serverReset", "clientClosed", "serverClosed", "tick", "reload", "shutdown"]);

/**
 * Installs interceptors so every tap made while a plugin applies is wrapped to report that plugin by name, and
 * recorded (plugin, hook name) for the plugin listings. `contained` gets the faults of CONTAINED_HOOKS' taps;
 * `faulted` is told the plugin of every fault of a tap (counted for the listings and metrics).
 */
export function attributeTaps(
  hooks: PgbunHooks,
  current: () => string | null,
  record?: (plugin: string, hook: string) => void,
  contained?: (fault: PluginFault, hook: string) => void,
  faulted?: (plugin: string) => void,
): void {
  const registerFor = (hookName: string) => (tap: any) => {
    const owner = current() ?? tap.name;
    record?.(owner, hookName);
    const fn = PluginFault.wrap(owner, tap.fn, tap.type, faulted);
    // raw and plugin: what the relay's dispatcher calls directly, attributing faults itself (plugin/dispatch.ts)
    if (!CONTAINED_HOOKS.has(hookName)) return { ...tap, fn, raw: tap.fn, plugin: owner };
    const report = (err: unknown) => contained?.(PluginFault.from(err), hookName);
    if (tap.type === "promise") return { ...tap, fn: (a: unknown, b: unknown, c: unknown) => Promise.resolve().then(() => fn(a, b, c)).then(undefined, report) };
    return {
      ...tap,
      fn: (a: unknown, b: unknown, c: unknown) => {
        try {
          return fn(a, b, c);
        } catch (err) {
          report(err);
          return undefined;
        }
      },
    };
  };
  for (const [name, hook] of Object.entries(hooks) as [string, any][]) {
    // HookMap has a deprecated tap() too: tell the two apart by for()
    if (hook instanceof HookMap) {
      const direction = name === "clientMessage" ? "frontend" : "backend";
      hook.intercept({
        factory: (key: unknown, h: any) => (h.intercept({ register: registerFor(`${name}:${direction === "frontend" ? frontendName(key as number) : backendName(key as number)}`) }), h),
      });
    } else hook.intercept({ register: registerFor(name) });
  }
}

/** Applies plugins in order; an apply() that throws stops start-up with the plugin's name. */
export async function applyPlugins(list: LoadedPlugin[], makeApi: (l: LoadedPlugin) => PluginApi, setCurrent: (name: string | null) => void): Promise<void> {
  for (const l of list) {
    setCurrent(l.plugin.name);
    try {
      await l.plugin.apply(makeApi(l));
    } catch (err) {
      // a path or package plugin is named by its specifier; its own name (what faults and listings call it) is added
      const who = l.plugin.name === l.specifier ? "" : ` (in plugin "${l.plugin.name}")`;
      throw new PluginLoadError(l.specifier, `apply() failed: ${err instanceof Error ? err.message : String(err)}${who}`);
    } finally {
      setCurrent(null);
    }
  }
}
