// pgbun:pool's per-transaction hand-over: the settings it keeps per configuration and the cases its short paths must not take.
import { describe, expect, test } from "bun:test";
import type { PoolApi, Settings } from "../../plugin-sdk/index.ts";
import { answerInternal, applyPlugin, settle, type FakeClient, type FakeServer, type TestApi } from "../../plugin-sdk/testing.ts";
import poolPlugin from "../../plugins/pool/index.ts";

function pool(settings: Partial<Settings>): Promise<TestApi> {
  return applyPlugin(poolPlugin(), { settings: { pool_mode: "transaction", ...settings } });
}

async function login(t: TestApi, user = "app", database = "db"): Promise<FakeClient> {
  const c = t.client({ user, database, state: "login" });
  expect(await t.hooks.authenticated.promise(c)).toBeUndefined();
  c.state = "active";
  return c;
}

/** Two servers of one pool, both idle, s1 released first. */
async function twoIdle(t: TestApi): Promise<[FakeClient, FakeServer, FakeServer]> {
  const [c1, c2] = [await login(t), await login(t)];
  t.acquireServer(c1);
  t.acquireServer(c2);
  await settle();
  const [s1, s2] = [c1.server!, c2.server!];
  t.api.releaseServer(c1, s1, "transaction");
  t.api.releaseServer(c2, s2, "transaction");
  return [c1, s1, s2];
}

describe("the hand-over's settings follow the configuration in force", () => {
  test("server_lifetime shortened by a reload: an idle server past it is closed, not handed out", async () => {
    const t = await pool({ default_pool_size: 2, server_lifetime: 3600 });
    const c = await login(t);
    const old = t.servers[0]!;
    const s = t.acquireServer(c)!;
    expect(s).toBe(old);
    t.api.releaseServer(c, s, "transaction");
    t.now += 5_000;
    t.reload({ settings: { server_lifetime: 2 } });
    expect(t.acquireServer(c)).toBeNull();
    expect(old.closedReason).toBe("stale idle server");
    await settle();
    expect(c.server).not.toBe(old);
    expect(c.server).not.toBeNull();
  });

  test("server_lifetime shortened by a reload: a server past it that is released is closed, not taken back", async () => {
    const t = await pool({ default_pool_size: 2, server_lifetime: 3600 });
    const c = await login(t);
    const s = t.acquireServer(c)!;
    t.now += 5_000;
    t.reload({ settings: { server_lifetime: 2 } });
    t.api.releaseServer(c, s, "transaction");
    expect(s.state).toBe("closed");
    expect(s.closedReason).toBe("no pool took the released server");
  });

  test("server_lifetime 0 (PgBouncer's single use): a server that served nobody yet is handed out however old; at its release it closes", async () => {
    const t = await pool({ default_pool_size: 2, server_lifetime: 0 });
    const c = await login(t);
    t.now += 10 * 86_400_000;
    const s = t.acquireServer(c)!;
    expect(s).toBe(t.servers[0]!);
    t.api.releaseServer(c, s, "transaction");
    expect(s.state).toBe("closed");
  });

  test("server_round_robin turned on by a reload: the oldest idle server goes first", async () => {
    const t = await pool({ default_pool_size: 2, server_round_robin: false });
    const [c1, s1, s2] = await twoIdle(t);
    const lifo = t.acquireServer(c1)!;
    expect(lifo).toBe(s2);
    t.api.releaseServer(c1, lifo, "transaction"); // idle: [s1, s2]
    t.reload({ settings: { server_round_robin: true } });
    expect(t.acquireServer(c1)).toBe(s1);
  });

  test("server_reset_query_always turned on by a reload: a transaction-mode release runs the reset first", async () => {
    const t = await pool({ default_pool_size: 1, server_reset_query: "DISCARD ALL", server_reset_query_always: false });
    const c = await login(t);
    let s = t.acquireServer(c)!;
    t.api.releaseServer(c, s, "transaction");
    expect(s.ran).toEqual([]);
    expect(s.state).toBe("idle");
    s = t.acquireServer(c)!;
    t.reload({ settings: { server_reset_query_always: true } });
    t.api.releaseServer(c, s, "transaction");
    expect(s.ran).toEqual(["DISCARD ALL"]);
    expect(s.state).toBe("tested");
  });

  test("server_reset_query emptied by a reload: session mode releases without a reset", async () => {
    const t = await applyPlugin(poolPlugin(), { settings: { pool_mode: "session", default_pool_size: 1, server_reset_query: "DISCARD ALL" } });
    const c = await login(t);
    let s = t.acquireServer(c)!;
    t.api.releaseServer(c, s, "client-close");
    expect(s.ran).toEqual(["DISCARD ALL"]);
    answerInternal(s, []);
    expect(s.state).toBe("idle");
    s = t.acquireServer(c)!;
    s.ran.length = 0;
    t.reload({ settings: { server_reset_query: "" } });
    t.api.releaseServer(c, s, "client-close");
    expect(s.ran).toEqual([]);
    expect(s.state).toBe("idle");
  });
});

describe("a released server goes to a waiting client before the idle stack", () => {
  test("the oldest client still waiting gets it; one that left meanwhile is passed over", async () => {
    const t = await pool({ default_pool_size: 1 });
    const [c1, gone, c3] = [await login(t), await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    expect(t.acquireServer(gone)).toBeNull();
    expect(t.acquireServer(c3)).toBeNull();
    gone.state = "closed"; // left without its clientClosed yet: still in the queue
    t.api.releaseServer(c1, s, "transaction");
    expect(c3.server).toBe(s);
    expect(s.state).toBe("active");
  });

  test("with nobody waiting it goes idle, and the next client takes it at once", async () => {
    const t = await pool({ default_pool_size: 1 });
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    t.api.releaseServer(c1, s, "transaction");
    expect(s.state).toBe("idle");
    expect(c2.server).toBeNull();
    expect(t.acquireServer(c2)).toBe(s);
  });
});

describe("checkServerDue taps made after the pool", () => {
  test("a server a late tap calls due is checked before hand-out; one it does not is handed out at once", async () => {
    const t = await pool({ default_pool_size: 2 });
    const c = await login(t);
    const s = t.servers[0]!;
    expect(t.acquireServer(c)).toBe(s); // no checkServer tap yet
    t.api.releaseServer(c, s, "transaction");
    let due = true;
    const checked: unknown[] = [];
    t.hooks.checkServer.tapPromise("late-check", async (server) => {
      checked.push(server);
      return undefined;
    });
    t.hooks.checkServerDue.tap("late-check", () => (due ? true : undefined));
    expect(t.acquireServer(c)).toBeNull();
    expect(s.state).toBe("tested");
    await settle();
    expect(checked).toEqual([s]);
    expect(c.server).toBe(s);
    t.api.releaseServer(c, s, "transaction");
    due = false;
    expect(t.acquireServer(c)).toBe(s);
    expect(checked.length).toBe(1);
  });
});

describe("a pool dropped by autodb_idle_timeout", () => {
  test("is no client's pool any more and takes no server back; the next login gets a new pool", async () => {
    const t = await applyPlugin(poolPlugin(), {
      settings: { pool_mode: "transaction", default_pool_size: 1, autodb_idle_timeout: 1 },
      databases: { "*": { host: "127.0.0.1", port: 5432 } },
    });
    const c = await login(t, "app", "auto1");
    const pools = t.api.capability<PoolApi>("pool")!;
    const first = pools.poolOf(c)!;
    expect(first).toBeDefined();
    const s = t.servers[0]!;
    c.close("done");
    t.tick(t.now + 10);
    t.tick(t.now + 2_000);
    expect([...pools.pools()]).toEqual([]);
    expect(s.closedReason).toBe("autodb_idle_timeout");
    expect(pools.poolOf(c)).toBeUndefined();
    // a server of that pool offered back (as a cancel's end does) is refused: it closes
    expect(t.hooks.serverReleased.call(t.server({ pool: first }), null as never, "plugin")).toBeUndefined();
    const c2 = await login(t, "app", "auto1");
    expect(pools.poolOf(c2)).not.toBe(first);
  });
});
