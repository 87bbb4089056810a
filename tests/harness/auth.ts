// Auth test helpers: a scratch folder for auth files, and logins by pg, postgres.js and psql giving "ok" or the refusal.
import { afterAll, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client, ClientConfig } from "pg";
import postgres from "postgres";
import { findBinary, firstValue, pgConnect, type Endpoint } from "./fixtures.ts";

/** A scratch folder for a test file's auth_file and auth_hba_file, removed after its tests. */
export function authDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pgbun-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The one answer to a wrong password and to an unknown user, as the logins below give it. */
export const passwordFailed = (user: string) => `28P01 password authentication failed for user "${user}"`;

/** "ok" when `attempt` succeeds, else the error's SQLSTATE and message (a failed check inside counts as a refusal). */
export async function loginOutcome(attempt: () => Promise<unknown>): Promise<string> {
  try {
    await attempt();
    return "ok";
  } catch (err) {
    const e = err as { code?: string; message: string };
    return `${e.code} ${e.message}`;
  }
}

const selectOne = async (c: Client) => expect(await firstValue(c, "SELECT 1")).toBe(1);

/** node-postgres logs in to `to` and runs `check` (SELECT 1 gives 1 by default): "ok" or SQLSTATE and message. */
export function pgLogin(to: Endpoint, config: ClientConfig, check: (c: Client) => Promise<unknown> = selectOne, options?: { ignoreErrors?: boolean }): Promise<string> {
  return loginOutcome(async () => {
    const c = await pgConnect(to, config, options);
    try {
      await check(c);
    } finally {
      await c.end();
    }
  });
}

/** postgres.js (one connection, database app) logs in and runs `check` (SELECT 1 by default): "ok" or SQLSTATE and message. */
export async function jsLogin(
  to: Endpoint,
  options: { user: string; password: string; connection?: Record<string, string> },
  check: (sql: postgres.Sql) => Promise<unknown> = (sql) => sql`SELECT 1`,
): Promise<string> {
  const sql = postgres({ host: to.host, port: to.port, database: "app", max: 1, onnotice: () => undefined, connect_timeout: 10, ...options });
  try {
    return await loginOutcome(() => check(sql));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** psql -X with `args` (connection options, then -Atc and a query) and PGPASSWORD: its exit code and output. */
export async function psql(args: string[], password: string): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([findBinary("psql"), "-X", ...args], {
    env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "10", LANG: "C", LC_ALL: "C" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

/** psql -X with `args` and PGPASSWORD: "ok", or psql's output and error text. */
export async function psqlLogin(args: string[], password: string): Promise<string> {
  const r = await psql(args, password);
  return r.code === 0 ? "ok" : `${r.out}${r.err}`.trim();
}
