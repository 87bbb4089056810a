// Console authorization on every command (CVE-2026-6667 class): stats_users only SHOW, anyone else refused, checked at each command.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { closeAfterEach, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { BUILT_IN_KEYWORDS, SHOW_TARGETS } from "../../plugins/admin/commands.ts";

setDefaultTimeout(30_000);

const ADMIN = "admin";
const WATCHER = "watcher";
/** The password of an entry's forced user: no SHOW may carry it. */
const SECRET = "Qx7-entry-secret-9Lm";
const pg = usePostgres();
const track = closeAfterEach();

beforeAll(async () => {
  await pg.psql(`DROP ROLE IF EXISTS secretive; CREATE ROLE secretive LOGIN PASSWORD '${SECRET}'`);
});

async function pooler(): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, admin_users: [ADMIN], stats_users: [WATCHER] },
    databases: {
      app: { host: pg.host, port: pg.port, password: pg.password },
      sec: { host: pg.host, port: pg.port, dbname: "app", user: "secretive", password: SECRET },
    },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler, opts: Record<string, unknown> = {}): Promise<Client> => track(await pgConnect(p, opts), (c) => c.end());

/**
 * Every form of every built-in command that is not SHOW, by keyword (`ID`: a live pooled client's id). A keyword
 * the console learns without a line here fails the test, so a new command cannot skip the check.
 */
const COMMANDS: Record<string, string[]> = {
  pause: ["PAUSE", "PAUSE app"],
  resume: ["RESUME", "RESUME app"],
  reconnect: ["RECONNECT", "RECONNECT app"],
  wait_close: ["WAIT_CLOSE", "WAIT_CLOSE app"],
  kill: ["KILL", "KILL app"],
  disable: ["DISABLE app"],
  enable: ["ENABLE app"],
  kill_client: ["KILL_CLIENT ID"],
  reload: ["RELOAD"],
  suspend: ["SUSPEND"],
  set: ["SET default_pool_size = 9", "SET admin_users = 'watcher'", "set stats_users to ''"],
  shutdown: ["SHUTDOWN", "SHUTDOWN WAIT_FOR_SERVERS", "SHUTDOWN WAIT_FOR_CLIENTS"],
};

describe("console authorization", () => {
  test("every built-in keyword has its forms in this test", () => {
    const missing = [...BUILT_IN_KEYWORDS].filter((k) => k !== "show" && COMMANDS[k] === undefined);
    expect(missing).toEqual([]);
  });

  test("stats_users are refused every command but SHOW (KILL_CLIENT too), and none of them has any effect", async () => {
    const p = await pooler();
    const victim = await connect(p, { application_name: "victim" });
    await victim.query("SELECT 1");
    const a = await connect(p, { user: ADMIN, database: "pgbouncer" });
    const id = ((await a.query("SHOW CLIENTS")).rows as Array<{ id: string; application_name: string }>).find((r) => r.application_name === "victim")!.id;
    for (const db of ["pgbouncer", "pgbun"]) {
      const watcher = await connect(p, { user: WATCHER, database: db });
      for (const [keyword, forms] of Object.entries(COMMANDS)) {
        for (const form of forms) {
          const sql = form.replace("ID", id);
          const err = await rejection(watcher.query(sql));
          expect([keyword, sql, err.code, err.message]).toEqual([keyword, sql, "42501", "admin access needed"]);
        }
      }
      // the session is still usable for what it may do
      expect((await watcher.query("SHOW VERSION")).rows.length).toBe(1);
    }
    // nothing happened: the client lives, nothing is paused, killed, disabled or shutting down, no setting changed
    expect(p.core.shuttingDown).toBeNull();
    expect((await victim.query("SELECT 2 AS n")).rows[0].n).toBe(2);
    await (await connect(p)).query("SELECT 1");
    const config = (await a.query("SHOW CONFIG")).rows as Array<{ key: string; value: string }>;
    expect(config.find((r) => r.key === "default_pool_size")!.value).toBe("2");
    expect(config.find((r) => r.key === "admin_users")!.value).toBe(ADMIN);
    expect(config.find((r) => r.key === "stats_users")!.value).toBe(WATCHER);
    const state = (await a.query("SHOW STATE")).rows as Array<{ key: string; value: string }>;
    expect(state.find((r) => r.key === "paused")!.value).toBe("no");
  });

  test("stats_users may run every SHOW, and no SHOW carries a server password", async () => {
    const p = await pooler();
    await (await connect(p, { database: "sec" })).query("SELECT 1");
    const watcher = await connect(p, { user: WATCHER, database: "pgbouncer" });
    expect(JSON.stringify((await watcher.query("SHOW SERVERS")).rows)).toContain("secretive");
    for (const target of SHOW_TARGETS) {
      const r = await watcher.query(`SHOW ${target.toUpperCase()}`);
      expect([target, r.command]).toEqual([target, "SHOW"]);
      expect([target, JSON.stringify(r.rows).includes(SECRET)]).toEqual([target, false]);
    }
  });

  test("a user in neither list is refused at login under both names; one taken out of the lists is refused at the next command", async () => {
    const p = await pooler();
    for (const database of ["pgbouncer", "pgbun"]) {
      const err = await rejection(pgConnect(p, { user: "postgres", database }, { ignoreErrors: false }));
      expect([database, err.code, err.message]).toEqual([database, "28000", "not allowed to connect to the admin console"]);
    }
    const watcher = await connect(p, { user: WATCHER, database: "pgbouncer" });
    expect((await watcher.query("SHOW POOLS")).command).toBe("SHOW");
    const a = await connect(p, { user: ADMIN, database: "pgbouncer" });
    await a.query("SET stats_users = ''");
    const err = await rejection(watcher.query("SHOW POOLS"));
    expect([err.code, err.message]).toEqual(["42501", "not allowed to use the admin console"]);
  });
});
