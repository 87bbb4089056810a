// The admin console's tables against PgBouncer 1.25.2's column lists (REFERENCE.md section 9), read with pg and psql.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { closeAfterEach, findBinary, pgConnect, rejection, runClientProgram, usePostgres, waitFor } from "../harness/fixtures.ts";
import { startPgbun } from "../harness/pgbun.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(30_000);

const ADMIN = "admin";
const pg = usePostgres();
const track = closeAfterEach();

async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, admin_users: [ADMIN], stats_period: 1, ...settings },
    databases: {
      app: { host: pg.host, port: pg.port, password: pg.password },
      multi: { host: `${pg.host},${pg.host}`, port: pg.port, dbname: "app", password: pg.password },
      pinned: { host: `${pg.host},${pg.host}`, port: pg.port, dbname: "app", password: pg.password, load_balance_hosts: "disable" },
    },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: { host: string; port: number }, opts: { user?: string; database?: string; password?: string } = {}): Promise<Client> =>
  track(await pgConnect(p, opts), (c) => c.end());
const admin = (p: TestPooler, database = "pgbouncer") => connect(p, { user: ADMIN, database });

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
const cols = (names: string) => names.trim().split(/\s+/);

/** PgBouncer 1.25.2's columns, in its order (section 9); pgbun's own come after them. */
export const PGBOUNCER_125 = {
  POOLS: cols(`database user cl_active cl_waiting cl_active_cancel_req cl_waiting_cancel_req sv_active sv_active_cancel
    sv_being_canceled sv_idle sv_used sv_tested sv_login maxwait maxwait_us pool_mode load_balance_hosts`),
  STATS: cols(`database total_server_assignment_count total_xact_count total_query_count total_received total_sent
    total_xact_time total_query_time total_wait_time total_client_parse_count total_server_parse_count total_bind_count
    total_client_login_count avg_server_assignment_count avg_xact_count avg_query_count avg_recv avg_sent avg_xact_time
    avg_query_time avg_wait_time avg_client_parse_count avg_server_parse_count avg_bind_count avg_client_login_count`),
  STATS_TOTALS: cols(`database server_assignment_count xact_count query_count bytes_received bytes_sent xact_time query_time
    wait_time client_parse_count server_parse_count bind_count client_login_count`),
  STATS_AVERAGES: cols(`database server_assignment_count xact_count query_count bytes_received bytes_sent xact_time query_time
    wait_time avg_client_parse_count avg_server_parse_count avg_bind_count avg_client_login_count`),
  CLIENTS: cols(`type user database replication state addr port local_addr local_port connect_time request_time wait wait_us
    close_needed ptr link remote_pid tls application_name prepared_statements id`),
  DATABASES: cols(`name host port database force_user pool_size min_pool_size reserve_pool_size server_lifetime pool_mode
    load_balance_hosts max_connections current_connections max_client_connections current_client_connections paused disabled`),
  USERS: cols(`name pool_size reserve_pool_size pool_mode max_user_connections current_connections max_user_client_connections
    current_client_connections`),
};

describe("PgBouncer 1.25 columns", () => {
  test("POOLS, STATS, STATS_TOTALS, STATS_AVERAGES, CLIENTS, SERVERS, DATABASES, USERS: 1.25's columns in order, pgbun's after", async () => {
    const p = await pooler();
    const c = await connect(p);
    await c.query("SELECT 1");
    const a = await admin(p);
    const pools = await show(a, "POOLS");
    expect(pools.columns).toEqual([...PGBOUNCER_125.POOLS, "health", "last_check", "last_error", "check_failures"]);
    expect((await show(a, "STATS")).columns).toEqual(PGBOUNCER_125.STATS);
    expect((await show(a, "STATS_TOTALS")).columns).toEqual(PGBOUNCER_125.STATS_TOTALS);
    expect((await show(a, "STATS_AVERAGES")).columns).toEqual(PGBOUNCER_125.STATS_AVERAGES);
    const clients = await show(a, "CLIENTS");
    expect(clients.columns).toEqual([...PGBOUNCER_125.CLIENTS, "pin_reason"]);
    expect(rowOf(clients.rows, { database: "app" }).replication).toBe("none");
    const servers = await show(a, "SERVERS");
    expect(servers.columns).toEqual(PGBOUNCER_125.CLIENTS);
    expect(rowOf(servers.rows, { database: "app" }).replication).toBe("none");
    expect((await show(a, "DATABASES")).columns).toEqual(PGBOUNCER_125.DATABASES);
    expect((await show(a, "USERS")).columns).toEqual(PGBOUNCER_125.USERS);
  });

  test("load_balance_hosts: the entry's own, else round-robin for a host list, empty for one host, in POOLS and DATABASES", async () => {
    const p = await pooler();
    await (await connect(p)).query("SELECT 1");
    await (await connect(p, { database: "multi" })).query("SELECT 1");
    await (await connect(p, { database: "pinned" })).query("SELECT 1");
    const a = await admin(p);
    const pools = (await show(a, "POOLS")).rows;
    expect(rowOf(pools, { database: "multi" }).load_balance_hosts).toBe("round-robin");
    expect(rowOf(pools, { database: "pinned" }).load_balance_hosts).toBe("disable");
    expect(rowOf(pools, { database: "app" }).load_balance_hosts).toBe("");
    // the pool's health as pgbun:pool reports it (unknown until a check or a login says otherwise)
    expect(["healthy", "unknown"]).toContain(rowOf(pools, { database: "app" }).health!);
    const dbs = (await show(a, "DATABASES")).rows;
    expect(rowOf(dbs, { name: "multi" }).load_balance_hosts).toBe("round-robin");
    expect(rowOf(dbs, { name: "pinned" }).load_balance_hosts).toBe("disable");
    expect(rowOf(dbs, { name: "app" }).load_balance_hosts).toBe(null);
  });

  test("client_login_count counts each login once (not per query); the averages show logins per second", async () => {
    const p = await pooler();
    const a = await admin(p);
    const logins = async () => num(rowOf((await show(a, "STATS")).rows, { database: "app" }).total_client_login_count);
    const first = await connect(p);
    await first.query("SELECT 1");
    expect(await logins()).toBe(1);
    for (let i = 0; i < 5; i++) await first.query("SELECT 1");
    expect(await logins()).toBe(1);
    for (let i = 0; i < 3; i++) await (await connect(p)).query("SELECT 1");
    expect(await logins()).toBe(4);
    expect(num(rowOf((await show(a, "STATS_TOTALS")).rows, { database: "app" }).client_login_count)).toBe(4);
    // a refused login (unknown database) counts nothing
    await pgConnect(p, { database: "nope" }, { ignoreErrors: true }).then((c) => c.end(), () => undefined);
    expect(await logins()).toBe(4);
    // averages of a later period: 3 logins in one stats_period of 1 s
    await Bun.sleep(1_100);
    for (let i = 0; i < 3; i++) await (await connect(p)).query("SELECT 1");
    await waitFor("a period with logins", async () => num(rowOf((await show(a, "STATS_AVERAGES")).rows, { database: "app" }).avg_client_login_count) > 0);
    expect(num(rowOf((await show(a, "STATS")).rows, { database: "app" }).avg_client_login_count)).toBeGreaterThan(0);
  });

  test("psql reads the same 1.25 column lists (through the pgbun alias too)", async () => {
    const p = await pooler();
    for (const db of ["pgbouncer", "pgbun"]) {
      for (const [what, expected] of [["POOLS", PGBOUNCER_125.POOLS], ["STATS", PGBOUNCER_125.STATS], ["CLIENTS", PGBOUNCER_125.CLIENTS]] as const) {
        const r = await runClientProgram(pg, [findBinary("psql"), "-h", "127.0.0.1", "-p", String(p.port), "-U", ADMIN, "-d", db, "-AF", "|", "-c", `SHOW ${what}`]);
        expect(r.stderr).toBe("");
        const header = r.stdout.split("\n")[0]!.split("|");
        expect(header.slice(0, expected.length)).toEqual([...expected]);
      }
    }
  });
});

const INTERNALS = {
  MEM: cols("name size used free memtotal"),
  FDS: cols(`fd task user database addr port cancel link client_encoding std_strings datestyle timezone password
    scram_client_key scram_server_key`),
  STATE: cols("key value"),
  TOTALS: cols("name value"),
  PEERS: cols("peer_id host port pool_size"),
  PEER_POOLS: cols("peer_id cl_active_cancel_req cl_waiting_cancel_req sv_active_cancel sv_login"),
  SOCKETS: [...PGBOUNCER_125.CLIENTS, ...cols("recv_pos pkt_pos pkt_remain send_pos send_remain pkt_avail send_avail")],
  DNS_HOSTS: cols("hostname ttl addrs"),
  DNS_ZONES: cols("zonename serial count"),
};

describe("PgBouncer 1.25's other SHOW tables", () => {
  test("MEM, FDS, STATE, TOTALS, PEERS, PEER_POOLS, SOCKETS, ACTIVE_SOCKETS, DNS_HOSTS, DNS_ZONES: columns and what pgbun can say", async () => {
    const p = await pooler();
    const busy = await connect(p);
    await busy.query("BEGIN"); // holds its server: an active socket pair
    const idle = await connect(p);
    await idle.query("SELECT 1");
    const a = await admin(p);

    const mem = await show(a, "MEM");
    expect(mem.columns).toEqual(INTERNALS.MEM);
    expect(num(rowOf(mem.rows, { name: "clients" }).used)).toBe(3);
    expect(num(rowOf(mem.rows, { name: "servers" }).used)).toBe(2);
    expect(num(rowOf(mem.rows, { name: "pools" }).used)).toBe(1);
    const heap = rowOf(mem.rows, { name: "js_heap" });
    expect(num(heap.used)).toBeGreaterThan(1_000_000);
    expect(num(heap.memtotal)).toBe(num(heap.used));
    expect(num(rowOf(mem.rows, { name: "rss" }).memtotal)).toBeGreaterThan(num(heap.used));

    const fds = await show(a, "FDS");
    expect(fds.columns).toEqual(INTERNALS.FDS);
    expect(fds.rows).toEqual([]); // nothing is handed over: no socket, no cancel key, no secret

    const state = await show(a, "STATE");
    expect(state.columns).toEqual(INTERNALS.STATE);
    expect(state.rows).toEqual([{ key: "active", value: "yes" }, { key: "paused", value: "no" }, { key: "suspended", value: "no" }]);

    const stats = await show(a, "STATS");
    const totals = await show(a, "TOTALS");
    expect(totals.columns).toEqual(INTERNALS.TOTALS);
    expect(totals.rows.map((r) => r.name)).toEqual(stats.columns.slice(1));
    const sum = (col: string) => stats.rows.reduce((n, r) => n + num(r[col]), 0);
    expect(num(rowOf(totals.rows, { name: "total_query_count" }).value)).toBe(sum("total_query_count") + 1); // + this SHOW TOTALS
    expect(num(rowOf(totals.rows, { name: "total_client_login_count" }).value)).toBe(sum("total_client_login_count"));

    for (const [what, columnsOf] of [["PEERS", INTERNALS.PEERS], ["PEER_POOLS", INTERNALS.PEER_POOLS], ["DNS_HOSTS", INTERNALS.DNS_HOSTS], ["DNS_ZONES", INTERNALS.DNS_ZONES]] as const) {
      const t = await show(a, what);
      expect([what, t.columns, t.rows]).toEqual([what, [...columnsOf], []]); // one process: no peers; the system resolver: no cache
    }

    const sockets = await show(a, "SOCKETS");
    expect(sockets.columns).toEqual(INTERNALS.SOCKETS);
    expect(sockets.rows.map((r) => r.type).sort()).toEqual(["C", "C", "C", "S", "S"]);
    const active = await show(a, "ACTIVE_SOCKETS");
    expect(active.columns).toEqual(INTERNALS.SOCKETS);
    expect(active.rows.map((r) => r.type).sort()).toEqual(["C", "S"]); // the client in a transaction and its server
    expect(rowOf(active.rows, { type: "C" }).link).toBe(rowOf(active.rows, { type: "S" }).ptr);
    await busy.query("COMMIT");
  });

  test("SHOW STATE says paused during a PAUSE", async () => {
    const p = await pooler();
    const a = await admin(p);
    await a.query("PAUSE");
    expect((await show(a, "STATE")).rows.slice(0, 2)).toEqual([{ key: "active", value: "no" }, { key: "paused", value: "yes" }]);
    await a.query("RESUME");
    expect((await show(a, "STATE")).rows[1]).toEqual({ key: "paused", value: "no" });
  });

  test("SHOW HELP lists PgBouncer 1.25's commands (a NOTICE, tag SHOW)", async () => {
    const p = await pooler();
    const a = await admin(p);
    let detail = "";
    a.on("notice", (n) => (detail = n.detail ?? ""));
    expect((await a.query("SHOW HELP")).command).toBe("SHOW");
    await Bun.sleep(20);
    for (const line of [
      "SHOW PEERS|PEER_POOLS",
      "SHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE",
      "SHOW DNS_HOSTS|DNS_ZONES",
      "SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS",
      "SET key = arg",
      "KILL [<db>]",
      "SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
    ]) {
      expect(detail.split("\n").map((l) => l.trim())).toContain(line);
    }
  });
});

describe("KILL and SHUTDOWN of 1.25", () => {
  test("KILL without a database kills every pooled client of every database (the console stays); new ones wait for RESUME", async () => {
    const p = await pooler();
    const one = await connect(p);
    const two = await connect(p, { database: "multi" });
    await one.query("SELECT 1");
    await two.query("SELECT 1");
    const a = await admin(p);
    const ended = (c: Client) => new Promise<string>((resolve) => c.on("error", (e: Error & { code?: string }) => resolve(String(e.code ?? e.message))));
    const gone = [ended(one), ended(two)];
    expect((await a.query("KILL")).command).toBe("KILL");
    expect(await Promise.all(gone)).toEqual(["57P01", "57P01"]);
    const later = await connect(p);
    const answer = later.query("SELECT 5 AS n");
    expect(await Promise.race([answer.then(() => "answered"), Bun.sleep(300).then(() => "waiting")])).toBe("waiting");
    expect((await show(a, "STATE")).rows[1]).toEqual({ key: "paused", value: "yes" });
    await a.query("RESUME");
    expect((await answer).rows[0].n).toBe(5);
  });

  test("SHUTDOWN WAIT_FOR_CLIENTS stops accepting and exits once the clients left; WAIT_FOR_SERVERS waits for the transaction", async () => {
    const p = await pooler();
    const stay = await connect(p);
    await stay.query("SELECT 1");
    const a = await admin(p);
    expect((await a.query("SHUTDOWN WAIT_FOR_CLIENTS")).command).toBe("SHUTDOWN"); // answered: the console is a client it waits for
    await waitFor("shutting down", () => p.core.shuttingDown === "graceful");
    await rejection(pgConnect(p, {}, { ignoreErrors: false })); // no new connections
    expect((await stay.query("SELECT 2 AS n")).rows[0].n).toBe(2); // the client is still served
    await stay.end();
    await a.end().catch(() => undefined);
    expect(await Promise.race([p.core.exited.then(() => "exited"), Bun.sleep(5_000).then(() => "running")])).toBe("exited");

    const q = await pooler();
    const tx = await connect(q);
    await tx.query("BEGIN");
    const b = await admin(q);
    await b.query("SHUTDOWN WAIT_FOR_SERVERS").catch(() => undefined);
    await waitFor("shutting down", () => q.core.shuttingDown === "safe");
    expect((await tx.query("SELECT 3 AS n")).rows[0].n).toBe(3); // its transaction goes on
    await tx.query("COMMIT").catch(() => undefined);
    expect(await Promise.race([q.core.exited.then(() => "exited"), Bun.sleep(5_000).then(() => "running")])).toBe("exited");
  });

  test("plain SHUTDOWN exits at once: a client in a transaction is closed (57P01)", async () => {
    const p = await pooler();
    const tx = await connect(p);
    await tx.query("BEGIN");
    const ended = new Promise<string>((resolve) => tx.on("error", (e: Error & { code?: string }) => resolve(String(e.code ?? e.message))));
    const a = await admin(p);
    await a.query("SHUTDOWN").catch(() => undefined);
    expect(await ended).toBe("57P01");
    expect(await Promise.race([p.core.exited.then(() => "exited"), Bun.sleep(5_000).then(() => "running")])).toBe("exited");
  });
});

describe("workers = 2", () => {
  test("the new tables and columns show both workers' totals, whichever worker the console lands on", async () => {
    const pb = track(
      await startPgbun({
        pg,
        config: {
          pgbun: { pool_mode: "transaction", workers: 2, default_pool_size: 24, admin_users: [ADMIN], log_level: "info" },
          databases: { app: { host: pg.host, port: pg.port, password: pg.password } },
        },
      }),
      (pb) => pb.stop(),
    );
    await waitFor("both workers listening", () => pb.logs().split('"msg":"pgbun listening"').length === 3, 20_000);
    const N = 10;
    const pooled = await Promise.all(Array.from({ length: N }, () => connect(pb, { password: pg.password })));
    await Promise.all(pooled.map((c) => c.query("SELECT 1")));
    const consoles = await Promise.all(Array.from({ length: 4 }, () => connect(pb, { user: ADMIN, database: "pgbouncer", password: undefined })));
    for (const a of consoles) {
      const stats = await show(a, "STATS");
      expect(stats.columns).toEqual(PGBOUNCER_125.STATS);
      expect(num(rowOf(stats.rows, { database: "app" }).total_client_login_count)).toBe(N);
      const totals = await show(a, "TOTALS");
      expect(num(rowOf(totals.rows, { name: "total_client_login_count" }).value)).toBe(N);
      const mem = await show(a, "MEM");
      expect(num(rowOf(mem.rows, { name: "clients" }).used)).toBe(N + consoles.length);
      const sockets = await show(a, "SOCKETS");
      expect(sockets.rows.filter((r) => r.type === "C" && r.database === "app").length).toBe(N);
      expect((await show(a, "PEERS")).rows.map((r) => r.peer_id)).toEqual(["0", "1"]);
      const pools = await show(a, "POOLS");
      expect(pools.columns).toEqual([...PGBOUNCER_125.POOLS, "health", "last_check", "last_error", "check_failures"]);
      expect(num(rowOf(pools.rows, { database: "app" }).cl_active)).toBe(N);
      expect(num(rowOf((await show(a, "LISTS")).rows, { list: "peers" }).items)).toBe(2);
    }
  });
});
