// Runs pgbun in-process with the built-in plugins and yours, in front of a PostgreSQL you name (pgbun/testing).
import { validateConfig, type PgbunConfig } from "../core/config/load.ts";
import { createLogger } from "../core/logger.ts";
import { Pgbun } from "../core/pgbun.ts";
import { BUILTIN_PLUGINS } from "./builtins.ts";

export interface TestPooler {
  core: Pgbun;
  host: string;
  port: number;
  /** A postgres:// URL through the pooler. */
  url(database?: string, user?: string, password?: string): string;
  stop(): Promise<void>;
}

/**
 * Starts pgbun on a free port with the given settings and plugin list (specifiers or [specifier, options]),
 * forwarding every database to `upstream`. Relative plugin paths resolve from `dir` (default: cwd). No Unix
 * socket unless `settings.unix_socket_dir` names a directory: a test pooler leaves nothing in /tmp.
 */
export async function startTestPooler(opts: {
  upstream: { host: string; port: number; password?: string; user?: string };
  settings?: Record<string, unknown>;
  plugins?: Array<string | [string, Record<string, unknown>]>;
  databases?: Record<string, unknown>;
  users?: Record<string, unknown>;
  dir?: string;
  logLevel?: string;
}): Promise<TestPooler> {
  const raw = {
    pgbun: { listen_addr: "127.0.0.1", listen_port: 0, unix_socket_dir: "", log_level: opts.logLevel ?? "warn", log_format: "json", ...opts.settings, ...(opts.plugins ? { plugins: opts.plugins } : {}) },
    databases: opts.databases ?? { "*": { host: opts.upstream.host, port: opts.upstream.port, password: opts.upstream.password, user: opts.upstream.user } },
    users: opts.users ?? {},
  };
  const config: PgbunConfig = validateConfig(raw, null, opts.dir ?? process.cwd(), {}, {});
  const core = new Pgbun(config, createLogger(config.settings.log_level, "json"), BUILTIN_PLUGINS);
  await core.start();
  const host = "127.0.0.1";
  const port = core.port;
  return {
    core,
    host,
    port,
    url: (database = "postgres", user = "postgres", password = "postgres") =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    stop: () => core.shutdown("now"),
  };
}
