// A [users] entry's pool_size wins over the [databases] entry's, as in PgBouncer (src/server.c pool_pool_size).
import { expect, setDefaultTimeout, test } from "bun:test";
import { pgConnect, usePostgres, waitFor, withPgbun } from "../harness/fixtures.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();

async function backends(): Promise<number> {
  const out = await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgres' AND datname = 'app' AND pid <> pg_backend_pid()");
  return Number(out.trim());
}

test("[users] pool_size 3 with the [databases] entry's pool_size 10: five clients in transactions get three servers", async () => {
  const config = {
    pgbun: { pool_mode: "transaction", log_level: "warn", default_pool_size: 20, query_wait_timeout: 20 },
    databases: { app: { host: pg.host, port: pg.port, password: pg.password, dbname: "app", pool_size: 10 } },
    users: { postgres: { pool_size: 3 } },
  };
  await withPgbun(pg, config, async (f) => {
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => pgConnect(f.pb, { database: "app", user: "postgres" })));
    const done = clients.map(async (c) => {
      await c.query("BEGIN");
      await c.query("SELECT pg_sleep(0.3)");
      await c.query("COMMIT");
    });
    await waitFor("three servers", async () => (await backends()) === 3);
    await Promise.all(done);
    expect(await backends()).toBe(3);
    await Promise.all(clients.map((c) => c.end()));
  });
});
