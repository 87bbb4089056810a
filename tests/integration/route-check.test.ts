// PluginApi.route (another [databases] entry or host) and the checkServer hook (health checks), driven by real clients.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { harnessTempDir } from "../harness/postgres.ts";
import { closeAfterEach, firstValue, pgConnect, rejection, usePostgres, waitFor, writePlugin } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();
const track = closeAfterEach();

const ADMIN = "postgres";

async function pooler(file: string, source: string, settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const dir = await harnessTempDir("route-check");
  writePlugin(dir, file, source);
  const entry = { host: pg.host, port: pg.port, password: pg.password };
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", admin_users: [ADMIN], ...settings },
    databases: { app: { ...entry, dbname: "app" }, other: { ...entry, dbname: "postgres" } },
    plugins: [`./${file}`],
    dir,
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler, applicationName?: string, database = "app") =>
  track(await pgConnect({ host: p.host, port: p.port }, { application_name: applicationName, database }), (c) => c.end());

describe("api.route", () => {
  const router = `
    import { definePlugin, SqlState } from "\${SDK}";
    export const seen = [];
    export default definePlugin(() => ({
      name: "router",
      apply(api) {
        api.hooks.startup.tap("router", (client) => {
          const app = client.startupParams.get("application_name");
          if (app === "to-other") api.route(client, "other");
          else if (app === "to-localhost") api.route(client, "app", { host: "localhost" });
          else if (app === "to-nowhere" && !api.route(client, "nowhere")) return { code: SqlState.InvalidCatalogName, message: "no entry nowhere to route to" };
          return undefined;
        });
        api.hooks.serverLinked.tap("router", (client, server) => seen.push([client.startupParams.get("application_name") ?? "", client.poolDatabase, server.target.host, server.target.database]));
        // routing once the client is logged in is refused: its pool is chosen
        api.hooks.serverLinked.tap("router-late", (client) => { if (api.route(client, "other")) throw new Error("route after login succeeded"); });
      },
    }));
  `;

  test("a routed client is served from the other entry's database; an unrouted one from its own", async () => {
    const p = await pooler("router.ts", router);
    const routed = await connect(p, "to-other");
    const plain = await connect(p, "plain");
    expect(await firstValue(routed, "SELECT current_database()")).toBe("postgres");
    expect(await firstValue(plain, "SELECT current_database()")).toBe("app");
    // the routed pool is the target entry's, not shared with app's clients
    const routedPid = await firstValue(routed, "SELECT pg_backend_pid()");
    const plainPid = await firstValue(plain, "SELECT pg_backend_pid()");
    expect(routedPid).not.toBe(plainPid);
  });

  test("routing to another host of the same entry opens servers there, in a pool of their own", async () => {
    const p = await pooler("router.ts", router);
    const c = await connect(p, "to-localhost");
    expect(await firstValue(c, "SELECT current_database()")).toBe("app");
    const hosts = [...p.core.servers].map((s) => s.target.host);
    expect(hosts).toContain("localhost");
    const plain = await connect(p, "plain");
    expect(await firstValue(plain, "SELECT 1")).toBe(1);
    expect([...p.core.servers].filter((s) => s.target.host === pg.host).length).toBeGreaterThan(0);
  });

  test("an entry that does not exist: route says so and the plugin refuses the login with its own error", async () => {
    const p = await pooler("router.ts", router);
    const err = await rejection(pgConnect({ host: p.host, port: p.port }, { application_name: "to-nowhere", database: "app" }, { ignoreErrors: false }));
    expect(err.message).toContain("no entry nowhere to route to");
  });
});

describe("the admin console's database commands reach routed clients (they are in the target database's pool)", () => {
  const router = `
    import { definePlugin } from "\${SDK}";
    export default definePlugin(() => ({
      name: "router",
      apply(api) {
        api.hooks.startup.tap("router", (client) => {
          if (client.startupParams.get("application_name") === "to-other") api.route(client, "other");
          return undefined;
        });
      },
    }));
  `;
  const admin = async (p: TestPooler) => track(await pgConnect({ host: p.host, port: p.port }, { user: ADMIN, database: "pgbouncer" }), (c) => c.end());

  test("PAUSE other holds a routed client's query until RESUME other; a client of app is not held", async () => {
    const p = await pooler("router.ts", router);
    const routed = await connect(p, "to-other");
    const plain = await connect(p, "plain");
    const console = await admin(p);
    await console.query("PAUSE other");
    const held = routed.query("SELECT 'resumed' AS v");
    const state = await Promise.race([held.then(() => "answered"), Bun.sleep(400).then(() => "held")]);
    expect(state).toBe("held");
    expect(await firstValue(plain, "SELECT 'not paused'")).toBe("not paused");
    await console.query("RESUME other");
    expect((await held).rows[0].v).toBe("resumed");
  });

  test("KILL other ends routed clients; DISABLE other refuses new logins routed there", async () => {
    const p = await pooler("router.ts", router);
    const routed = await connect(p, "to-other");
    await firstValue(routed, "SELECT 1");
    const console = await admin(p);
    await console.query("KILL other");
    const err = await rejection(routed.query("SELECT 1"));
    expect(err.message).toMatch(/killed|terminat|Connection/i);
    await console.query("RESUME other");
    await console.query("DISABLE other");
    const refused = await rejection(pgConnect({ host: p.host, port: p.port }, { application_name: "to-other", database: "app" }, { ignoreErrors: false }));
    expect(refused.message).toContain("does not allow connections");
    const plain = await connect(p, "plain");
    expect(await firstValue(plain, "SELECT 'app still open'")).toBe("app still open");
  });
});

describe("the checkServer hook", () => {
  const checker = (body: string) => `
    import { definePlugin, internalQuery } from "\${SDK}";
    export default definePlugin(() => ({
      name: "checker",
      apply(api) {
        const state = { checks: 0, closed: [] };
        globalThis.__checker = state;
        api.hooks.serverClosed.tap("checker", (server, reason) => state.closed.push(reason));
        api.hooks.checkServer.tapPromise("checker", async (server, client) => {
          state.checks++;
          ${body}
        });
      },
    }));
  `;
  const state = () => (globalThis as unknown as { __checker: { checks: number; closed: string[] } }).__checker;

  test("an idle server handed out is checked first; one the check refuses is closed and the client gets another", async () => {
    // the first check refuses; the rest run SELECT 1 on the server and pass
    const p = await pooler("checker.ts", checker(`if (state.checks === 1) return "refused by the test's check"; await internalQuery(server, "SELECT 1"); return undefined;`));
    const c = await connect(p);
    // the login's own server is handed out at once (a new one); idle ones are checked from the next query on
    expect(await firstValue(c, "SELECT 'first'")).toBe("first");
    expect(await firstValue(c, "SELECT 'second'")).toBe("second");
    expect(await firstValue(c, "SELECT 'third'")).toBe("third");
    expect(state().checks).toBeGreaterThanOrEqual(2);
    expect(state().closed.some((r) => r.includes("refused by the test's check"))).toBe(true);
  });

  test("a check that throws closes that server, naming the failure; the client is still served", async () => {
    const p = await pooler("checker.ts", checker(`if (state.checks === 1) throw new Error("check blew up"); return undefined;`));
    const c = await connect(p);
    await firstValue(c, "SELECT 1");
    expect(await firstValue(c, "SELECT 'after the throw'")).toBe("after the throw");
    expect(state().closed.some((r) => r.includes("check blew up"))).toBe(true);
  });

  test("a client that leaves during the check does not lose the server: it goes back to the pool", async () => {
    const p = await pooler("checker.ts", checker(`await Bun.sleep(300); return undefined;`), { default_pool_size: 1 });
    const a = await connect(p);
    await firstValue(a, "SELECT 1");
    const pending = a.query("SELECT 'never answered'").catch(() => undefined);
    await waitFor("the check started", () => state().checks >= 1);
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await pending;
    const b = await connect(p);
    expect(await firstValue(b, "SELECT 'b served'")).toBe("b served");
    expect(state().closed).toEqual([]);
  });

  test("with no checkServer tap nothing is checked and servers are handed out synchronously", async () => {
    const p = await pooler("nocheck.ts", `import { definePlugin } from "\${SDK}"; export default definePlugin(() => ({ name: "nocheck", provides: ["health-check"], apply() {} }));`);
    const c = await connect(p);
    for (let i = 0; i < 5; i++) expect(await firstValue(c, `SELECT ${i}`)).toBe(i);
    expect(p.core.hooks.checkServer.taps.length).toBe(0);
  });
});
