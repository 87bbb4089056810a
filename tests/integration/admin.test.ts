// The admin console (pgbun:admin) against a real PostgreSQL: SHOW tables match reality, control commands, authorization.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { Client } from "pg";
import { startPgbun } from "../harness/pgbun.ts";
import { closeAfterEach, pgConnect, usePostgres, waitFor } from "../harness/fixtures.ts";
import { commandTag, errorFields, loginApp, msg, summarize, WireClient, type BackendMessage } from "../harness/wire.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(30_000);

const ADMIN = "admin";
const WATCHER = "watcher";

const pg = usePostgres();

// ---- per-test resources ----

const track = closeAfterEach();

async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, admin_users: [ADMIN], stats_users: [WATCHER], stats_period: 1, ...settings },
    databases: { app: { host: pg.host, port: pg.port, password: pg.password } },
  });
  return track(p, (p) => p.stop());
}

/** A pg client; errors after the test's end (a killed connection) are swallowed. */
async function connect(p: TestPooler, opts: { user?: string; database?: string; application_name?: string } = {}): Promise<Client> {
  return track(await pgConnect(p, opts), (c) => c.end());
}

const admin = (p: TestPooler, user = ADMIN, database = "pgbouncer") => connect(p, { user, database });

async function wire(p: TestPooler, user = ADMIN, database = "pgbouncer"): Promise<WireClient> {
  return track(await loginApp(p, { user, database }), (w) => w.destroy());
}

type Row = Record<string, string | null>;

async function show(c: Client, what: string): Promise<{ columns: string[]; rows: Row[] }> {
  const r = await c.query(`SHOW ${what}`);
  return { columns: r.fields.map((f) => f.name), rows: r.rows as Row[] };
}

function rowOf(rows: Row[], where: Row): Row {
  const row = rows.find((r) => Object.entries(where).every(([k, v]) => r[k] === v));
  if (!row) throw new Error(`no row ${JSON.stringify(where)} in ${JSON.stringify(rows, null, 1)}`);
  return row;
}

const num = (v: string | null | undefined) => Number(v);
/** The CommandComplete tag of a console answer read with WireClient. */
const tagOf = (r: { messages: BackendMessage[] }) => commandTag(r.messages.find((m) => m.type === "C")!);

/** "pending" when the promise has not settled within ms. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([promise, Bun.sleep(ms).then(() => "pending" as const)]);
}

/** A column list written as one space-separated string. */
const cols = (names: string) => names.split(" ");
const POOLS_COLUMNS = cols(
  "database user cl_active cl_waiting cl_active_cancel_req cl_waiting_cancel_req sv_active " +
  "sv_active_cancel sv_being_canceled sv_idle sv_used sv_tested sv_login maxwait maxwait_us pool_mode load_balance_hosts health last_check last_error check_failures"
);
const STATS_COUNTERS = cols(
  "server_assignment_count xact_count query_count received sent xact_time query_time wait_time " +
  "client_parse_count server_parse_count bind_count client_login_count"
);
const CONNECTION_COLUMNS = cols(
  "type user database replication state addr port local_addr local_port connect_time request_time wait wait_us " +
  "close_needed ptr link remote_pid tls application_name prepared_statements id"
);

describe("SHOW tables", () => {
  test("SHOW POOLS counts the pool's clients and servers by state, as they are", async () => {
    const p = await pooler();
    const holder = await connect(p);
    const other = await connect(p);
    const third = await connect(p);
    await holder.query("BEGIN");
    await holder.query("SELECT 1"); // holds server 1
    await other.query("SELECT 1"); // opens server 2, which goes back idle
    const a = await admin(p);
    let pools = await show(a, "POOLS");
    expect(pools.columns).toEqual(POOLS_COLUMNS);
    let row = rowOf(pools.rows, { database: "app", user: "postgres" });
    expect([num(row.cl_active), num(row.cl_waiting), num(row.sv_active), num(row.sv_idle), num(row.sv_login)]).toEqual([3, 0, 1, 1, 0]);
    expect(row.pool_mode).toBe("transaction");
    expect(num(rowOf(pools.rows, { database: "pgbouncer" }).cl_active)).toBe(1);

    await other.query("BEGIN"); // both servers now busy: the next client waits
    const waiting = third.query("SELECT 3 AS n");
    await waitFor("a waiting client", async () => num(rowOf((await show(a, "POOLS")).rows, { database: "app" }).cl_waiting) === 1);
    await Bun.sleep(150);
    pools = await show(a, "POOLS");
    row = rowOf(pools.rows, { database: "app" });
    expect([num(row.cl_active), num(row.cl_waiting), num(row.sv_active), num(row.sv_idle)]).toEqual([2, 1, 2, 0]);
    expect(num(row.maxwait) * 1e6 + num(row.maxwait_us)).toBeGreaterThan(100_000);
    const statsBefore = rowOf((await show(a, "STATS")).rows, { database: "app" });
    await holder.query("COMMIT");
    expect((await waiting).rows[0].n).toBe(3);
    const statsAfter = rowOf((await show(a, "STATS")).rows, { database: "app" });
    expect(num(statsAfter.total_wait_time) - num(statsBefore.total_wait_time)).toBeGreaterThanOrEqual(150_000); // µs
    await other.query("COMMIT");
    row = rowOf((await show(a, "POOLS")).rows, { database: "app" });
    expect([num(row.cl_active), num(row.cl_waiting), num(row.sv_active), num(row.sv_idle)]).toEqual([3, 0, 0, 2]);
  });

  test("SHOW STATS counters grow by exactly the transactions, queries, parses and binds run", async () => {
    const p = await pooler();
    const a = await admin(p);
    const c = await connect(p);
    await c.query("SELECT 0"); // the pool exists now
    const stats = await show(a, "STATS");
    expect(stats.columns).toEqual(["database", ...STATS_COUNTERS.map((n) => `total_${n}`), ...STATS_COUNTERS.map((n) => `avg_${n.replace("received", "recv")}`)]);
    const before = rowOf(stats.rows, { database: "app" });

    for (let i = 0; i < 5; i++) await c.query(`SELECT ${i}`); // 5 queries, 5 transactions
    await c.query("BEGIN");
    await c.query("SELECT pg_sleep(0.05)");
    await c.query("COMMIT"); // 3 queries, 1 transaction
    await c.query("SELECT $1::int AS n", [7]); // extended: Parse, Bind, Execute, Sync = 1 query, 1 transaction

    const after = rowOf((await show(a, "STATS")).rows, { database: "app" });
    const delta = (n: string) => num(after[`total_${n}`]) - num(before[`total_${n}`]);
    expect(delta("query_count")).toBe(9);
    expect(delta("xact_count")).toBe(7);
    expect(delta("client_parse_count")).toBe(1);
    expect(delta("bind_count")).toBe(1);
    expect(delta("server_parse_count")).toBe(1);
    expect(delta("server_assignment_count")).toBe(7); // transaction mode: one assignment per transaction
    expect(delta("received")).toBeGreaterThan(0);
    expect(delta("sent")).toBeGreaterThan(delta("received"));
    expect(delta("xact_time")).toBeGreaterThanOrEqual(50_000); // the transaction around pg_sleep(0.05), in µs
    expect(delta("query_time")).toBeGreaterThanOrEqual(50_000);
    expect(delta("xact_time")).toBeLessThan(10_000_000);

    const totals = await show(a, "STATS_TOTALS");
    expect(totals.columns).toEqual(cols(
      "database server_assignment_count xact_count query_count bytes_received bytes_sent xact_time " +
      "query_time wait_time client_parse_count server_parse_count bind_count client_login_count"
    ));
    expect(num(rowOf(totals.rows, { database: "app" }).query_count)).toBe(num(after.total_query_count));

    // averages: per second over the last stats_period (1 s here)
    await waitFor("averages of a period with traffic", async () => num(rowOf((await show(a, "STATS_AVERAGES")).rows, { database: "app" }).query_count) > 0);
    const avg = rowOf((await show(a, "STATS_AVERAGES")).rows, { database: "app" });
    expect(num(avg.xact_time)).toBeGreaterThan(0);
  });

  test("the console's own counters (database pgbouncer) are totals too: a stats_period passing keeps them", async () => {
    const p = await pooler(); // stats_period 1
    const a = await admin(p);
    for (let i = 0; i < 3; i++) await a.query("SHOW VERSION");
    const count = async () => num(rowOf((await show(a, "STATS_TOTALS")).rows, { database: "pgbouncer" }).query_count);
    const before = await count();
    expect(before).toBeGreaterThanOrEqual(4);
    await Bun.sleep(1_500); // a period ends (ticks about 3 times a second): dropped pools' counters go with it
    expect(await count()).toBe(before + 1);
  });

  test("SHOW CLIENTS lists every connected client with its state, link and pin_reason", async () => {
    const p = await pooler();
    const pinned = await connect(p, { application_name: "pinned-app" });
    const plain = await connect(p, { application_name: "plain-app" });
    await pinned.query("SELECT pg_advisory_lock(42)"); // session state: the client keeps its server
    await plain.query("SELECT 1");
    const pid = num((await pinned.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
    const a = await admin(p);
    const clientsTable = await show(a, "CLIENTS");
    expect(clientsTable.columns).toEqual([...CONNECTION_COLUMNS, "pin_reason"]);
    const pinRow = rowOf(clientsTable.rows, { application_name: "pinned-app" });
    expect(pinRow.pin_reason).toBe("advisory lock");
    expect(pinRow.state).toBe("active");
    expect(pinRow.link).not.toBe("");
    const plainRow = rowOf(clientsTable.rows, { application_name: "plain-app" });
    expect(plainRow.pin_reason).toBe("");
    expect(plainRow.state).toBe("idle");
    expect(plainRow.link).toBe("");
    expect([pinRow.type, pinRow.user, pinRow.database, pinRow.addr]).toEqual(["C", "postgres", "app", "127.0.0.1"]);
    expect(num(pinRow.local_port)).toBe(p.port);
    expect(pinRow.connect_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(rowOf(clientsTable.rows, { database: "pgbouncer" }).user).toBe(ADMIN);
    expect(clientsTable.rows.length).toBe(3);

    // SHOW SERVERS: the pinned client's server is its link, with the real backend pid
    const servers = await show(a, "SERVERS");
    expect(servers.columns).toEqual(CONNECTION_COLUMNS);
    const linked = rowOf(servers.rows, { ptr: pinRow.link });
    expect([linked.type, linked.state, linked.database, linked.user, linked.link]).toEqual(["S", "active", "app", "postgres", pinRow.ptr]);
    expect(num(linked.remote_pid)).toBe(pid);
    expect(num(linked.port)).toBe(pg.port);
    expect(linked.application_name).toBe("pinned-app");
    expect(servers.rows.filter((r) => r.state === "idle").length).toBe(1);
    await pinned.query("SELECT pg_advisory_unlock(42)");
  });

  test("SHOW CONFIG, DATABASES, USERS, LISTS, VERSION and HELP", async () => {
    const p = await pooler();
    const c = await connect(p);
    await c.query("SELECT 1");
    const a = await admin(p);
    const config = await show(a, "CONFIG");
    expect(config.columns).toEqual(["key", "value", "default", "changeable"]);
    expect(rowOf(config.rows, { key: "pool_mode" })).toEqual({ key: "pool_mode", value: "transaction", default: "session", changeable: "yes" });
    expect(rowOf(config.rows, { key: "admin_users" }).value).toBe(ADMIN);
    expect(rowOf(config.rows, { key: "listen_port" }).changeable).toBe("no");
    expect(config.rows.length).toBeGreaterThan(50);

    const dbs = await show(a, "DATABASES");
    expect(dbs.columns).toEqual(cols(
      "name host port database force_user pool_size min_pool_size reserve_pool_size server_lifetime " +
      "pool_mode load_balance_hosts max_connections current_connections max_client_connections " +
      "current_client_connections paused disabled"
    ));
    const app = rowOf(dbs.rows, { name: "app" });
    expect([app.host, num(app.port), app.database, num(app.pool_size), num(app.current_connections), num(app.current_client_connections)]).toEqual([
      pg.host, pg.port, "app", 2, 1, 1,
    ]);
    expect(rowOf(dbs.rows, { name: "pgbouncer" }).pool_mode).toBe("statement");

    const users = await show(a, "USERS");
    expect(users.columns).toEqual(cols(
      "name pool_size reserve_pool_size pool_mode max_user_connections current_connections " +
      "max_user_client_connections current_client_connections"
    ));
    expect(num(rowOf(users.rows, { name: "postgres" }).current_client_connections)).toBe(1);

    const lists = await show(a, "LISTS");
    expect(lists.columns).toEqual(["list", "items"]);
    expect(num(rowOf(lists.rows, { list: "used_servers" }).items)).toBe(1);
    expect(num(rowOf(lists.rows, { list: "used_clients" }).items)).toBe(2);

    expect((await show(a, "VERSION")).rows[0]!.version).toMatch(/^pgbun \d+\.\d+\.\d+/);

    const notices: string[] = [];
    a.on("notice", (n) => notices.push(`${n.message}\n${(n as { detail?: string }).detail ?? ""}`));
    const help = await a.query("SHOW HELP");
    expect(help.command).toBe("SHOW");
    expect(notices.join("")).toContain("Console usage");
    expect(notices.join("")).toContain("PAUSE [<db>]");
  });

  test("commands are case-insensitive with optional semicolons; errors use PgBouncer's words", async () => {
    const p = await pooler();
    const w = await wire(p);
    let r = summarize(await (w.send(msg.query("  show   Version ;; ")), w.readUntilReady()));
    expect(r.rows[0]![0]).toMatch(/^pgbun /);
    expect(tagOf(r)).toBe("SHOW");
    r = await w.query("SHOW FOO");
    expect([r.errors[0]!.C, r.errors[0]!.M]).toEqual(["08P01", "invalid command 'SHOW FOO', use SHOW HELP;"]);
    expect(r.status).toBe("I");
    r = await w.query("DISABLE");
    expect(r.errors[0]!.M).toBe("a database is required");
    r = await w.query("PAUSE nosuchdb");
    expect(r.errors[0]!.M).toBe("no such database: nosuchdb");
    r = await w.query("RESUME");
    expect(r.errors[0]!.M).toBe("pooler is not paused/suspended");
    r = await w.query("");
    expect(r.messages.map((m) => m.type).join("")).toBe("IZ");
  });
});

describe("control commands", () => {
  test("PAUSE waits for running transactions, blocks new queries until RESUME", async () => {
    const p = await pooler();
    const idle = await connect(p);
    const busy = await connect(p);
    await idle.query("SELECT 1");
    await busy.query("BEGIN");
    const a = await admin(p);
    const pause = a.query("PAUSE app");
    expect(await within(pause, 400)).toBe("pending"); // a transaction is still running
    const a2 = await admin(p); // the console stays usable meanwhile
    expect(num(rowOf((await show(a2, "DATABASES")).rows, { name: "app" }).paused)).toBe(1);
    await busy.query("COMMIT");
    expect((await pause).command).toBe("PAUSE");
    expect((await show(a, "SERVERS")).rows.length).toBe(0); // PAUSE disconnects the servers

    const blocked = idle.query("SELECT 2 AS n");
    expect(await within(blocked, 500)).toBe("pending");
    expect(num(rowOf((await show(a, "POOLS")).rows, { database: "app" }).cl_waiting)).toBe(1);
    const w = await wire(p);
    expect(tagOf(await w.query("RESUME app"))).toBe("RESUME");
    expect((await blocked).rows[0].n).toBe(2);
    expect(num(rowOf((await show(a, "DATABASES")).rows, { name: "app" }).paused)).toBe(0);
  });

  test("while a PAUSE waits for a transaction, a named statement's Parse does not take an idle server either", async () => {
    const p = await pooler();
    const idle = await connect(p);
    const busy = await connect(p);
    const prepares = await connect(p);
    await Promise.all([idle.query("SELECT pg_sleep(0.2)"), busy.query("SELECT pg_sleep(0.2)")]); // two servers, then idle
    await busy.query("BEGIN");
    const a = await admin(p);
    const pause = a.query("PAUSE app");
    expect(await within(pause, 300)).toBe("pending"); // busy's transaction is still running
    const plain = idle.query("SELECT 8 AS n");
    expect(await within(plain, 300)).toBe("pending");
    // pg sends Parse "s1", Bind, Describe, Execute, Sync: the Parse of a named statement may look for a free server
    const named = prepares.query({ name: "s1", text: "SELECT 7 AS n" });
    expect(await within(named, 500)).toBe("pending");
    await busy.query("COMMIT");
    await pause;
    expect(await within(named, 300)).toBe("pending");
    const w = await wire(p);
    expect(tagOf(await w.query("RESUME app"))).toBe("RESUME");
    expect((await named).rows[0].n).toBe(7);
    expect((await plain).rows[0].n).toBe(8);
  });

  test("PAUSE without a database pauses everything; RESUME releases every parked client in order", async () => {
    const p = await pooler();
    const c1 = await connect(p);
    const c2 = await connect(p);
    const w = await wire(p);
    expect((await w.query("PAUSE")).errors).toEqual([]);
    expect((await w.query("PAUSE")).errors[0]!.M).toBe("already suspended/paused");
    const q1 = c1.query("SELECT 1 AS n");
    const q2 = c2.query("SELECT 2 AS n");
    expect(await within(q1, 300)).toBe("pending");
    expect((await w.query("RESUME")).errors).toEqual([]);
    expect([(await q1).rows[0].n, (await q2).rows[0].n]).toEqual([1, 2]);
  });

  test("KILL closes the database's clients and servers; new clients wait until RESUME", async () => {
    const p = await pooler();
    const victim = await connect(p);
    await victim.query("SELECT 1");
    const w = await wire(p);
    const r = await w.query("KILL app");
    expect(tagOf(r)).toBe("KILL");
    await expect(victim.query("SELECT 1")).rejects.toThrow();
    const a = await admin(p);
    expect((await show(a, "CLIENTS")).rows.filter((row) => row.database === "app").length).toBe(0);
    expect((await show(a, "SERVERS")).rows.length).toBe(0);
    const late = await connect(p);
    const q = late.query("SELECT 5 AS n");
    expect(await within(q, 400)).toBe("pending");
    await w.query("RESUME app");
    expect((await q).rows[0].n).toBe(5);
  });

  test("KILL_CLIENT closes one client by its SHOW CLIENTS id", async () => {
    const p = await pooler();
    const target = await connect(p, { application_name: "target" });
    const bystander = await connect(p, { application_name: "bystander" });
    const a = await admin(p);
    const id = rowOf((await show(a, "CLIENTS")).rows, { application_name: "target" }).id;
    const w = await wire(p);
    expect(tagOf(await w.query(`KILL_CLIENT ${id}`))).toBe("KILL_CLIENT");
    await expect(target.query("SELECT 1")).rejects.toThrow();
    expect((await bystander.query("SELECT 1 AS n")).rows[0].n).toBe(1);
  });

  test("DISABLE refuses new logins to the database until ENABLE", async () => {
    const p = await pooler();
    const existing = await connect(p);
    const w = await wire(p);
    expect(tagOf(await w.query("DISABLE app"))).toBe("DISABLE");
    const err = await connect(p).then(() => null, (e: { code?: string; message: string }) => e);
    expect(err?.code).toBe("57P03");
    expect(err?.message).toBe("database does not allow connections: app");
    expect((await existing.query("SELECT 1 AS n")).rows[0].n).toBe(1); // clients already in keep working
    expect(tagOf(await w.query("ENABLE app"))).toBe("ENABLE");
    expect((await (await connect(p)).query("SELECT 1 AS n")).rows[0].n).toBe(1);
  });

  test("RECONNECT closes idle servers now and busy ones at release; WAIT_CLOSE waits for them", async () => {
    const p = await pooler();
    const busy = await connect(p);
    const other = await connect(p);
    await busy.query("BEGIN");
    await other.query("SELECT 1");
    const a = await admin(p);
    const pidBefore = num((await busy.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
    expect((await a.query("RECONNECT app")).command).toBe("RECONNECT");
    const servers = (await show(a, "SERVERS")).rows;
    expect(servers.map((s) => [s.state, s.close_needed])).toEqual([["active", "1"]]);
    const w = await wire(p);
    w.send(msg.query("WAIT_CLOSE app"));
    const wait = w.readUntilReady();
    expect(await within(wait, 300)).toBe("pending");
    await busy.query("COMMIT");
    expect(tagOf({ messages: await wait })).toBe("WAIT_CLOSE");
    expect((await show(a, "SERVERS")).rows.length).toBe(0);
    const pidAfter = num((await busy.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
    expect(pidAfter).not.toBe(pidBefore);
  });

  test("RELOAD answers RELOAD; SHUTDOWN stops pgbun (subprocess, real SIGHUP)", async () => {
    const pb = await startPgbun({
      config: {
        pgbun: { pool_mode: "transaction", admin_users: [ADMIN], default_pool_size: 3 },
        databases: { app: { host: pg.host, port: pg.port, password: pg.password } },
      },
      pg,
    });
    try {
      const configFile = pb.configFile;
      const c = await pgConnect(pb, { user: ADMIN, database: "pgbouncer", password: undefined }); // no password
      const poolSize = async () => rowOf((await show(c, "CONFIG")).rows, { key: "default_pool_size" }).value;
      expect(await poolSize()).toBe("3");
      const cfg = JSON.parse(readFileSync(configFile, "utf8"));
      cfg.pgbun.default_pool_size = 7;
      writeFileSync(configFile, JSON.stringify(cfg));
      expect((await c.query("RELOAD")).command).toBe("RELOAD");
      await waitFor("the reloaded setting", async () => (await poolSize()) === "7");
      await c.query("SHUTDOWN").catch(() => undefined); // the connection ends with the process
      const code = await Promise.race([pb.proc.exited, Bun.sleep(5_000).then(() => "still running")]);
      expect(code).toBe(0);
      await c.end().catch(() => undefined);
    } finally {
      await pb.stop();
    }
  });
});

describe("authorization and protocol", () => {
  test("stats_users may SHOW but not run commands; admin_users may; anyone else is refused at login", async () => {
    const p = await pooler();
    const watcher = await admin(p, WATCHER);
    expect((await show(watcher, "POOLS")).columns[0]).toBe("database");
    expect((await show(watcher, "CLIENTS")).rows.length).toBe(1);
    for (const cmd of ["PAUSE", "RESUME", "RELOAD", "SHUTDOWN", "KILL app", "DISABLE app", "RECONNECT", "WAIT_CLOSE", "SET pool_mode = session"]) {
      const err = await watcher.query(cmd).then(() => null, (e: { code?: string; message: string }) => e);
      expect([cmd, err?.code, err?.message]).toEqual([cmd, "42501", "admin access needed"]);
    }
    expect(p.core.shuttingDown).toBeNull();

    const boss = await admin(p, ADMIN, "pgbun"); // the alias of the console's database
    expect((await boss.query("PAUSE")).command).toBe("PAUSE");
    expect((await boss.query("RESUME")).command).toBe("RESUME");

    for (const database of ["pgbouncer", "pgbun"]) {
      const err = await admin(p, "postgres", database).then(() => null, (e: { code?: string; message: string }) => e);
      expect([err?.code, err?.message]).toEqual(["28000", "not allowed to connect to the admin console"]);
    }
  });

  test("extended protocol is refused with 08P01 until Sync; the session stays usable", async () => {
    const p = await pooler();
    const w = await wire(p);
    w.send(Buffer.concat([msg.parse("", "SHOW POOLS"), msg.bind("", ""), msg.describe("P", ""), msg.execute(""), msg.sync()]));
    const got = await w.readUntilReady();
    expect(got.map((m) => m.type).join("")).toBe("EZ");
    expect(errorFields(got[0]!).C).toBe("08P01");
    expect(errorFields(got[0]!).M).toBe("admin console supports only simple query protocol");
    const r = await w.query("SHOW VERSION");
    expect(r.errors).toEqual([]);
    expect(r.rows.length).toBe(1);

    const c = await admin(p);
    const err = await c.query({ text: "SHOW POOLS", values: [], name: "named" }).then(() => null, (e: { code?: string }) => e);
    expect(err?.code).toBe("08P01");
    expect((await show(c, "VERSION")).rows.length).toBe(1);
  });

  test("a console client never gets a server, whatever it sends", async () => {
    const p = await pooler();
    const w = await wire(p);
    await w.query("SHOW POOLS");
    w.send(msg.copyData("x"));
    const { closed } = await w.readUntilClosed(3_000);
    expect(closed).toBe(true);
    expect([...p.core.servers].length).toBe(0);
  });
});
