// The throwaway PostgreSQL the benchmark runs against: harness instance, raised max_connections, pgbench tables.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startPostgres, TEST_DATABASE, type TestPostgres } from "../tests/harness/postgres.ts";
import { onCleanup, trackProcess } from "./processes.ts";

export const BENCH_DATABASE = TEST_DATABASE;

export interface BenchPostgres {
  pg: TestPostgres;
  /** pgbench of the same installation as the server when there is one, else the one on PATH. */
  pgbench: string;
  maxConnections: number;
  version: string;
}

/** Environment for pgbench/psql against the throwaway server: its password, no inherited PG* settings. */
export function pgClientEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("PG")) env[key] = value;
  }
  return { ...env, PGPASSWORD: "postgres", PGCONNECT_TIMEOUT: "30", LANG: "C", LC_ALL: "C" };
}

function findPgbench(binDir: string): string {
  const sibling = join(binDir, "pgbench");
  if (existsSync(sibling)) return sibling;
  const onPath = Bun.which("pgbench");
  if (!onPath) throw new Error("pgbench not found (Debian: apt-get install -y postgresql-client)");
  return onPath;
}

async function run(cmd: string[], what: string): Promise<string> {
  const proc = trackProcess(Bun.spawn(cmd, { env: pgClientEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${cmd.join(" ")}\n${out}${err}`);
  return out + err;
}

/**
 * Starts PostgreSQL (trust auth over TCP, so direct connections pay no SCRAM that the poolers' trust logins skip),
 * raises max_connections so 1000 direct clients fit beside the poolers' pools, and runs `pgbench -i -s scale`.
 */
export async function startBenchPostgres(opts: { maxConnections: number; scale: number }): Promise<BenchPostgres> {
  const pg = await startPostgres({ passwordAuth: "trust" });
  onCleanup(() => pg.stop());
  await pg.psql(`ALTER SYSTEM SET max_connections = ${opts.maxConnections}`);
  await pg.psql(`ALTER SYSTEM SET shared_buffers = '256MB'`);
  await pg.stopServer();
  await pg.startServer();
  const pgbench = findPgbench(pg.binDir);
  await run([pgbench, "-i", "-q", "-s", String(opts.scale), "-h", pg.host, "-p", String(pg.port), "-U", pg.superuser, BENCH_DATABASE], "pgbench -i");
  const version = (await pg.psql("SHOW server_version")).trim();
  return { pg, pgbench, maxConnections: Number(await pg.psql("SHOW max_connections")), version };
}
