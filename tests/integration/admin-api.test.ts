// pgbun:admin's AdminApi (capability "admin") used by another plugin, SHOW PLUGINS, and the console without pgbun:stats.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { harnessTempDir } from "../harness/postgres.ts";
import { closeAfterEach, pgConnect, rejection, usePostgres, writePlugin } from "../harness/fixtures.ts";
import { errorFields, loginApp, msg, WireClient } from "../harness/wire.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(30_000);

const ADMIN = "admin";
const WATCHER = "watcher";

const pg = usePostgres();
const track = closeAfterEach();

/**
 * A plugin written only on the SDK: SHOW WIDGETS (its rows from the options, a text and an int column, args
 * echoed), SHOW SLOW_WIDGETS (async), PING (a tag, or the words after it echoed in a table), BOOM (throws, with a
 * SQLSTATE when asked), COUNT_WIDGETS (read-only, a stats_user may run it). Options: `show`, a name to add with
 * addShow (a taken one, for the start-up test).
 */
const WIDGETS = `
  import { definePlugin, Stage } from "\${SDK}";
  export default definePlugin((o) => ({
    name: "test-widgets",
    apply(api) {
      const admin = api.capability("admin");
      const { addShow, addCommand } = admin; // the methods work unbound
      addShow(o.show ?? "widgets", (req) => ({
        columns: [{ name: "name", type: "text" }, { name: "count", type: "int" }, { name: "args", type: "text" }],
        rows: [["bolt", 3, req.args], ["nut", null, req.client.user]],
      }), { doc: "the widgets in stock" });
      admin.addShow("Slow_Widgets", async () => {
        await Bun.sleep(50);
        return { columns: [{ name: "name", type: "text" }], rows: [["slow"]] };
      });
      addCommand("ping", (req) => (req.args === "" ? "PONG" : { columns: [{ name: "echo", type: "text" }], rows: [[req.args]] }), { doc: "answers PONG" });
      addCommand("boom", (req) => {
        throw Object.assign(new Error("it went boom"), req.args === "coded" ? { code: "42704" } : {});
      });
      addCommand("count_widgets", async () => "COUNT 2", { readOnly: true });
      api.onClientMessage("Query", () => undefined, { stage: Stage.Observe });
    },
  }));
`;

async function pooler(plugins: Array<string | [string, Record<string, unknown>]>, dir?: string): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", admin_users: [ADMIN], stats_users: [WATCHER] },
    plugins,
    dir,
  });
  return track(p, (p) => p.stop());
}

async function widgetsPooler(options: Record<string, unknown> = {}): Promise<TestPooler> {
  const dir = await harnessTempDir("admin-api");
  writePlugin(dir, "widgets.ts", WIDGETS);
  return pooler([["./widgets.ts", options]], dir);
}

const consoleAs = async (p: TestPooler, user = ADMIN): Promise<Client> => track(await pgConnect(p, { user, database: "pgbouncer" }), (c) => c.end());
const wire = async (p: TestPooler): Promise<WireClient> => track(await loginApp(p, { user: ADMIN, database: "pgbouncer" }), (w) => w.destroy());

type Failure = { code?: string; message: string };
const failure = (c: Client, sql: string): Promise<Failure | null> => c.query(sql).then(() => null, (e: Failure) => e);

describe("AdminApi: SHOW tables and commands of another plugin", () => {
  test("a plugin's SHOW answers its rows as the built-in tables are typed (text, int8), with the words after its name", async () => {
    const p = await widgetsPooler();
    const c = await consoleAs(p);
    const r = await c.query("show Widgets  red  blue ;");
    expect(r.command).toBe("SHOW");
    expect(r.fields.map((f) => [f.name, f.dataTypeID])).toEqual([["name", 25], ["count", 20], ["args", 25]]);
    expect(r.rows).toEqual([
      { name: "bolt", count: "3", args: "red  blue" },
      { name: "nut", count: null, args: ADMIN },
    ]);
    expect((await c.query("SHOW SLOW_WIDGETS")).rows).toEqual([{ name: "slow" }]);
    // the built-in tables are untouched, and the session goes on
    expect((await c.query("SHOW VERSION")).rows.length).toBe(1);

    // a raw client sees the same messages a built-in SHOW sends: RowDescription, DataRow per row, CommandComplete
    const w = await wire(p);
    const raw = await w.query("SHOW WIDGETS");
    expect(raw.errors).toEqual([]);
    expect(raw.messages.map((m) => m.type).join("")).toBe("TDDCZ");
  });

  test("a plugin's command answers its tag or a table; what it throws is an ErrorResponse; the session stays usable", async () => {
    const p = await widgetsPooler();
    const c = await consoleAs(p);
    expect((await c.query("PING")).command).toBe("PONG");
    const echoed = await c.query("ping hello   world;");
    expect(echoed.rows).toEqual([{ echo: "hello   world" }]);
    expect(await failure(c, "BOOM")).toMatchObject({ code: "08P01", message: "it went boom" });
    expect(await failure(c, "BOOM coded")).toMatchObject({ code: "42704", message: "it went boom" });
    expect((await c.query("COUNT_WIDGETS")).command).toBe("COUNT");
    // a keyword nobody added is still the console's error
    expect(await failure(c, "PONG")).toMatchObject({ code: "08P01", message: "invalid command 'PONG', use SHOW HELP;" });
    expect((await c.query("PING")).command).toBe("PONG");
  });

  test("stats_users may SHOW a plugin's tables and run its read-only commands, not the others (42501, as the built-ins)", async () => {
    const p = await widgetsPooler();
    const watcher = await consoleAs(p, WATCHER);
    expect((await watcher.query("SHOW WIDGETS")).rows.length).toBe(2);
    expect((await watcher.query("COUNT_WIDGETS")).command).toBe("COUNT");
    for (const cmd of ["PING", "BOOM"]) expect(await failure(watcher, cmd)).toMatchObject({ code: "42501", message: "admin access needed" });
  });

  test("SHOW HELP lists what plugins added, with their docs", async () => {
    const p = await widgetsPooler();
    const w = await wire(p);
    w.send(msg.query("SHOW HELP"));
    const got = await w.readUntilReady();
    const notice = got.find((m) => m.type === "N")!;
    const detail = errorFields(notice).D ?? "";
    expect(detail).toContain("\tSHOW WIDGETS -- the widgets in stock");
    expect(detail).toContain("\tSHOW SLOW_WIDGETS");
    expect(detail).toContain("\tPING -- answers PONG");
    expect(detail).toContain("\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE");
  });

  test("a SHOW name the console has already (any case) fails start-up with the plugin's name", async () => {
    for (const taken of ["pools", "PLUGINS", "slow_widgets"]) {
      const err = await rejection<Error>(widgetsPooler({ show: taken }));
      expect(err.message).toContain('"test-widgets"');
      expect(err.message).toContain(`SHOW ${taken.toUpperCase()}`);
    }
  });

  test("a built-in command keyword is refused at apply time too", async () => {
    const dir = await harnessTempDir("admin-api");
    writePlugin(
      dir,
      "pause.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "my-pause", apply(api) { api.capability("admin").addCommand("Pause", () => "PAUSE"); } }));`,
    );
    const err = await rejection<Error>(pooler(["./pause.ts"], dir));
    expect(err.message).toContain('"my-pause"');
    expect(err.message).toContain("PAUSE is a built-in command");
  });
});

describe("SHOW PLUGINS", () => {
  test("one row per loaded plugin in tap order: name, specifier, provides, and the hooks it tapped", async () => {
    const p = await widgetsPooler();
    const c = await consoleAs(p);
    const r = await c.query("SHOW PLUGINS");
    expect(r.fields.map((f) => f.name)).toEqual(["name", "specifier", "provides", "taps"]);
    const rows = r.rows as Array<{ name: string; specifier: string; provides: string; taps: string }>;
    expect(rows.map((x) => x.name)).toEqual(p.core.plugins.map((l) => l.plugin.name));
    const admin = rows.find((x) => x.name === "pgbun:admin")!;
    expect(admin).toMatchObject({ specifier: "pgbun:admin", provides: "admin" });
    expect(admin.taps.split(",")).toEqual(expect.arrayContaining(["startup", "clientMessage:Query", "tick"]));
    // needServer is tapped at the first PAUSE (or KILL), serverReleased at the first PAUSE or WAIT_CLOSE that has
    // to wait for a server: neither is called per transaction before
    expect(admin.taps.split(",")).not.toContain("needServer");
    expect(admin.taps.split(",")).not.toContain("serverReleased");
    await c.query("PAUSE");
    await c.query("RESUME");
    const after = ((await c.query("SHOW PLUGINS")).rows as Array<{ name: string; taps: string }>).find((x) => x.name === "pgbun:admin")!;
    expect(after.taps.split(",")).toContain("needServer");
    // nothing was busy: that PAUSE did not wait
    expect(after.taps.split(",")).not.toContain("serverReleased");
    expect(rows.find((x) => x.name === "pgbun:stats")).toMatchObject({ provides: "stats" });
    expect(rows.find((x) => x.name === "test-widgets")).toEqual({ name: "test-widgets", specifier: "./widgets.ts", provides: "", taps: "clientMessage:Query" });
    // the plugin comes after the built-ins it was given the console by
    expect(rows.findIndex((x) => x.name === "test-widgets")).toBeGreaterThan(rows.findIndex((x) => x.name === "pgbun:admin"));
  });
});

describe("without pgbun:stats", () => {
  test("a stats plugin that offers no counters leaves SHOW STATS* with their columns and no rows; the rest of the console works", async () => {
    const dir = await harnessTempDir("admin-api");
    writePlugin(dir, "no-stats.ts", `export default { name: "no-stats", provides: ["stats"], apply() {} };`);
    const p = await pooler(["./no-stats.ts"], dir);
    expect(p.core.plugins.map((l) => l.plugin.name)).not.toContain("pgbun:stats");
    const app = track(await pgConnect(p), (c) => c.end());
    await app.query("SELECT 1");
    const c = await consoleAs(p);
    for (const what of ["STATS", "STATS_TOTALS", "STATS_AVERAGES"]) {
      const r = await c.query(`SHOW ${what}`);
      expect([what, r.fields[0]?.name, r.fields.length > 10, r.rows]).toEqual([what, "database", true, []]);
    }
    const pools = (await c.query("SHOW POOLS")).rows as Array<Record<string, string>>;
    expect(pools.find((r) => r.database === "app")).toMatchObject({ cl_active: "1", sv_idle: "1" });
  });
});
