// Finding, reading and validating pgbun's configuration: files (JS/TS/JSON/TOML/rc), env overrides, CLI overrides.
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, resolve } from "node:path";
import { cosmiconfig, type Loader } from "cosmiconfig";
import { parse as parseToml, TomlError } from "smol-toml";
import {
  formatEntry,
  isPlainObject,
  parseDatabases,
  parseUsers,
  type DatabaseEntry,
  type Fail,
  type UserEntry,
} from "./databases.ts";
import {
  coerceValue,
  defaultSettings,
  IMPLEMENTED_AUTH_TYPES,
  IGNORED_SETTINGS,
  ignoredSettings,
  isSettingName,
  listenAddrs,
  SETTING_NAMES,
  SETTINGS,
  showSettingValue,
  unknownKeyReason,
  type SettingName,
  type Settings,
} from "./settings.ts";

export type { PgbunConfig, PluginSpec } from "../../plugin-sdk/config.ts";
import type { PgbunConfig, PluginSpec } from "../../plugin-sdk/config.ts";
import { RESTART_SETTINGS, type RestartNeeded } from "../../plugin-sdk/restart-settings.ts";
import { tlsFileProblem } from "./tls-files.ts";

/** A configuration problem: where (file, key path such as `pgbun.listen_port`) and why. */
export class ConfigError extends Error {
  constructor(
    public file: string | null,
    public key: string,
    public reason: string,
    /** The SQLSTATE the admin console answers with: config_file_error unless a SET says otherwise. */
    public code = "F0000",
  ) {
    super(`${file ?? "<defaults>"}: ${key}: ${reason}`);
    this.name = "ConfigError";
  }
}

export interface LoadOptions {
  /** Explicit config file (relative to cwd); skips the search. */
  configFile?: string;
  /** Where to search for a config file (only this directory), default process.cwd(). */
  cwd?: string;
  /** Environment for PGBUN_* overrides, default process.env. */
  env?: Record<string, string | undefined>;
  /** `--set key=value` overrides from the CLI; they win over env and file. */
  overrides?: Record<string, string>;
}

/** The setting section's name and its PgBouncer-compatible alias. */
const SECTION = "pgbun";
const SECTION_ALIAS = "pgbouncer";
const TOP_LEVEL = [SECTION, SECTION_ALIAS, "databases", "users"];
const SECTION_KEYS = [...SETTING_NAMES, "plugins"];

export const ENV_PREFIX = "PGBUN_";

/** Files the search looks for, in this order, in the working directory only. */
export const SEARCH_PLACES = [
  "package.json",
  ".pgbunrc",
  ".pgbunrc.json",
  ".pgbunrc.toml",
  "pgbun.config.js",
  "pgbun.config.mjs",
  "pgbun.config.ts",
  "pgbun.config.toml",
];

/** TOML errors carry a code excerpt that may show a password: keep the message line and the position only. */
function tomlReason(err: TomlError): string {
  const first = err.message.split("\n")[0] ?? err.message;
  return `${first} (line ${err.line}, column ${err.column})`;
}

const loadToml: Loader = (_filepath, content) => parseToml(content);

/**
 * Import a JS/TS config. A query string defeats the module cache so a reload sees the edited file
 * (Bun honours it on a plain path, not on a file: URL).
 * The default export wins; otherwise the module's named exports are the config.
 */
const loadModule: Loader = async (filepath) => {
  const mod = (await import(`${filepath}?pgbun_load=${Date.now()}-${Math.random()}`)) as Record<string, unknown>;
  if (mod.default !== undefined) return mod.default;
  return { ...mod };
};

function explorer() {
  return cosmiconfig("pgbun", {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: "none",
    cache: false,
    loaders: { ".toml": loadToml, ".js": loadModule, ".mjs": loadModule, ".cjs": loadModule, ".ts": loadModule, ".mts": loadModule },
  });
}

function isSyntaxError(err: unknown): boolean {
  if (err instanceof SyntaxError) return true;
  return err instanceof Error && err.name === "YAMLException";
}

/** Turn a loader failure into a ConfigError: "(syntax)" for parse errors, "(file)" for I/O, "(load)" otherwise. */
function loadFailure(file: string, err: unknown): ConfigError {
  if (err instanceof ConfigError) return err;
  if (err instanceof TomlError) return new ConfigError(file, "(syntax)", tomlReason(err));
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === "string" && /^E[A-Z]+$/.test(e.code)) {
    return new ConfigError(file, "(file)", `cannot read the file: ${e.code}`);
  }
  if (err instanceof AggregateError && err.errors.length > 0) {
    // Bun reports a JS/TS build failure as an AggregateError of BuildMessages with positions.
    const parts = err.errors.map((e: { message?: string; position?: { line?: number; column?: number } | null }) =>
      e.position?.line !== undefined ? `${e.message} (line ${e.position.line}, column ${e.position.column})` : String(e.message ?? e),
    );
    return new ConfigError(file, "(syntax)", parts.join("; "));
  }
  const message = err instanceof Error ? err.message.replace(/^(JSON|YAML) Error in [^\n]*:\n/, "") : String(err);
  return new ConfigError(file, isSyntaxError(err) ? "(syntax)" : "(load)", message);
}

/** Load the configuration: explicit file or search, then env and CLI overrides, then validation. */
export async function loadConfig(opts: LoadOptions = {}): Promise<PgbunConfig> {
  const cwd = resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;
  let file: string | null = null;
  let raw: unknown;
  try {
    if (opts.configFile !== undefined) {
      file = resolve(cwd, opts.configFile);
      raw = await readExplicit(file);
    } else {
      const found = await explorer().search(cwd);
      if (found) {
        file = found.filepath;
        raw = found.config;
      }
    }
  } catch (err) {
    throw loadFailure(file ?? (err as { filepath?: string })?.filepath ?? cwd, err);
  }
  if (typeof raw === "function") {
    try {
      raw = await (raw as (ctx: { env: Record<string, string | undefined> }) => unknown)({ env });
    } catch (err) {
      throw new ConfigError(file, "(load)", `the exported config function threw: ${(err as Error)?.message ?? String(err)}`);
    }
  }
  const dir = file !== null ? dirname(file) : cwd;
  return validateConfig(raw, file, dir, env, opts.overrides, true);
}

/** Read a file named on the command line; the extension picks the parser. */
async function readExplicit(file: string): Promise<unknown> {
  const ext = extname(file).toLowerCase();
  if (ext === ".toml") return parseToml(await readFile(file, "utf8"));
  if (ext === ".json" && basename(file) !== "package.json") {
    const text = await readFile(file, "utf8");
    return text.trim() === "" ? undefined : JSON.parse(text);
  }
  if ([".js", ".mjs", ".cjs", ".ts", ".mts"].includes(ext)) {
    await readFile(file); // surface ENOENT as a file error rather than a module-resolution error
    return loadModule(file, "");
  }
  const found = await explorer().load(file); // package.json, .pgbunrc (JSON or YAML), .yaml
  return found?.config;
}

/** Normalize `plugins`: each item a specifier or `[specifier, options]`. */
function parsePlugins(raw: unknown, path: string, fail: Fail): PluginSpec[] | null {
  if (raw === undefined || raw === null) return null;
  if (!Array.isArray(raw)) return fail(path, "must be an array of plugin specifiers or [specifier, options] pairs");
  return raw.map((item: unknown, i): PluginSpec => {
    const at = `${path}[${i}]`;
    let specifier: unknown = item;
    let options: unknown = {};
    if (Array.isArray(item)) {
      if (item.length < 1 || item.length > 2) fail(at, "must be [specifier] or [specifier, options]");
      specifier = item[0];
      options = item[1] ?? {};
    }
    if (typeof specifier !== "string" || specifier.trim() === "") {
      fail(at, "must be a non-empty string specifier or [specifier, options]");
    }
    if (!isPlainObject(options)) fail(`${at}[1]`, "plugin options must be an object");
    return { specifier: specifier.trim(), options: { ...options } };
  });
}

/** Where a setting's current value came from, to name it in errors found after merging. */
interface Source {
  file: string | null;
  key: string;
}

/**
 * Validate a raw config object (as a file yields it) and apply env and CLI overrides.
 * Pure apart from reading `env`; loadConfig and reload both use it.
 */
export function validateConfig(
  raw: unknown,
  file: string | null,
  dir: string,
  env: Record<string, string | undefined> = {},
  overrides: Record<string, string> = {},
  /** Also check the files the settings name (TLS certificates and keys): loadConfig does, so start-up and `pgbun check` report them. */
  readFiles = false,
): PgbunConfig {
  const fail: Fail = (key, reason) => {
    throw new ConfigError(file, key, reason);
  };
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) fail("(root)", `the config must be an object with sections ${TOP_LEVEL.join(", ")}`);
  const root = raw as Record<string, unknown>;

  for (const key of Object.keys(root)) {
    if (TOP_LEVEL.includes(key)) continue;
    if (isSettingName(key) || key === "plugins") {
      fail(key, `unknown section ${JSON.stringify(key)}; settings belong in the [${SECTION}] section`);
    }
    fail(key, unknownKeyReason("section", key, TOP_LEVEL));
  }
  if (root[SECTION] !== undefined && root[SECTION_ALIAS] !== undefined) {
    fail(SECTION_ALIAS, `use either [${SECTION}] or [${SECTION_ALIAS}], not both`);
  }
  const sectionName = root[SECTION_ALIAS] !== undefined ? SECTION_ALIAS : SECTION;
  const section = root[sectionName] ?? {};
  if (!isPlainObject(section)) fail(sectionName, "must be a table of settings");

  const settings = defaultSettings();
  const sources = new Map<SettingName, Source>();
  const assign = (name: SettingName, value: unknown, src: Source) => {
    const c = coerceValue(SETTINGS[name].kind, value);
    if (!c.ok) throw new ConfigError(src.file, src.key, c.reason);
    (settings as unknown as Record<string, unknown>)[name] = c.value;
    sources.set(name, src);
  };

  let plugins: PluginSpec[] | null = null;
  for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
    if (key === "plugins") {
      plugins = parsePlugins(value, `${sectionName}.plugins`, fail);
      continue;
    }
    if (!isSettingName(key)) fail(`${sectionName}.${key}`, unknownKeyReason("setting", key, SECTION_KEYS));
    if (value === undefined) continue;
    assign(key, value, { file, key: `${sectionName}.${key}` });
  }

  for (const name of SETTING_NAMES) {
    const envName = ENV_PREFIX + name.toUpperCase();
    const value = env[envName];
    if (value !== undefined) assign(name, value, { file: null, key: `env ${envName}` });
  }

  for (const [rawKey, value] of Object.entries(overrides)) {
    const key = rawKey.trim();
    const src = { file: null, key: `--set ${key}` };
    if (key === "plugins") throw new ConfigError(null, src.key, "plugins cannot be set from the command line");
    if (!isSettingName(key)) throw new ConfigError(null, src.key, unknownKeyReason("setting", key, SETTING_NAMES));
    assign(key, value, src);
  }

  const sourceOf = (name: SettingName): Source => sources.get(name) ?? { file: null, key: `${sectionName}.${name}` };
  checkSettings(settings, sourceOf);
  const tls = readFiles ? tlsFileProblem(settings, dir) : null;
  if (tls !== null) throw new ConfigError(sourceOf(tls.setting).file, sourceOf(tls.setting).key, tls.reason);

  return {
    settings,
    databases: parseDatabases(root.databases, settings, fail),
    users: parseUsers(root.users, fail),
    plugins,
    file,
    dir,
  };
}

/**
 * The running configuration with one setting changed (the admin console's `SET name = value`), checked as a
 * file's value would be: an unknown name is 42704, a value the setting refuses 22023 (invalid_parameter_value),
 * a setting bound at start 55P02 (cant_change_runtime_param, as PostgreSQL answers for its own).
 */
export function withSetting(config: PgbunConfig, rawName: string, value: string): PgbunConfig {
  const name = rawName.trim().toLowerCase();
  const key = `SET ${name}`;
  if (!isSettingName(name)) throw new ConfigError(null, key, unknownKeyReason("setting", name, SETTING_NAMES), "42704");
  if (RESTART_SETTINGS.has(name)) throw new ConfigError(null, key, `${name} cannot be changed without restarting pgbun`, "55P02");
  const c = coerceValue(SETTINGS[name].kind, value);
  if (!c.ok) throw new ConfigError(null, key, c.reason, "22023");
  const settings = { ...config.settings, [name]: c.value } as Settings;
  try {
    checkSettings(settings, () => ({ file: null, key }));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(null, key, err.reason, "22023");
    throw err;
  }
  const tls = tlsFileProblem(settings, config.dir);
  if (tls !== null) throw new ConfigError(null, key, `${tls.setting}: ${tls.reason}`, "22023");
  // an entry without its own pool_size or min_pool_size takes the global one: they must still fit
  for (const e of Object.values(config.databases)) {
    const poolSize = e.pool_size ?? settings.default_pool_size;
    const minPool = e.min_pool_size ?? settings.min_pool_size;
    if (minPool > poolSize) throw new ConfigError(null, key, `databases.${e.name}: min_pool_size ${minPool} would be larger than pool_size ${poolSize}`, "22023");
  }
  return { ...config, settings };
}

/**
 * Keeps the running values of the settings bound at start (and the running plugin list) in a configuration
 * about to replace `running`, and says which ones the new configuration asked to change.
 */
export function keepRestartSettings(running: PgbunConfig, next: PgbunConfig): RestartNeeded[] {
  const out: RestartNeeded[] = [];
  const nextSettings = next.settings as unknown as Record<string, unknown>;
  for (const name of RESTART_SETTINGS) {
    const was = running.settings[name];
    const asked = next.settings[name];
    if (showSettingValue(was) === showSettingValue(asked)) continue;
    out.push({ name, running: showSettingValue(was), requested: showSettingValue(asked) });
    nextSettings[name] = was;
  }
  const plugins = (c: PgbunConfig) => {
    try {
      return JSON.stringify(c.plugins);
    } catch {
      return JSON.stringify(c.plugins?.map((p) => p.specifier) ?? null); // options JSON cannot write (a BigInt)
    }
  };
  if (plugins(running) !== plugins(next)) {
    // not the lists themselves: plugin options may hold passwords
    out.push({ name: "plugins", running: "the running list", requested: "the configuration's list" });
    next.plugins = running.plugins;
  }
  return out;
}

/** The warnings of the not-acted-on settings `next` changes from `running` (unsafe ones never load). */
export function changedIgnored(running: PgbunConfig, next: PgbunConfig): string[] {
  return ignoredSettings(next.settings)
    .filter((f) => showSettingValue(running.settings[f.name]) !== showSettingValue(f.value))
    .map((f) => f.message);
}

/** Checks that involve more than one value, or values the core accepts by name but cannot serve yet. */
function checkSettings(s: Settings, sourceOf: (name: SettingName) => Source): void {
  const failAt = (name: SettingName, reason: string): never => {
    const src = sourceOf(name);
    throw new ConfigError(src.file, src.key, reason);
  };
  if (!IMPLEMENTED_AUTH_TYPES.includes(s.auth_type)) {
    failAt("auth_type", `auth_type ${s.auth_type} is not implemented yet; use trust`);
  }
  // a TLS setting pgbun cannot honour would leave clients or servers in plaintext while the file says otherwise
  const unsafe = ignoredSettings(s).find((f) => f.verdict === "unsafe");
  if (unsafe !== undefined) failAt(unsafe.name, unsafe.message);
  if (s.min_pool_size > s.default_pool_size) {
    failAt("min_pool_size", `min_pool_size ${s.min_pool_size} is larger than default_pool_size ${s.default_pool_size}`);
  }
  if (listenAddrs(s.listen_addr).length === 0) {
    if (s.unix_socket_dir === "") failAt("listen_addr", "listen_addr is empty (no TCP) and so is unix_socket_dir: nothing to listen on");
    if (s.listen_port === 0) failAt("listen_addr", "listen_addr is empty (the Unix socket alone), whose name needs a listen_port other than 0");
  }
  if (s.client_tls_sslmode !== "disable" && (s.client_tls_key_file === "" || s.client_tls_cert_file === "")) {
    failAt("client_tls_sslmode", `client_tls_sslmode ${s.client_tls_sslmode} needs client_tls_key_file and client_tls_cert_file`);
  }
}

/** The effective configuration for `pgbun check`, TOML-like; changed settings show their default. */
export function describeConfig(c: PgbunConfig): string {
  const lines: string[] = [];
  lines.push(`# config file: ${c.file ?? "none (built-in defaults)"}`);
  lines.push(`# directory: ${c.dir}`);
  lines.push(`[${SECTION}]`);
  for (const name of SETTING_NAMES) {
    const value = c.settings[name];
    const def = SETTINGS[name].default;
    const changed = showSettingValue(value) !== showSettingValue(def);
    const notes = [...(changed ? [`default ${showSettingValue(def)}`] : []), ...(IGNORED_SETTINGS[name] !== undefined ? ["not acted on"] : [])];
    lines.push(`${name} = ${showSettingValue(value)}${notes.length > 0 ? `  # ${notes.join("; ")}` : ""}`);
  }
  if (c.plugins === null) {
    lines.push("plugins = (defaults)");
  } else {
    const items = c.plugins.map((p) =>
      Object.keys(p.options).length === 0 ? JSON.stringify(p.specifier) : `[${JSON.stringify(p.specifier)}, ${safeJson(p.options)}]`,
    );
    lines.push(`plugins = [${items.join(", ")}]`);
  }
  lines.push("", "[databases]");
  for (const [name, entry] of Object.entries(c.databases)) lines.push(`${JSON.stringify(name)} = ${JSON.stringify(formatEntry(entry))}`);
  lines.push("", "[users]");
  for (const [name, entry] of Object.entries(c.users)) lines.push(`${JSON.stringify(name)} = ${JSON.stringify(formatEntry(entry))}`);
  return lines.join("\n") + "\n";
}

/** Plugin options as JSON with any key that looks secret masked. */
function safeJson(options: Record<string, unknown>): string {
  try {
    return JSON.stringify(options, (key, value) => (/pass(word)?|secret|token/i.test(key) && value !== undefined ? "***" : value));
  } catch {
    return "{...}";
  }
}
