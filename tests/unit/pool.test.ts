// Unit tests of pgbun:pool on the SDK's fakes: hand-out, queueing, pool size, release, resets and their checks, checkServer, limits.
import { describe, expect, test } from "bun:test";
import type { PoolApi, Server, Settings } from "../../plugin-sdk/index.ts";
import { answerInternal, applyPlugin, settle, type FakeClient, type FakeServer, type TestApi, type TestApiOptions } from "../../plugin-sdk/testing.ts";
import poolPlugin from "../../plugins/pool/index.ts";
import { LEFTOVER_QUERY } from "../../plugins/pool/reset.ts";

/** pgbun:pool applied to a fresh test world with these settings. */
function pool(settings: Partial<Settings>, options: TestApiOptions = {}): Promise<TestApi> {
  return applyPlugin(poolPlugin(), { settings: { pool_mode: "transaction", ...settings }, ...options });
}

/** A client logged in as the core logs one in: the authenticated hook attaches it to its pool (the first opens a server). */
async function login(t: TestApi, user = "app", database = "db"): Promise<FakeClient> {
  const c = t.client({ user, database, state: "login" });
  const refusal = await t.hooks.authenticated.promise(c);
  expect(refusal).toBeUndefined();
  c.state = "active";
  return c;
}

/** The server a client got (it must have one). */
function serverOf(c: FakeClient): FakeServer {
  expect(c.server).not.toBeNull();
  return c.server!;
}

const live = (t: TestApi) => t.servers.filter((s) => s.state !== "closed");
/** The leftover check's answer for a clean session of `user`. */
const cleanRow = (user: string) => [["0", "0", "0", "0", "0", "0", user, user]];

describe("needServer", () => {
  test("the first login opens a server for the pool's parameters; the next client's needServer hands out that idle server", async () => {
    const t = await pool({ default_pool_size: 5 });
    const c = await login(t);
    expect(t.opened.length).toBe(1);
    expect(c.welcomeParams).not.toBeNull();
    const idle = t.servers[0]!;
    expect(idle.state).toBe("idle");
    expect(t.hooks.needServer.call(c)).toBe(idle);
    expect(t.opened.length).toBe(1);
  });

  test("with every server in use, a client is queued and gets the first server released, in order", async () => {
    const t = await pool({ default_pool_size: 1 });
    const [c1, c2, c3] = [await login(t), await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    expect(t.acquireServer(c2)).toBeNull();
    expect(t.acquireServer(c3)).toBeNull();
    expect(c2.state).toBe("waiting");
    await settle();
    expect(t.opened.length).toBe(1); // pool size 1: nothing more opened
    t.api.releaseServer(c1, s, "transaction");
    expect(c2.server).toBe(s);
    expect(c2.state).toBe("active");
    expect(c3.state).toBe("waiting");
    t.api.releaseServer(c2, s, "transaction");
    expect(c3.server).toBe(s);
  });

  test("waiting clients open servers up to default_pool_size, and no further", async () => {
    const t = await pool({ default_pool_size: 3 });
    const cs = [await login(t), await login(t), await login(t), await login(t)];
    for (const c of cs) t.acquireServer(c);
    expect(cs[0]!.server).toBe(t.servers[0]!);
    expect(t.opened.length).toBe(3);
    await settle();
    expect(cs.slice(0, 3).map((c) => c.state)).toEqual(["active", "active", "active"]);
    expect(new Set(cs.slice(0, 3).map(serverOf)).size).toBe(3);
    expect(cs[3]!.state).toBe("waiting");
    expect(t.opened.length).toBe(3);
    expect(live(t).length).toBe(3);
  });

  test("a pool per (database, user): another user's client does not get this pool's idle server", async () => {
    const t = await pool({ default_pool_size: 2 });
    const a = await login(t, "a");
    const b = await login(t, "b");
    expect(t.opened.map((o) => o.target.user)).toEqual(["a", "b"]);
    expect(t.acquireServer(a)!.target.user).toBe("a");
    expect(t.acquireServer(b)!.target.user).toBe("b");
    const pools = t.api.capability<PoolApi>("pool")!;
    expect([...pools.pools()].map((p) => `${p.database}/${p.user}:${p.clientCount}`).sort()).toEqual(["db/a:1", "db/b:1"]);
  });

  test("idle servers are reused most recently released first (LIFO), or oldest first with server_round_robin", async () => {
    for (const roundRobin of [false, true]) {
      const t = await pool({ default_pool_size: 2, server_round_robin: roundRobin });
      const [c1, c2] = [await login(t), await login(t)];
      t.acquireServer(c1);
      t.acquireServer(c2);
      await settle();
      const [s1, s2] = [serverOf(c1), serverOf(c2)];
      t.api.releaseServer(c1, s1, "transaction");
      t.api.releaseServer(c2, s2, "transaction");
      expect(t.acquireServer(c1)).toBe(roundRobin ? s1 : s2);
    }
  });

  test("a stale idle server (past server_lifetime) is closed, not handed out", async () => {
    const t = await pool({ default_pool_size: 2, server_lifetime: 10 });
    const c = await login(t);
    const old = t.servers[0]!;
    t.now += 11_000;
    expect(t.acquireServer(c)).toBeNull();
    expect(old.closedReason).toBe("stale idle server");
    await settle();
    expect(serverOf(c)).not.toBe(old);
  });
});

describe("serverReleased", () => {
  test("transaction mode: a clean server goes straight back to the idle stack, with no query, for the next client", async () => {
    const t = await pool({ default_pool_size: 1 });
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    t.api.releaseServer(c1, s, "transaction");
    expect(s.state).toBe("idle");
    expect(s.ran).toEqual([]);
    expect(t.acquireServer(c2)).toBe(s);
  });

  test("session mode: server_reset_query runs first; the server is handed out once it succeeded", async () => {
    const t = await pool({ pool_mode: "session", default_pool_size: 1 });
    const resets: Server[] = [];
    t.hooks.serverReset.tap("spy", (s) => void resets.push(s));
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    s.applied.set("search_path", "x");
    t.api.releaseServer(c1, s, "client-close");
    expect(s.ran).toEqual(["DISCARD ALL"]);
    expect(s.state).toBe("tested");
    expect(s.applied.size).toBe(0);
    expect(t.acquireServer(c2)).toBeNull();
    answerInternal(s, []);
    expect(resets).toEqual([s]);
    expect(c2.server).toBe(s);
  });

  test("session mode: a server whose reset fails is closed and the waiting client gets a new one", async () => {
    const t = await pool({ pool_mode: "session", default_pool_size: 1 });
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    t.api.releaseServer(c1, s, "client-close");
    t.acquireServer(c2);
    answerInternal(s, { code: "25001", message: "cannot run inside a transaction block" });
    expect(s.closedReason).toBe("server_reset_query failed");
    await settle();
    expect(serverOf(c2)).not.toBe(s);
    expect(t.opened.length).toBe(2);
  });

  test("a server whose client left session state gets server_reset_query and the leftover check in one go; a clean answer returns it", async () => {
    const t = await pool({ default_pool_size: 1, server_reset_query: "RESET ALL" });
    const resets: Server[] = [];
    t.hooks.serverReset.tap("spy", (s) => void resets.push(s));
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    c1.pinReason = "SET";
    t.api.releaseServer(c1, s, "transaction");
    expect(s.resetNeeded).toBe(true);
    expect(s.ran).toEqual(["RESET ALL", LEFTOVER_QUERY]);
    expect(t.acquireServer(c2)).toBeNull();
    answerInternal(s, []);
    expect(c2.server).toBeNull(); // the check is still out
    answerInternal(s, cleanRow("app"));
    expect(s.resetNeeded).toBe(false);
    expect(resets).toEqual([s]);
    expect(c2.server).toBe(s);
  });

  test("a failed leftover check closes the server: the next client never gets it", async () => {
    const t = await pool({ default_pool_size: 1, server_reset_query: "RESET ALL" });
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    c1.sessionSuspect = true;
    t.api.releaseServer(c1, s, "transaction");
    t.acquireServer(c2);
    answerInternal(s, []);
    answerInternal(s, [["1", "0", "0", "0", "0", "0", "app", "app"]]);
    expect(s.closedReason).toBe("session state left after the reset: 1 advisory locks");
    await settle();
    expect(serverOf(c2)).not.toBe(s);
  });

  test("the check also fails a server still running as another role, and a reset that errs", async () => {
    const t = await pool({ default_pool_size: 2, server_reset_query: "RESET ALL" });
    const c = await login(t);
    const s1 = t.acquireServer(c)!;
    c.pinReason = "SET ROLE";
    t.api.releaseServer(c, s1, "transaction");
    answerInternal(s1, []);
    answerInternal(s1, [["0", "0", "0", "0", "0", "0", "other", "app"]]);
    expect(s1.closedReason).toBe("session state left after the reset: running as other (session app), not app");
    t.acquireServer(c);
    await settle();
    const s2 = serverOf(c);
    t.api.releaseServer(c, s2, "transaction");
    answerInternal(s2, { code: "XX000", message: "boom" });
    answerInternal(s2, cleanRow("app"));
    expect(s2.closedReason).toBe("session state left after the reset: server_reset_query failed: boom");
  });

  test("with server_reset_query DISCARD ALL the leftover check is not run; with it empty such a server is closed", async () => {
    const t = await pool({ default_pool_size: 1 });
    const c = await login(t);
    const s = t.acquireServer(c)!;
    c.pinReason = "LISTEN";
    t.api.releaseServer(c, s, "transaction");
    expect(s.ran).toEqual(["DISCARD ALL"]);
    answerInternal(s, []);
    expect(s.state).toBe("idle");
    const t2 = await pool({ default_pool_size: 1, server_reset_query: "" });
    const c2 = await login(t2);
    const s2 = t2.acquireServer(c2)!;
    c2.pinReason = "LISTEN";
    t2.api.releaseServer(c2, s2, "transaction");
    expect(s2.ran).toEqual([]);
    expect(s2.closedReason).toBe("its client left session state and server_reset_query is empty");
  });

  test("a released server with a cancel in flight waits in being_canceled until the cancel finishes", async () => {
    const t = await pool({ default_pool_size: 1 });
    const [c1, c2] = [await login(t), await login(t)];
    const s = t.acquireServer(c1)!;
    s.cancelsInFlight = 1;
    t.api.releaseServer(c1, s, "transaction");
    expect(s.state).toBe("being_canceled");
    expect(t.acquireServer(c2)).toBeNull();
    s.cancelsInFlight = 0;
    t.api.cancelFinished(s);
    expect(c2.server).toBe(s);
  });
});

describe("checkServer", () => {
  test("untapped, needServer hands an idle server out synchronously", async () => {
    const t = await pool({ default_pool_size: 2 });
    const c = await login(t);
    expect(t.hooks.checkServer.taps.length).toBe(0);
    const s = t.hooks.needServer.call(c);
    expect(s).toBe(t.servers[0]!);
  });

  test("tapped, the client waits for the check; a server it passes is linked", async () => {
    const t = await pool({ default_pool_size: 2 });
    const checked: string[] = [];
    t.hooks.checkServer.tapPromise("health", async (s, c) => {
      checked.push(`${s.label} for ${c.label}`);
      return undefined;
    });
    const c = await login(t);
    const s = t.servers[0]!;
    expect(t.acquireServer(c)).toBeNull();
    expect(c.state).toBe("waiting");
    expect(s.state).toBe("tested");
    await settle();
    expect(checked).toEqual([`${s.label} for ${c.label}`]);
    expect(c.server).toBe(s);
  });

  test("a server the check refuses is closed with its reason and the client is offered another", async () => {
    const t = await pool({ default_pool_size: 2 });
    const refused = new Set<Server>();
    t.hooks.checkServer.tapPromise("health", async (s) => (refused.size === 0 ? (refused.add(s), "unhealthy") : undefined));
    const c = await login(t);
    const first = t.servers[0]!;
    t.acquireServer(c);
    await settle();
    expect(first.closedReason).toBe("unhealthy");
    expect(refused.has(first)).toBe(true);
    expect(t.opened.length).toBe(2);
    expect(serverOf(c)).not.toBe(first);
    expect(c.state).toBe("active");
  });

  test("a check that throws closes the server too; a server whose client left during the check goes back idle", async () => {
    const t = await pool({ default_pool_size: 2 });
    let mode: "throw" | "ok" = "throw";
    t.hooks.checkServer.tapPromise("health", async () => {
      if (mode === "throw") throw new Error("no route");
      return undefined;
    });
    const c = await login(t);
    const first = t.servers[0]!;
    t.acquireServer(c);
    await settle();
    expect(first.closedReason).toBe("checkServer failed: no route");
    const second = serverOf(c);
    mode = "ok";
    t.api.releaseServer(c, second, "transaction");
    const c2 = await login(t);
    t.acquireServer(c2);
    c2.close("went away");
    await settle();
    expect(second.state).toBe("idle");
    expect(second.closedReason).toBeNull();
  });
});

describe("limits", () => {
  test("max_db_connections: at the limit a client waits even below pool size, and gets the next server released", async () => {
    const t = await pool({ default_pool_size: 5, max_db_connections: 2 });
    const cs = [await login(t), await login(t), await login(t)];
    for (const c of cs) t.acquireServer(c);
    await settle();
    expect(t.opened.length).toBe(2);
    expect(cs[2]!.state).toBe("waiting");
    const s = serverOf(cs[0]!);
    t.api.releaseServer(cs[0]!, s, "transaction");
    expect(cs[2]!.server).toBe(s);
  });

  test("max_db_connections: another pool's idle server of the same database is closed to make room", async () => {
    const t = await pool({ default_pool_size: 5, max_db_connections: 1 });
    await login(t, "a");
    const aServer = t.servers[0]!;
    expect(aServer.state).toBe("idle");
    const b = await login(t, "b");
    expect(aServer.closedReason).toBe("closed to make room under max_db_connections / max_user_connections");
    expect(live(t).map((s) => s.target.user)).toEqual(["b"]);
    expect(t.acquireServer(b)!.target.user).toBe("b");
  });

  test("max_db_connections counts per database: another database is not limited by this one", async () => {
    const t = await pool({ default_pool_size: 5, max_db_connections: 1 });
    const a = await login(t, "app", "one");
    t.acquireServer(a);
    await login(t, "app", "two");
    expect(live(t).map((s) => s.target.database).sort()).toEqual(["one", "two"]);
  });

  test("max_db_connections is a per-worker share: with 2 workers a limit of 3 allows 2 here", async () => {
    const t = await pool({ default_pool_size: 5, max_db_connections: 3 }, { worker: { id: 0, count: 2 } });
    const cs = [await login(t), await login(t), await login(t)];
    for (const c of cs) t.acquireServer(c);
    await settle();
    expect(t.opened.length).toBe(2);
    expect(cs[2]!.state).toBe("waiting");
  });

  test("max_db_client_connections refuses a login past the limit with 53300", async () => {
    const t = await pool({ max_db_client_connections: 1 });
    await login(t);
    const c = t.client({ user: "app", database: "db", state: "login" });
    const refusal = await t.hooks.authenticated.promise(c);
    expect(refusal?.code).toBe("53300");
  });
});
