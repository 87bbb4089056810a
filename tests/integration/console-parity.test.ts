// The admin console's tables against PgBouncer 1.25.2's column lists (REFERENCE.md section 9), read with pg and psql.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { closeAfterEach, findBinary, pgConnect, runClientProgram, usePostgres, waitFor } from "../harness/fixtures.ts";
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
    },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler, opts: { user?: string; database?: string } = {}): Promise<Client> => track(await pgConnect(p, opts), (c) => c.end());
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

  test("load_balance_hosts: round-robin for a host list, empty for one host, in POOLS and DATABASES", async () => {
    const p = await pooler();
    await (await connect(p)).query("SELECT 1");
    await (await connect(p, { database: "multi" })).query("SELECT 1");
    const a = await admin(p);
    const pools = (await show(a, "POOLS")).rows;
    expect(rowOf(pools, { database: "multi" }).load_balance_hosts).toBe("round-robin");
    expect(rowOf(pools, { database: "app" }).load_balance_hosts).toBe("");
    // the pool's health as pgbun:pool reports it (unknown until a check or a login says otherwise)
    expect(["healthy", "unknown"]).toContain(rowOf(pools, { database: "app" }).health!);
    const dbs = (await show(a, "DATABASES")).rows;
    expect(rowOf(dbs, { name: "multi" }).load_balance_hosts).toBe("round-robin");
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
