// Starts pgbun variants for the benchmark (pool mode, plugin lists, workers) through the test harness's process runner.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { startPgbun, type TestPgbun } from "../tests/harness/pgbun.ts";
import { freePort, type TestPostgres } from "../tests/harness/postgres.ts";
import type { LoginFiles } from "./login-files.ts";
import { onCleanup } from "./processes.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const NOOP_PLUGIN = resolve(import.meta.dir, "plugins", "noop.ts");
const STUB_PLUGIN = resolve(import.meta.dir, "plugins", "stub.ts");
/** The example plugin the pipeline-cost case measures when the repository has it. */
export const AUDIT_LOG_EXAMPLE = resolve(REPO_ROOT, "examples", "audit-log.ts");

/**
 * "session-wide": session mode keeping idle servers (server_idle_timeout 0), for a pool of a server per client.
 * "verify": transaction mode with session_state = "verify" (a pgbun without that value refuses to start).
 */
export type PgbunVariant = "plain" | "session" | "session-wide" | "statement" | "verify" | "noop10" | "audit-log" | "workers2" | "scram" | "tls" | "metrics" | "check0";

export interface PgbunSettings {
  poolSize: number;
  maxClientConn: number;
  /** The bin/pgbun.ts to run, absolute (another checkout's: bench/worktree.ts); this repository's by default. */
  entry?: string;
  /** The auth_file and certificate of the "scram" and "tls" variants (bench/login-files.ts). */
  login?: LoginFiles;
  /** stats_listen_port of the "metrics" variant. */
  statsPort?: number;
}

/** What a pgbun refusing to start with session_state = "verify" says: its config check names the setting. */
export const NO_VERIFY_MODE = /session_state/;

function poolModeOf(variant: PgbunVariant): "session" | "transaction" | "statement" {
  if (variant === "session" || variant === "session-wide") return "session";
  return variant === "statement" ? "statement" : "transaction";
}

/** Absolute plugin paths: relative ones would resolve from the config file's (temporary) directory. */
function pluginsFor(variant: PgbunVariant): unknown[] | undefined {
  if (variant === "noop10") return Array.from({ length: 10 }, (_, i) => [NOOP_PLUGIN, { id: i + 1 }]);
  if (variant === "audit-log") return [AUDIT_LOG_EXAMPLE];
  return undefined;
}

/**
 * The plugins of a pgbun that runs without the optional built-ins `without` (bench/plugins/stub.ts provides their
 * capabilities, so the loader leaves them out) and with the plugin files `plus` besides; undefined when neither.
 */
export function ablatedPlugins(without: readonly string[], plus: readonly string[] = []): unknown[] | undefined {
  const plugins: unknown[] = [...(without.length > 0 ? [[STUB_PLUGIN, { provides: [...without] }]] : []), ...plus.map((p) => resolve(p))];
  return plugins.length > 0 ? plugins : undefined;
}

function needLogin(variant: PgbunVariant, s: PgbunSettings): LoginFiles {
  if (!s.login) throw new Error(`pgbun variant ${variant} needs the bench's login files`);
  return s.login;
}

export function pgbunConfig(variant: PgbunVariant, pg: TestPostgres, s: PgbunSettings): Record<string, unknown> {
  const plugins = pluginsFor(variant);
  return {
    pgbun: {
      listen_addr: "127.0.0.1",
      pool_mode: poolModeOf(variant),
      default_pool_size: s.poolSize,
      max_client_conn: s.maxClientConn,
      log_level: "warn",
      // with N workers each one gets default_pool_size / N (rounded up): the same servers in all
      ...(variant === "workers2" ? { workers: 2 } : {}),
      // its pool, filled once (bench/run.ts), stays full between runs instead of closing after 600 s idle
      ...(variant === "session-wide" ? { server_idle_timeout: 0 } : {}),
      ...(variant === "verify" ? { session_state: "verify" } : {}),
      ...(variant === "metrics" ? { stats_listen_addr: "127.0.0.1", stats_listen_port: s.statsPort } : {}),
      ...(variant === "check0" ? { server_check_delay: 0 } : {}),
      ...(variant === "scram" ? { auth_type: "scram-sha-256", auth_file: needLogin(variant, s).authFile } : {}),
      ...(variant === "tls" ? { client_tls_sslmode: "require", client_tls_cert_file: needLogin(variant, s).certFile, client_tls_key_file: needLogin(variant, s).keyFile } : {}),
      ...(plugins ? { plugins } : {}),
    },
    databases: { "*": { host: pg.host, port: pg.port, password: pg.password } },
  };
}

export function variantAvailable(variant: PgbunVariant): boolean {
  return variant !== "audit-log" || existsSync(AUDIT_LOG_EXAMPLE);
}

/** Starts one pgbun process (bin/pgbun.ts start --config <json>) on a free port; stopped at cleanup. */
export async function startPgbunVariant(variant: PgbunVariant, pg: TestPostgres, s: PgbunSettings): Promise<TestPgbun> {
  const settings = variant === "metrics" ? { ...s, statsPort: await freePort() } : s;
  const instance = await startPgbun({ config: pgbunConfig(variant, pg, settings), pg, timeoutMs: 30_000, ...(s.entry ? { entry: s.entry } : {}) });
  const scraper = variant === "metrics" ? startScraper(`http://127.0.0.1:${settings.statsPort}/metrics`) : undefined;
  const stop = instance.stop.bind(instance);
  instance.stop = async (signal) => {
    scraper?.stop();
    return stop(signal);
  };
  onCleanup(async () => {
    await instance.stop("SIGQUIT");
  });
  return instance;
}

/**
 * GETs `url` 10 times a second for the instance's life (what a Prometheus server scraping every 100 ms costs the
 * pooler), reading each body in full; one request at a time, so a slow answer delays the next instead of piling up.
 */
export function startScraper(url: string, everyMs = 100): { stop(): void; scrapes(): number } {
  let stopped = false;
  let count = 0;
  void (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const res = await fetch(url);
        await res.text();
        if (res.ok) count++;
      } catch {
        // the pooler is starting or stopping: try again at the next tick
      }
      await Bun.sleep(Math.max(0, everyMs - (performance.now() - started)));
    }
  })();
  return { stop: () => void (stopped = true), scrapes: () => count };
}
