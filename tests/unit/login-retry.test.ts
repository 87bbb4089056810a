// Unit tests of pgbun:pool's side of failed server logins on the SDK's fakes: the serverLoginFailed decision, bursts, permanent failures, health, and pgbun:backoff's policy.
import { describe, expect, test } from "bun:test";
import type { LoginFailure, LoginRetry, PoolApi, PoolInfo, Server, ServerTarget, Settings } from "../../plugin-sdk/index.ts";
import { applyPlugin, settle, type FakeClient, type TestApi } from "../../plugin-sdk/testing.ts";
import poolPlugin from "../../plugins/pool/index.ts";
import backoffPlugin from "../../plugins/backoff/index.ts";

/** openServer fails with `failure` while `failing()` says so, else makes a fake server. */
function world(settings: Partial<Settings>, failing: () => LoginFailure | null, retry?: (f: LoginFailure, p: PoolInfo) => LoginRetry | undefined) {
  return async () => {
    const t = await applyPlugin(poolPlugin(), {
      settings: { pool_mode: "transaction", ...settings },
      openServer: async (target: ServerTarget, owner: unknown, t: TestApi): Promise<Server> => {
        await settle();
        const f = failing();
        if (f) throw Object.assign(new Error(f.message), { failure: f });
        return t.server({ target, state: "login", pool: owner });
      },
    });
    const decisions: LoginFailure[] = [];
    if (retry) {
      await t.apply({
        name: "retry",
        apply(api) {
          api.hooks.serverLoginFailed.tap("retry", (f, p) => (decisions.push(f), retry(f, p)));
        },
      });
    }
    return { t, decisions };
  };
}

async function login(t: TestApi): Promise<FakeClient> {
  const c = t.client({ user: "app", database: "db", state: "login" });
  const refusal = await t.hooks.authenticated.promise(c);
  if (refusal) c.refuse(refusal);
  else c.state = "active";
  return c;
}

const poolOf = (t: TestApi): PoolInfo => [...t.api.capability<PoolApi>("pool")!.pools()][0]!;
/** Until no login of the pool is in flight. */
async function drain(t: TestApi): Promise<void> {
  for (let i = 0; i < 200 && poolOf(t).connecting > 0; i++) await settle();
  await settle();
}

const REFUSED: LoginFailure = { message: "connect failed: ECONNREFUSED" };
const TOO_MANY: LoginFailure = { message: 'too many connections for role "app"', code: "53300" };
const WRONG_PASSWORD: LoginFailure = { message: 'password authentication failed for user "app"', code: "28P01" };

describe("with no serverLoginFailed tap", () => {
  test("every waiter gets the failure at once (the pool's behaviour before pgbun:backoff)", async () => {
    let fail: LoginFailure | null = null;
    const { t } = await world({ default_pool_size: 1 }, () => fail)();
    const [a, b] = [await login(t), await login(t)];
    const s = t.acquireServer(a)!;
    fail = TOO_MANY;
    s.close("killed");
    t.acquireServer(b);
    await settle();
    await settle();
    expect(b.fatalError?.message ?? b.refusal?.message).toContain("too many connections");
  });
});

describe("with a serverLoginFailed tap", () => {
  test("logins failing together are one decision; no login before the delay; then one, and the waiter is served", async () => {
    let fail: LoginFailure | null = null;
    const { t, decisions } = await world({ default_pool_size: 10 }, () => fail, () => ({ delay: 150, permanent: false }))();
    const first = await login(t);
    expect(t.acquireServer(first)).not.toBeNull(); // the pool's one working server, in use
    fail = REFUSED;
    const waiters = [];
    for (let i = 0; i < 6; i++) {
      const c = await login(t);
      t.acquireServer(c);
      waiters.push(c);
    }
    const burst = t.opened.length;
    expect(burst).toBeGreaterThan(2);
    await drain(t);
    expect(decisions.length).toBe(1);
    expect(poolOf(t).health.consecutiveFailures).toBe(1);
    // a working server in use: nobody is refused, the pool stays healthy
    expect(waiters.every((c) => c.state === "waiting")).toBe(true);
    expect(poolOf(t).health.state).toBe("healthy");
    // within the delay nothing new is tried, however many clients ask
    for (let i = 0; i < 5; i++) t.acquireServer(await login(t));
    await settle();
    expect(t.opened.length).toBe(burst);
    fail = null;
    await Bun.sleep(250);
    await drain(t);
    expect(t.opened.length).toBeGreaterThan(burst);
    expect(waiters[0]!.server).not.toBeNull();
    expect(poolOf(t).health.consecutiveFailures).toBe(0);
  });

  test("a permanent failure with no server: waiters and new logins get it at once, without a new attempt; a reload lets the next one try", async () => {
    let fail: LoginFailure | null = WRONG_PASSWORD;
    const { t } = await world({}, () => fail, () => ({ delay: 60_000, permanent: true }))();
    const a = await login(t);
    expect(a.refusal?.code ?? a.fatalError?.code).toBe("28P01");
    expect(t.opened.length).toBe(1);
    const b = await login(t);
    expect(b.refusal?.message ?? b.fatalError?.message).toContain("password authentication failed");
    expect(t.opened.length).toBe(1);
    expect(poolOf(t).health.state).toBe("unhealthy");
    expect(poolOf(t).health.lastError).toContain("password authentication failed");
    fail = null;
    t.reload({ settings: {} });
    const c = await login(t);
    expect(c.refusal).toBeNull();
    expect(t.opened.length).toBe(2);
    expect(poolOf(t).health.state).toBe("healthy");
    // each change of state is logged once, the failure with its error
    const changes = t.logs.filter((l) => /^pool (un)?healthy$/.test(l.msg ?? ""));
    expect(changes.map((l) => [l.level, l.msg])).toEqual([["warn", "pool unhealthy"], ["info", "pool healthy"]]);
    expect((changes[0]!.obj as { error: string }).error).toContain("password authentication failed");
  });

  test("a transient failure with no server: waiters wait, and near query_wait_timeout get the server's error, not a bare timeout", async () => {
    let fail: LoginFailure | null = null;
    const { t } = await world({ query_wait_timeout: 2 }, () => fail, () => ({ delay: 60_000, permanent: false }))();
    const a = await login(t);
    const s = t.acquireServer(a)!;
    fail = REFUSED;
    t.api.releaseServer(a, s, "transaction");
    s.close("PostgreSQL went away");
    expect(t.acquireServer(a)).toBeNull();
    await drain(t);
    expect(a.state).toBe("waiting");
    t.tick(t.now + 1_000);
    expect(a.state).toBe("waiting");
    t.tick(t.now + 700); // 1.7 s: within one janitor tick of the 2 s timeout
    expect(a.refusal?.message ?? a.fatalError?.message).toBe("server login failed: connect failed: ECONNREFUSED");
  });
});

describe("pgbun:backoff's policy", () => {
  const decide = async (f: LoginFailure, failures: number, settings: Partial<Settings> = {}) => {
    const t = await applyPlugin(backoffPlugin(), { settings });
    const pool = { health: { state: "unhealthy", lastCheck: 0, lastError: f.message, consecutiveFailures: failures } } as unknown as PoolInfo;
    return t.hooks.serverLoginFailed.call(f, pool)!;
  };

  test("doubling from 100 ms, jittered within the upper half, capped at server_login_retry", async () => {
    for (const n of [1, 2, 3, 4]) {
      const d = await decide(TOO_MANY, n);
      expect(d.permanent).toBe(false);
      expect(d.delay).toBeGreaterThanOrEqual(50 * 2 ** (n - 1));
      expect(d.delay).toBeLessThanOrEqual(100 * 2 ** (n - 1));
    }
    expect((await decide(TOO_MANY, 30, { server_login_retry: 2 })).delay).toBeLessThanOrEqual(2_000);
    expect((await decide(TOO_MANY, 30, { server_login_retry: 2 })).delay).toBeGreaterThanOrEqual(1_000);
  });

  test("wrong password, unknown role or database: permanent, retried after about server_login_retry", async () => {
    for (const code of ["28P01", "28000", "3D000"]) {
      const d = await decide({ message: "no", code }, 1);
      expect(d.permanent).toBe(true);
      expect(d.delay).toBeGreaterThanOrEqual(7_500);
    }
  });

  test("PostgreSQL not there or starting up: at least once a second, whatever server_login_retry", async () => {
    expect((await decide(REFUSED, 30)).delay).toBeLessThanOrEqual(1_000);
    expect((await decide({ message: "the database system is starting up", code: "57P03" }, 30)).delay).toBeLessThanOrEqual(1_000);
    expect((await decide(TOO_MANY, 30)).delay).toBeGreaterThan(1_000);
  });
});
