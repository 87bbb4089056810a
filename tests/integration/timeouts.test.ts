// PgBouncer 1.25's newer timeouts with real clients: transaction_timeout and query_wait_notify (issue 12, item 5).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { closeAfterEach, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();

async function pooler(settings: Record<string, unknown>): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 1, ...settings },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler) => track(await pgConnect({ host: p.host, port: p.port }), (c) => c.end());
const idleInTransaction = async () =>
  Number(await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND state LIKE 'idle in transaction%'`));

describe("transaction_timeout", () => {
  test("a transaction open longer is ended with FATAL 25P04; its server is not handed to the next client mid-transaction", async () => {
    const p = await pooler({ transaction_timeout: 1 });
    const a = await connect(p);
    await a.query("BEGIN");
    await a.query("CREATE TEMP TABLE left_behind (x int)");
    await Bun.sleep(2_000);
    const err = await rejection(a.query("SELECT 1"));
    expect(err.message).toMatch(/transaction_timeout|Connection terminated|not queryable/);
    // the next client of the one-server pool gets a clean server, outside any transaction
    const b = await connect(p);
    const r = await b.query("SELECT now() = statement_timestamp() AS fresh, to_regclass('left_behind') IS NULL AS gone");
    expect(r.rows[0]).toEqual({ fresh: true, gone: true });
    expect(await idleInTransaction()).toBe(0);
  });

  test("the client is told why: FATAL with SQLSTATE 25P04 and the setting's name", async () => {
    const p = await pooler({ transaction_timeout: 1 });
    const a = track(await pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }), (c) => c.end());
    const fatal = new Promise<{ code?: string; message: string }>((resolve) => a.on("error", (e: Error & { code?: string }) => resolve(e)));
    await a.query("BEGIN");
    const e = await fatal;
    expect(e.code).toBe("25P04");
    expect(e.message).toBe("transaction_timeout");
  });

  test("a long autocommit statement counts; many short transactions in a row do not add up", async () => {
    const p = await pooler({ transaction_timeout: 1, default_pool_size: 2 });
    const busy = await connect(p);
    const started = Date.now();
    let done = 0;
    while (Date.now() - started < 2_500) {
      await busy.query("BEGIN");
      await busy.query("SELECT pg_sleep(0.05)");
      await busy.query("COMMIT");
      done++;
    }
    expect(done).toBeGreaterThan(10);
    const slow = await connect(p);
    const err = await rejection(slow.query("SELECT pg_sleep(3)"));
    expect(err.message).toMatch(/transaction_timeout|Connection terminated|not queryable/);
  });

  test("0 (the default) times nothing", async () => {
    const p = await pooler({});
    const a = await connect(p);
    await a.query("BEGIN");
    await Bun.sleep(1_500);
    expect((await a.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await a.query("COMMIT");
  });
});

describe("query_wait_notify", () => {
  test("a client queued longer gets one NOTICE, then its answer once a server is free", async () => {
    const p = await pooler({ query_wait_notify: 1 });
    const holder = await connect(p);
    await holder.query("BEGIN"); // the pool's one server
    // logs in on the welcome the holder's server gave, and queues at its first query
    const waiter = await connect(p);
    const notices: string[] = [];
    waiter.on("notice", (n) => notices.push(n.message ?? ""));
    const answer = waiter.query("SELECT 'served' AS v");
    await Bun.sleep(2_500);
    expect(notices).toEqual(["No server connection available in postgres backend, client being queued"]);
    await holder.query("COMMIT");
    expect((await answer).rows[0].v).toBe("served");
    expect(notices.length).toBe(1);
  });

  test("a client served before query_wait_notify hears nothing", async () => {
    const p = await pooler({ query_wait_notify: 2 });
    const holder = await connect(p);
    await holder.query("BEGIN");
    const waiter = await connect(p);
    const notices: string[] = [];
    waiter.on("notice", (n) => notices.push(n.message ?? ""));
    const answer = waiter.query("SELECT 1");
    await Bun.sleep(500);
    await holder.query("COMMIT");
    await answer;
    await Bun.sleep(2_000);
    expect(notices).toEqual([]);
  });
});

describe("transaction_timeout in [users]", () => {
  test("a user's own transaction_timeout applies with the global one off; another user is not timed", async () => {
    const p = track(
      await startTestPooler({
        upstream: { host: pg.host, port: pg.port, password: pg.password },
        settings: { pool_mode: "transaction", default_pool_size: 2 },
        // every server login as the superuser: pgbun tells the two users apart by the client's name alone
        databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } },
        users: { postgres: { transaction_timeout: 1 } },
      }),
      (p) => p.stop(),
    );
    const timed = await connect(p);
    await timed.query("BEGIN");
    await Bun.sleep(2_000);
    expect((await rejection(timed.query("SELECT 1"))).message).toMatch(/transaction_timeout|Connection terminated|not queryable/);
    const other = track(await pgConnect({ host: p.host, port: p.port }, { user: "someone_else" }), (c) => c.end());
    await other.query("BEGIN");
    await Bun.sleep(1_800);
    expect((await other.query("SELECT 1 AS one")).rows[0].one).toBe(1);
  });
});
