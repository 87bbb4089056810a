// Unit tests of pgbun:health-check with pgbun:pool on the SDK's fakes: when a check is due, what it sends, failures, no answer, the background sweep.
import { describe, expect, test } from "bun:test";
import type { PoolApi, PoolInfo, Settings } from "../../plugin-sdk/index.ts";
import { answerInternal, applyPlugin, settle, type FakeClient, type FakeServer, type TestApi } from "../../plugin-sdk/testing.ts";
import poolPlugin from "../../plugins/pool/index.ts";
import healthCheckPlugin from "../../plugins/health-check/index.ts";

async function world(settings: Partial<Settings>): Promise<TestApi> {
  const t = await applyPlugin(poolPlugin(), { settings: { pool_mode: "transaction", default_pool_size: 2, ...settings } });
  await t.apply(healthCheckPlugin());
  return t;
}

async function login(t: TestApi): Promise<FakeClient> {
  const c = t.client({ user: "app", database: "db", state: "login" });
  expect(await t.hooks.authenticated.promise(c)).toBeUndefined();
  c.state = "active";
  return c;
}

const poolOf = (t: TestApi): PoolInfo => [...t.api.capability<PoolApi>("pool")!.pools()][0]!;

/** One client gets the pool's idle server and gives it back; returns both. */
async function useOnce(t: TestApi): Promise<{ c: FakeClient; s: FakeServer }> {
  const c = await login(t);
  if (t.acquireServer(c) === null) {
    // a check was due (server_check_delay = 0): it passes
    answerInternal(t.servers[0]!, []);
    await settle();
  }
  const s = c.server as FakeServer;
  expect(s).not.toBeNull();
  t.api.releaseServer(c, s, "transaction");
  s.ran.length = 0;
  return { c, s };
}

describe("at hand-out", () => {
  test("a server used within server_check_delay is handed out synchronously, unchecked", async () => {
    const t = await world({ server_check_delay: 30 });
    const { c, s } = await useOnce(t);
    t.now += 29_000;
    expect(t.acquireServer(c)).toBe(s);
    expect(s.ran).toEqual([]);
  });

  test("past server_check_delay it gets server_check_query first (empty: an empty Query), then goes to the client", async () => {
    const t = await world({ server_check_delay: 30 });
    const { c, s } = await useOnce(t);
    t.now += 31_000;
    expect(t.acquireServer(c)).toBeNull();
    expect(s.ran).toEqual([""]);
    answerInternal(s, []);
    await settle();
    expect(c.server).toBe(s);
    expect(poolOf(t).health.state).toBe("healthy");
  });

  test("server_check_delay = 0 checks before every hand-out, with the query configured", async () => {
    const t = await world({ server_check_delay: 0, server_check_query: "SELECT 1" });
    const { c, s } = await useOnce(t);
    expect(t.acquireServer(c)).toBeNull();
    expect(s.ran).toEqual(["SELECT 1"]);
  });

  test("server_check_delay changed by a reload applies to the next hand-out (30 to 0: checked; 0 to 30: not)", async () => {
    const t = await world({ server_check_delay: 30 });
    const { c, s } = await useOnce(t);
    t.reload({ settings: { server_check_delay: 0 } });
    expect(t.acquireServer(c)).toBeNull();
    expect(s.ran).toEqual([""]);
    answerInternal(s, []);
    await settle();
    expect(c.server).toBe(s);
    t.api.releaseServer(c, s, "transaction");
    s.ran.length = 0;
    t.reload({ settings: { server_check_delay: 30 } });
    expect(t.acquireServer(c)).toBe(s);
    expect(s.ran).toEqual([]);
  });

  test("a failed check closes the server, the client gets a new one, and the failure is counted", async () => {
    const t = await world({ server_check_delay: 0 });
    const { c, s } = await useOnce(t);
    expect(t.acquireServer(c)).toBeNull();
    answerInternal(s, { code: "57P01", message: "terminating connection due to administrator command" });
    await settle();
    await settle();
    expect(s.state).toBe("closed");
    // the failure is recorded; the replacement's login then made the pool healthy again
    expect(poolOf(t).health.lastError).toContain("57P01");
    expect(poolOf(t).health.consecutiveFailures).toBe(0);
    expect(poolOf(t).health.state).toBe("healthy");
    // a new server was opened for the client, which is not handed the closed one
    expect(t.opened.length).toBe(2);
    expect(c.server).not.toBe(s);
  });

  test("a check with no answer gives up after server_connect_timeout, on the janitor's tick", async () => {
    const t = await world({ server_check_delay: 0, server_connect_timeout: 5 });
    const { c, s } = await useOnce(t);
    expect(t.acquireServer(c)).toBeNull();
    t.tick(t.now + 4_000);
    await settle();
    expect(s.state).not.toBe("closed");
    t.tick(t.now + 2_000);
    await settle();
    expect(s.state).toBe("closed");
    expect(poolOf(t).health.lastError).toContain("no answer");
  });

  test("a server closing during its check ends the check: the client is not left waiting for it", async () => {
    const t = await world({ server_check_delay: 0 });
    const { c, s } = await useOnce(t);
    expect(t.acquireServer(c)).toBeNull();
    s.close("server closed the connection");
    await settle();
    await settle();
    expect(t.opened.length).toBe(2);
    expect(poolOf(t).health.lastError).toContain("closed during its health check");
  });
});

describe("in the background", () => {
  test("an idle server past server_check_delay is checked with no client, out of the pool meanwhile", async () => {
    const t = await world({ server_check_delay: 10 });
    const { c, s } = await useOnce(t);
    t.tick(t.now + 5_000);
    expect(s.ran).toEqual([]);
    t.tick(t.now + 6_000);
    expect(s.ran).toEqual([""]);
    expect(s.state).toBe("tested");
    // not handed out while checked: the client waits for another
    expect(t.acquireServer(c)).toBeNull();
    answerInternal(s, []);
    await settle();
    expect(c.server).toBe(s);
  });

  test("a server the background check finds broken is closed", async () => {
    const t = await world({ server_check_delay: 10 });
    const { s } = await useOnce(t);
    t.tick(t.now + 11_000);
    answerInternal(s, { code: "08006", message: "connection broken" });
    await settle();
    expect(s.state).toBe("closed");
    expect(poolOf(t).health.consecutiveFailures).toBe(1);
  });
});
