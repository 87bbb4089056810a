// pgbun:backoff with a real PostgreSQL: failed server logins retried per pool, not per client (issue 12, item 2).
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { closeAfterEach, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { backoffDelay } from "../../plugins/backoff/index.ts";
import type { PoolApi } from "../../plugin-sdk/index.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();

beforeAll(async () => {
  await pg.psql(`CREATE ROLE limited LOGIN CONNECTION LIMIT 2 PASSWORD 'limited-pw'; GRANT ALL ON DATABASE app TO limited`);
  await pg.psql(`CREATE ROLE wrongpw LOGIN PASSWORD 'right-pw'`);
});

/** A test pooler whose every server login is as `user` with `password` (clients log in as postgres, trusted). */
async function pooler(user: string, password: string, settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port },
    settings: { pool_mode: "transaction", default_pool_size: 10, ...settings },
    databases: { "*": { host: pg.host, port: pg.port, user, password } },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler) => track(await pgConnect({ host: p.host, port: p.port }), (c) => c.end());

describe("delays", () => {
  test("exponential from 100 ms, capped, with jitter in the upper half", () => {
    expect(backoffDelay(1, 100, 15_000, () => 1)).toBe(100);
    expect(backoffDelay(3, 100, 15_000, () => 1)).toBe(400);
    expect(backoffDelay(3, 100, 15_000, () => 0)).toBe(200);
    expect(backoffDelay(40, 100, 15_000, () => 1)).toBe(15_000);
  });
});

describe("a failed extra login costs waiters nothing while the pool has working servers", () => {
  test("CONNECTION LIMIT 2 behind a pool of 10 under 10 concurrent clients: no client fails", async () => {
    const p = await pooler("limited", "limited-pw");
    const clients = [];
    for (let i = 0; i < 10; i++) clients.push(await connect(p));
    const failures: string[] = [];
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        clients.map((c) => c.query("SELECT pg_sleep(0.05)").catch((err: Error) => void failures.push(err.message))),
      );
    }
    expect(failures).toEqual([]);
    // PostgreSQL never had more than its limit, and pgbun kept the two it got
    expect(Number(await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = 'limited'`))).toBeLessThanOrEqual(2);
  });
});

describe("a pool with no working server", () => {
  test("wrong server password: clients get PostgreSQL's 28P01 at once, and PostgreSQL sees a handful of attempts", async () => {
    const logBefore = readFileSync(pg.logFile, "utf8").length;
    const p = await pooler("wrongpw", "not-the-password");
    const started = Date.now();
    const errors: Array<{ code?: string; ms: number }> = [];
    // 10 clients trying again and again for 6 s
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (Date.now() - started < 6_000) {
          const t = Date.now();
          const err = await rejection(pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }));
          errors.push({ code: err.code, ms: Date.now() - t });
          await Bun.sleep(50);
        }
      }),
    );
    expect(errors.length).toBeGreaterThan(50);
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(["28P01"]));
    // refused from the cached failure, not after waiting for query_wait_timeout
    expect(Math.max(...errors.map((e) => e.ms))).toBeLessThan(2_000);
    const log = readFileSync(pg.logFile, "utf8").slice(logBefore);
    const attempts = log.match(/password authentication failed for user "wrongpw"/g)?.length ?? 0;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(3);
    const [pool] = [...(p.core.capability("pool") as PoolApi).pools()];
    expect(pool!.health.state).toBe("unhealthy");
    expect(pool!.health.lastError).toContain("password authentication failed");
  });
});

describe("PostgreSQL down (last: it stops the file's PostgreSQL)", () => {
  test("a waiter gets the connect failure at query_wait_timeout, not a bare timeout; a restart is found within 2 s", async () => {
    const p = await pooler("postgres", pg.password, { query_wait_timeout: 2 });
    const c = await connect(p);
    await c.query("SELECT 1");
    await pg.stopServer();
    try {
      // its idle server died with PostgreSQL: the query waits for a new one, which cannot log in
      const started = Date.now();
      const err = await rejection(c.query("SELECT 1"));
      const waited = Date.now() - started;
      expect(err.message).toMatch(/^server login failed: /);
      expect(waited).toBeGreaterThan(1_000);
      expect(waited).toBeLessThan(2_500);
      const [pool] = [...(p.core.capability("pool") as PoolApi).pools()];
      expect(pool!.health.state).toBe("unhealthy");
      // attempts while down were spaced, not one per client or per janitor tick
      expect(pool!.health.consecutiveFailures).toBeLessThan(8);
    } finally {
      await pg.startServer();
    }
    const back = Date.now();
    const d = track(await pgConnect({ host: p.host, port: p.port }), (c) => c.end());
    expect((await d.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    expect(Date.now() - back).toBeLessThan(2_000);
  });
});
