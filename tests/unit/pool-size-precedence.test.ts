// A pool's pool_size and reserve_pool_size: the [users] entry's first, then the [databases] entry's, then the global ones.
import { describe, expect, test } from "bun:test";
import type { Settings } from "../../plugin-sdk/index.ts";
import { applyPlugin, settle, type FakeClient, type TestApi, type TestApiOptions } from "../../plugin-sdk/testing.ts";
import poolPlugin from "../../plugins/pool/index.ts";
import { poolSizesOf } from "../../plugins/pool/sizes.ts";

function pool(settings: Partial<Settings>, options: TestApiOptions = {}): Promise<TestApi> {
  return applyPlugin(poolPlugin(), { settings: { pool_mode: "transaction", ...settings }, ...options });
}

async function login(t: TestApi, user = "app", database = "db"): Promise<FakeClient> {
  const c = t.client({ user, database, state: "login" });
  expect(await t.hooks.authenticated.promise(c)).toBeUndefined();
  c.state = "active";
  return c;
}

/** `n` clients of one pool, all asking for a server at once; resolves once the logins they started are done. */
async function crowd(t: TestApi, n: number, user = "app"): Promise<FakeClient[]> {
  const cs: FakeClient[] = [];
  for (let i = 0; i < n; i++) cs.push(await login(t, user));
  for (const c of cs) t.acquireServer(c);
  await settle();
  return cs;
}

const settings = { default_pool_size: 20, min_pool_size: 0, reserve_pool_size: 0 };

describe("poolSizesOf, PgBouncer's pool_pool_size and pool_res_pool_size (src/server.c)", () => {
  test("the [users] entry wins over the [databases] entry, which wins over the global settings", () => {
    const db = { pool_size: 10, reserve_pool_size: 4, min_pool_size: 2 };
    expect(poolSizesOf(db, { pool_size: 3, reserve_pool_size: 1 }, settings, 1)).toEqual({ size: 3, minSize: 2, reserveSize: 1 });
    expect(poolSizesOf(db, {}, settings, 1)).toEqual({ size: 10, minSize: 2, reserveSize: 4 });
    expect(poolSizesOf(db, undefined, settings, 1)).toEqual({ size: 10, minSize: 2, reserveSize: 4 });
    expect(poolSizesOf({}, undefined, { ...settings, min_pool_size: 1, reserve_pool_size: 5 }, 1)).toEqual({ size: 20, minSize: 1, reserveSize: 5 });
  });

  test("a [users] value of 0 is a value, not unset; min_pool_size stays the database's", () => {
    expect(poolSizesOf({ pool_size: 10, reserve_pool_size: 4 }, { reserve_pool_size: 0 }, settings, 1)).toEqual({ size: 10, minSize: 0, reserveSize: 0 });
  });

  test("each worker gets its share of the size that won", () => {
    expect(poolSizesOf({ pool_size: 10 }, { pool_size: 3 }, settings, 2)).toEqual({ size: 2, minSize: 0, reserveSize: 0 });
  });
});

describe("the pool plugin opens servers up to the size PgBouncer would use", () => {
  test("[users] pool_size 3 with the [databases] entry's pool_size 10: three servers, the other clients wait", async () => {
    const t = await pool(settings, { databases: { db: { pool_size: 10 } }, users: { app: { pool_size: 3 } } });
    const cs = await crowd(t, 5);
    expect(t.opened.length).toBe(3);
    expect(cs.filter((c) => c.state === "waiting").length).toBe(2);
  });

  test("another user of the same database, with no [users] pool_size, gets the [databases] entry's pool_size", async () => {
    const t = await pool(settings, { databases: { db: { pool_size: 4 } }, users: { app: { pool_size: 1 }, other: { max_user_connections: 0 } } });
    await crowd(t, 6, "other");
    expect(t.opened.length).toBe(4);
  });

  test("[users] reserve_pool_size 1 with the [databases] entry's 4: one reserve server for a long wait", async () => {
    const t = await pool({ ...settings, reserve_pool_timeout: 1 }, { databases: { db: { pool_size: 1, reserve_pool_size: 4 } }, users: { app: { reserve_pool_size: 1 } } });
    await crowd(t, 5);
    expect(t.opened.length).toBe(1);
    for (let i = 1; i <= 5; i++) {
      t.tick(t.now + 2_000);
      await settle();
    }
    expect(t.opened.length).toBe(2);
  });

  test("a reload that changes the [users] pool_size applies it to the existing pool", async () => {
    const t = await pool(settings, { databases: { db: { pool_size: 10 } }, users: { app: { pool_size: 1 } } });
    const cs = await crowd(t, 4);
    expect(t.opened.length).toBe(1);
    t.reload({ users: { app: { pool_size: 2 } } });
    const waiting = cs.filter((c) => c.state === "waiting");
    const holder = cs.find((c) => c.server !== null)!;
    t.api.releaseServer(holder, holder.server!, "transaction");
    // the released server went to a waiter; one more client asking may now open the second server
    t.acquireServer(holder);
    await settle();
    expect(t.opened.length).toBe(2);
    expect(waiting.length).toBe(3);
  });
});
