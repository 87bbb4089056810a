// pgbun's command line (commander): start, check.
import { Command } from "commander";
import { ConfigError, describeConfig, loadConfig, type LoadOptions } from "../core/config/load.ts";
import { createLogger } from "../core/logger.ts";
import { VERSION } from "../core/version.ts";
import { Pgbun } from "../core/pgbun.ts";
import { loadPlugins, PluginLoadError } from "../core/plugin/loader.ts";
import { supervise, workerCount, workerIdentity } from "../core/workers.ts";
import { BUILTIN_PLUGINS } from "../plugins/index.ts";


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
  if (err instanceof ConfigError || err instanceof PluginLoadError) console.error(`pgbun: ${err.message}`);
  else console.error("pgbun:", err);
  process.exit(1);
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
  if (workers > 1 && workerIdentity().count === 1) process.exit(await supervise(workers, log));
  const me = workerIdentity();
  const core = new Pgbun(config, me.count > 1 ? log.child({ worker: me.id }) : log, BUILTIN_PLUGINS);
  try {
    await core.start();
  } catch (err) {
    fail(err);
  }
  core.configLoader = () => loadConfig(loadOptions(o));
  const reload = async () => {
    try {
      await core.reloadConfig();
    } catch (err) {
      log.error(`reload failed, keeping the running configuration: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  process.on("SIGHUP", () => void reload());
  const stop = (mode: "now" | "safe" | "graceful") => () => {
    void core.shutdown(mode).then(() => process.exit(0));
  };
  process.on("SIGTERM", stop("graceful"));
  process.on("SIGINT", stop("safe"));
  process.on("SIGQUIT", () => {
    void core.shutdown("now");
    process.exit(0);
  });
  process.on("uncaughtException", (err) => log.error({ err }, "uncaught exception (kept serving)"));
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection (kept serving)"));
}

const program = new Command("pgbun").description("A programmable PostgreSQL connection pooler").version(VERSION);
withCommon(program.command("start").description("run the pooler")).action((o: CommonOptions) => start(o));
withCommon(program.command("check").description("validate the config and print the effective settings")).action(async (o: CommonOptions) => {
  try {
    const config = await loadConfig(loadOptions(o));
    console.log(describeConfig(config));
    const plugins = await loadPlugins(config.plugins, config.dir, BUILTIN_PLUGINS);
    console.log(`# plugins in tap order: ${plugins.map((p) => `${p.plugin.name} (${p.specifier})`).join(", ")}`);
  } catch (err) {
    fail(err);
  }
});
await program.parseAsync(process.argv);
