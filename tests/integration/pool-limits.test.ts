// Pool sizing and limits: min_pool_size, reserve pool, max_db/user_connections, server_lifetime, login timeout, SIGINT.
import { expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { eventually, pgConnect, usePostgres, withPgbun } from "../harness/fixtures.ts";

setDefaultTimeout(30_000);

const pg = usePostgres((db) =>
  db.psql("DROP ROLE IF EXISTS limits_user; CREATE ROLE limits_user LOGIN PASSWORD 'postgres'; GRANT ALL ON DATABASE app TO limits_user"),
);

/** One pgbun in transaction mode (log_level warn) with `settings`, for the length of `body`. */
function withTxPgbun(settings: Record<string, unknown>, body: (p: TestPgbun) => Promise<void>): Promise<void> {
  return withPgbun(pg, { pgbun: { pool_mode: "transaction", log_level: "warn", ...settings } }, (f) => body(f.pb));
}

function connect(p: TestPgbun, database = "app", user = "postgres"): Promise<Client> {
  return pgConnect(p, { database, user });
}

/** Backends PostgreSQL has for a user (pgbun's server connections), counted directly. */
async function backends(user = "postgres", db = "app"): Promise<number> {
  const out = await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${user}' AND datname = '${db}' AND pid <> pg_backend_pid()`);
  return Number(out.trim());
}

test("min_pool_size: the pool opens servers up to the minimum without any query", async () => {
  await withTxPgbun({ default_pool_size: 5, min_pool_size: 3 }, async (p) => {
    const c = await connect(p);
    expect(await eventually(async () => (await backends()) >= 3, 5_000)).toBe(true);
    expect(await backends()).toBeLessThanOrEqual(5);
    await c.end();
  });
});

test("reserve_pool_size: a client waiting longer than reserve_pool_timeout gets an extra server", async () => {
  await withTxPgbun({ default_pool_size: 1, reserve_pool_size: 1, reserve_pool_timeout: 0.5, query_wait_timeout: 10 }, async (p) => {
    const a = await connect(p);
    const b = await connect(p);
    await a.query("BEGIN");
    await a.query("SELECT 1");
    const t0 = Date.now();
    const r = await b.query("SELECT 'from the reserve' AS v");
    const waited = Date.now() - t0;
    expect(r.rows[0].v).toBe("from the reserve");
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(5_000);
    expect(await backends()).toBe(2);
    await a.query("COMMIT");
    await a.end();
    await b.end();
  });
});

test("max_db_connections caps server connections to a database across users' pools", async () => {
  await withTxPgbun({ default_pool_size: 5, max_db_connections: 1, query_wait_timeout: 1 }, async (p) => {
    const a = await connect(p, "app", "postgres");
    const b = await connect(p, "app", "limits_user");
    await a.query("BEGIN");
    await a.query("SELECT 1");
    const err = await b.query("SELECT 1").then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain("query_wait_timeout");
    await a.query("COMMIT");
    await a.end();
  });
});

test("max_user_connections caps a user's server connections across databases", async () => {
  await withTxPgbun({ default_pool_size: 5, max_user_connections: 1, query_wait_timeout: 1 }, async (p) => {
    const a = await connect(p, "app");
    const b = await connect(p, "postgres");
    await a.query("BEGIN");
    await a.query("SELECT 1");
    const err = await b.query("SELECT 1").then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain("query_wait_timeout");
    await a.query("COMMIT");
    // once the first server is free it is closed or reused within the cap, and the other database can be served
    await a.end();
    const c = await connect(p, "postgres");
    expect(await eventually(async () => (await c.query("SELECT 1 AS one").catch(() => null))?.rows[0]?.one === 1, 5_000)).toBe(true);
    await c.end();
  });
});

test("server_lifetime: an idle server older than the lifetime is replaced", async () => {
  await withTxPgbun({ default_pool_size: 1, server_lifetime: 1 }, async (p) => {
    const c = await connect(p);
    const first = (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await Bun.sleep(1_700);
    const second = (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    expect(second).not.toBe(first);
    await c.end();
  });
});

test("client_login_timeout: a connection that never sends a startup packet is closed", async () => {
  await withTxPgbun({ client_login_timeout: 1 }, async (p) => {
    let closed = false;
    const s = await Bun.connect({ hostname: "127.0.0.1", port: p.port, socket: { data() {}, close() { closed = true; } } });
    expect(await eventually(async () => closed, 4_000)).toBe(true);
    s.end();
  });
});

test("SIGINT waits until servers are released: a client inside a transaction can still commit, then pgbun exits", async () => {
  const p = await startPgbun({ pg, config: { pgbun: { pool_mode: "transaction", log_level: "info" } } });
  const c = await connect(p);
  await c.query("BEGIN");
  await c.query("SELECT 1");
  p.proc.kill("SIGINT");
  await Bun.sleep(300);
  expect(p.proc.exitCode).toBeNull();
  expect((await c.query("SELECT 42 AS v")).rows[0].v).toBe(42);
  await c.query("COMMIT");
  const code = await Promise.race([p.proc.exited, Bun.sleep(5_000).then(() => "still running")]);
  expect(code).not.toBe("still running");
  await c.end().catch(() => {});
});
