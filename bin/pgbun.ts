// pgbun's command line (commander): start, check, plugins, plugin init.
import { Command } from "commander";
import pino from "pino";
import { ConfigError, describeConfig, loadConfig, type LoadOptions, type PgbunConfig } from "../core/config/load.ts";
import { ignoredSettings, showSettingValue } from "../core/config/settings.ts";
import { createLogger, type Logger } from "../core/logger.ts";
import { VERSION } from "../core/version.ts";
import { Pgbun } from "../core/pgbun.ts";
import { loadPlugins, PluginLoadError } from "../core/plugin/loader.ts";
import { supervise, workerCount, workerIdentity } from "../core/workers.ts";
import { pluginInfos } from "../core/plugin/api.ts";
import { BUILTIN_PLUGINS } from "./builtins.ts";
import type { PluginInfo } from "../plugin-sdk/plugin.ts";
import { initPlugin, PluginInitError } from "./plugin-init.ts";


interface CommonOptions {
  config?: string;
  set: string[];
  listenAddr?: string;
  listenPort?: string;
  poolMode?: string;
  logLevel?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function loadOptions(o: CommonOptions): LoadOptions {
  const overrides: Record<string, string> = {};
  for (const kv of o.set) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new ConfigError(null, `--set ${kv}`, "expected key=value");
    overrides[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
  }
  if (o.listenAddr) overrides.listen_addr = o.listenAddr;
  if (o.listenPort) overrides.listen_port = o.listenPort;
  if (o.poolMode) overrides.pool_mode = o.poolMode;
  if (o.logLevel) overrides.log_level = o.logLevel;
  return { configFile: o.config, overrides };
}

function withCommon(cmd: Command): Command {
  return cmd
    .option("-c, --config <file>", "config file (.js, .ts, .json, .toml); default: search the working directory")
    .option("--set <key=value>", "override a setting (repeatable)", collect, [])
    .option("--listen-addr <addr>", "listen_addr")
    .option("--listen-port <port>", "listen_port")
    .option("--pool-mode <mode>", "pool_mode: session | transaction | statement")
    .option("--log-level <level>", "log_level");
}

function fail(err: unknown): never {
  if (err instanceof ConfigError || err instanceof PluginLoadError || err instanceof PluginInitError) console.error(`pgbun: ${err.message}`);
  else console.error("pgbun:", err);
  process.exit(1);
}

/**
 * One warning per harmless ignored setting `next` sets (unsafe ones never get here: loading refused them); on a
 * reload only those whose value changed from the running `prev`, so a SIGHUP does not repeat the start-up list.
 */
function warnIgnored(log: Logger, next: PgbunConfig, prev?: PgbunConfig): void {
  for (const f of ignoredSettings(next.settings)) {
    if (prev !== undefined && showSettingValue(prev.settings[f.name]) === showSettingValue(f.value)) continue;
    log.warn({ setting: f.name, value: f.value }, f.message);
  }
}

async function start(o: CommonOptions): Promise<void> {
  let config;
  try {
    config = await loadConfig(loadOptions(o));
  } catch (err) {
    fail(err);
  }
  const log = createLogger(config.settings.log_level, config.settings.log_format);
  const workers = workerCount(config.settings);
  const me = workerIdentity();
  // the supervisor (or the only process) warns; its workers load the same file and would repeat it N times
  if (me.count === 1) warnIgnored(log, config);
  if (workers > 1 && me.count === 1) process.exit(await supervise(workers, log));
  const core = new Pgbun(config, me.count > 1 ? log.child({ worker: me.id }) : log, BUILTIN_PLUGINS);
  // the handlers are in place before start-up logs "pgbun listening": a signal right after it is a shutdown, not
  // the default exit that leaves the Unix socket file behind; one during start-up waits for its end
  const started = core.start();
  const stop = (mode: "now" | "safe" | "graceful") => () => {
    void started.then(() => core.shutdown(mode)).then(() => process.exit(0));
  };
  process.on("SIGTERM", stop("graceful"));
  process.on("SIGINT", stop("safe"));
  process.on("SIGQUIT", () => {
    void started.then(() => {
      void core.shutdown("now");
      process.exit(0);
    });
  });
  try {
    await started;
  } catch (err) {
    fail(err);
  }
  core.configLoader = async () => {
    const next = await loadConfig(loadOptions(o));
    if (me.id === 0) warnIgnored(log, next, core.config);
    return next;
  };
  const reload = async () => {
    try {
      await core.reloadConfig();
    } catch (err) {
      log.error(`reload failed, keeping the running configuration: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  process.on("SIGHUP", () => void reload());
  process.on("uncaughtException", (err) => log.error({ err }, "uncaught exception (kept serving)"));
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection (kept serving)"));
}

/** Option keys whose values are not printed (the logger redacts the same names). */
const SECRET_KEY = /password|secret|token/i;

/** A plugin's options as JSON, secrets masked, values JSON has no form for as strings. */
function optionsJson(options: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(options, (key, value) => {
    if (key !== "" && SECRET_KEY.test(key) && value !== undefined && value !== null) return "***";
    return typeof value === "bigint" ? String(value) : value;
  });
}

/** One block per plugin, in tap order: name, specifier, what it provides, its options, the hooks it taps. */
function describePlugins(infos: readonly PluginInfo[]): string {
  const blocks = infos.map((p, i) =>
    [
      `${i + 1}. ${p.name}`,
      `   specifier: ${p.specifier}`,
      `   provides:  ${p.provides.length > 0 ? p.provides.join(", ") : "-"}`,
      `   options:   ${optionsJson(p.options)}`,
      `   taps:      ${p.taps.length > 0 ? p.taps.join(", ") : "-"}`,
    ].join("\n"),
  );
  return `# ${infos.length} plugins in tap order\n\n${blocks.join("\n\n")}`;
}

/** Loads and applies the config's plugins without listening, and lists them. */
async function listPlugins(o: CommonOptions): Promise<void> {
  let config;
  try {
    config = await loadConfig(loadOptions(o));
  } catch (err) {
    fail(err);
  }
  // logs go to stderr, so stdout is the listing alone; quiet unless asked
  const log = pino({ level: o.logLevel ?? "warn", base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  const core = new Pgbun(config, log, BUILTIN_PLUGINS);
  try {
    await core.loadPlugins();
  } catch (err) {
    fail(err);
  }
  console.log(describePlugins(pluginInfos(core)));
  // plugins may have started timers or opened connections in apply: let them stop as at a shutdown, briefly
  await Promise.race([core.shutdown("now"), Bun.sleep(2_000)]);
  process.exit(0);
}

function init(name: string): void {
  try {
    const r = initPlugin(name, process.cwd());
    console.log(`wrote ${r.packageName}/: ${r.files.join(", ")}`);
    console.log(`next: cd ${r.packageName} && npm install && npm test`);
  } catch (err) {
    fail(err);
  }
}

const program = new Command("pgbun").description("A programmable PostgreSQL connection pooler").version(VERSION);
withCommon(program.command("start").description("run the pooler")).action((o: CommonOptions) => start(o));
withCommon(program.command("check").description("validate the config and print the effective settings")).action(async (o: CommonOptions) => {
  try {
    const config = await loadConfig(loadOptions(o));
    console.log(describeConfig(config));
    const ignored = ignoredSettings(config.settings);
    if (ignored.length === 0) console.log("# accepted and not acted on: none");
    for (const f of ignored) console.log(`# accepted and not acted on: ${f.message}`);
    const plugins = await loadPlugins(config.plugins, config.dir, BUILTIN_PLUGINS);
    console.log(`# plugins in tap order: ${plugins.map((p) => `${p.plugin.name} (${p.specifier})`).join(", ")}`);
  } catch (err) {
    fail(err);
  }
});
withCommon(program.command("plugins").description("load and apply the config's plugins (without listening) and list them in tap order")).action((o: CommonOptions) =>
  listPlugins(o),
);
const plugin = program.command("plugin").description("write plugins");
plugin
  .command("init <name>")
  .description("write ./pgbun-plugin-<name>/: a TypeScript plugin on @pgbun/plugin-sdk, with tests and an esbuild build")
  .action((name: string) => init(name));
await program.parseAsync(process.argv);
