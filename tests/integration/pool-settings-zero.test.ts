// server_lifetime = 0 and reserve_pool_timeout = 0 mean what they mean in PgBouncer: "used once" and "reserve pool off".
import { expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import type { TestPgbun } from "../harness/pgbun.ts";
import { pgConnect, usePostgres, waitFor, withPgbun } from "../harness/fixtures.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();

function withTxPgbun(settings: Record<string, unknown>, body: (p: TestPgbun) => Promise<void>): Promise<void> {
  return withPgbun(pg, { pgbun: { pool_mode: "transaction", log_level: "warn", ...settings } }, (f) => body(f.pb));
}

/** pgbun's server connections, as PostgreSQL counts them (the psql asking is not one). */
async function backendPids(): Promise<number[]> {
  const out = await pg.psql("SELECT pid FROM pg_stat_activity WHERE usename = 'postgres' AND datname = 'app' AND pid <> pg_backend_pid()");
  return out.split("\n").filter((l) => l.trim() !== "").map(Number);
}

const pidOf = async (c: Client): Promise<number> => (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;

test("server_lifetime 0: a server serves one transaction and is closed at its release, not put back idle", async () => {
  await withTxPgbun({ default_pool_size: 2, server_lifetime: 0 }, async (p) => {
    const c = await pgConnect(p, { database: "app", user: "postgres" });
    const first = await pidOf(c);
    const second = await pidOf(c);
    expect(second).not.toBe(first);
    // closed, not idle: PostgreSQL no longer has the first backend
    await waitFor("the first server's backend to end", async () => !(await backendPids()).includes(first));
    await c.end();
  });
});

test("server_lifetime 0: the server logged in for a client's welcome serves that client's first transaction", async () => {
  await withTxPgbun({ default_pool_size: 1, server_lifetime: 0 }, async (p) => {
    const c = await pgConnect(p, { database: "app", user: "postgres" });
    const [welcomeServer] = await backendPids();
    expect(await pidOf(c)).toBe(welcomeServer!);
    await c.end();
  });
});

test("reserve_pool_timeout 0: the reserve pool is never used, however long clients wait", async () => {
  await withTxPgbun({ default_pool_size: 1, reserve_pool_size: 2, reserve_pool_timeout: 0, query_wait_timeout: 20 }, async (p) => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => pgConnect(p, { database: "app", user: "postgres" })));
    await a!.query("BEGIN");
    await a!.query("SELECT 1");
    // b and c queue behind a's transaction; PgBouncer (objects.c: `if (cf_res_pool_timeout && ...)`) opens no reserve server
    const queued = [b!, c!].map(async (x) => {
      await x.query("BEGIN");
      await x.query("SELECT 1");
      await x.query("COMMIT");
    });
    await Bun.sleep(1_500);
    expect((await backendPids()).length).toBe(1);
    await a!.query("COMMIT");
    await Promise.all(queued);
    expect((await backendPids()).length).toBe(1);
    await Promise.all([a!, b!, c!].map((x) => x.end()));
  });
});
