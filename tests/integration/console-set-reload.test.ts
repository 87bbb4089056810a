// The console's SET and RELOAD: applied before the answer, refused with file/key/reason, restart-only settings reported as such.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { Client } from "pg";
import type { NoticeMessage } from "pg-protocol/dist/messages";
import { closeAfterEach, pgConnect, rejection, usePostgres, waitFor } from "../harness/fixtures.ts";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { IGNORED_SETTINGS, SETTINGS, type SettingName } from "../../core/config/settings.ts";
import { RESTART_SETTINGS } from "../../plugin-sdk/restart-settings.ts";

setDefaultTimeout(60_000);

const ADMIN = "admin";
const pg = usePostgres();
const track = closeAfterEach();

async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, admin_users: [ADMIN], ...settings },
    databases: { app: { host: pg.host, port: pg.port, password: pg.password } },
  });
  return track(p, (p) => p.stop());
}

async function subprocess(settings: Record<string, unknown> = {}): Promise<TestPgbun> {
  const pb = await startPgbun({
    pg,
    config: {
      pgbun: { pool_mode: "transaction", admin_users: [ADMIN], default_pool_size: 3, log_level: "info", ...settings },
      databases: { app: { host: pg.host, port: pg.port, password: pg.password } },
    },
  });
  return track(pb, (pb) => pb.stop());
}

type Endpoint = { host: string; port: number };
const connect = async (p: Endpoint, opts: Record<string, unknown> = {}): Promise<Client> => track(await pgConnect(p, opts), (c) => c.end());
const admin = (p: Endpoint) => connect(p, { user: ADMIN, database: "pgbouncer", password: undefined });

async function config(c: Client, key: string): Promise<{ value: string; changeable: string }> {
  const rows = (await c.query("SHOW CONFIG")).rows as Array<{ key: string; value: string; changeable: string }>;
  const row = rows.find((r) => r.key === key);
  if (!row) throw new Error(`no setting ${key}`);
  return row;
}

/** Runs `sql` on `c`, collecting the NOTICE/WARNING messages it causes (severity, code, message). */
async function withNotices(c: Client, sql: string): Promise<{ tag: string; notices: Array<{ severity?: string; code?: string; message: string }> }> {
  const notices: Array<{ severity?: string; code?: string; message: string }> = [];
  const on = (n: NoticeMessage): void => {
    notices.push({ severity: n.severity, code: n.code, message: n.message ?? "" });
  };
  c.on("notice", on);
  try {
    const r = await c.query(sql);
    await Bun.sleep(20); // pg emits notices as they are read: they came before the reply's end
    return { tag: r.command, notices };
  } finally {
    c.off("notice", on);
  }
}

function editConfig(pb: TestPgbun, edit: (cfg: Record<string, Record<string, unknown>>) => void): void {
  const cfg = JSON.parse(readFileSync(pb.configFile, "utf8"));
  edit(cfg);
  writeFileSync(pb.configFile, JSON.stringify(cfg));
}

describe("SET", () => {
  test("SET changes a run-time setting: SHOW CONFIG shows it and it takes effect (max_client_conn refuses the next login)", async () => {
    const p = await pooler({ max_client_conn: 100 });
    const a = await admin(p);
    expect((await a.query("SET max_client_conn = 2")).command).toBe("SET");
    expect((await config(a, "max_client_conn")).value).toBe("2");
    await (await connect(p)).query("SELECT 1"); // the console and this one: 2
    const err = await rejection(pgConnect(p, {}, { ignoreErrors: false }));
    expect(err.message).toContain("max_client_conn");
    expect((await a.query("SET max_client_conn TO '100'")).command).toBe("SET");
    await (await connect(p)).query("SELECT 1");
  });

  test("SET admin_users takes effect for the next login and for the sessions already open", async () => {
    const p = await pooler({ stats_users: ["watcher"] });
    const a = await admin(p);
    const watcher = await connect(p, { user: "watcher", database: "pgbouncer" });
    expect((await rejection(watcher.query("RECONNECT"))).code).toBe("42501");
    await a.query("SET admin_users = 'admin,watcher'");
    expect((await config(a, "admin_users")).value).toBe("admin,watcher");
    expect((await watcher.query("RECONNECT")).command).toBe("RECONNECT");
    // taken out again: the open session of a former admin is refused at its next command
    await a.query("SET admin_users = 'admin'");
    expect((await rejection(watcher.query("RECONNECT"))).code).toBe("42501");
  });

  test("a restart-only setting is refused with 55P02; unknown names 42704; bad values 22023; nothing changes", async () => {
    const p = await pooler();
    const a = await admin(p);
    const port = (await config(a, "listen_port")).value;
    expect((await config(a, "listen_port")).changeable).toBe("no");
    let err = await rejection(a.query("SET listen_port = 7777"));
    expect([err.code, err.message]).toEqual(["55P02", "SET listen_port: listen_port cannot be changed without restarting pgbun"]);
    expect((await config(a, "listen_port")).value).toBe(port);
    err = await rejection(a.query("SET no_such_setting = 1"));
    expect(err.code).toBe("42704");
    expect(err.message).toContain("no_such_setting");
    err = await rejection(a.query("SET default_pool_size = lots"));
    expect(err.code).toBe("22023");
    expect(err.message).toStartWith("SET default_pool_size: ");
    err = await rejection(a.query("SET min_pool_size = 50")); // larger than default_pool_size 2
    expect(err.code).toBe("22023");
    expect((await config(a, "default_pool_size")).value).toBe("2");
    expect((await config(a, "min_pool_size")).value).toBe("0");
    // the session is still usable
    expect((await a.query("SHOW VERSION")).rows.length).toBe(1);
  });
});

test("SET of a setting pgbun accepts and does not act on answers SET with a WARNING saying so", async () => {
  // any harmless one of the table (it shrinks as settings get implemented), with a value other than its default
  const entry = Object.entries(IGNORED_SETTINGS).find(([n, e]) => e!.verdict === "harmless" && !RESTART_SETTINGS.has(n as SettingName) && SETTINGS[n as SettingName].kind.type === "int");
  if (!entry) return; // every harmless setting is acted on now
  const name = entry[0] as SettingName;
  const p = await pooler();
  const a = await admin(p);
  const value = String(Number(SETTINGS[name].default) + 7);
  const r = await withNotices(a, `SET ${name} = ${value}`);
  expect(r.tag).toBe("SET");
  expect(r.notices).toEqual([{ severity: "WARNING", code: "01000", message: expect.stringContaining(`${name} is accepted for PgBouncer compatibility and not acted on`) }]);
  expect((await config(a, name)).value).toBe(value);
  // set again to the same value: nothing changes, nothing to warn about
  expect((await withNotices(a, `SET ${name} = ${value}`)).notices).toEqual([]);
});

describe("RELOAD", () => {
  test("answers once applied; a broken file is an error naming file, key and reason and changes nothing; a SET lasts until the next RELOAD", async () => {
    const pb = await subprocess();
    const a = await admin(pb);
    editConfig(pb, (cfg) => (cfg.pgbun!.default_pool_size = 7));
    expect((await a.query("RELOAD")).command).toBe("RELOAD");
    expect((await config(a, "default_pool_size")).value).toBe("7"); // no wait: applied before the answer

    editConfig(pb, (cfg) => (cfg.pgbun!.default_pool_size = "seven"));
    const err = await rejection(a.query("RELOAD"));
    expect(err.code).toBe("F0000");
    expect(err.message).toStartWith(`${pb.configFile}: pgbun.default_pool_size: `);
    expect((await config(a, "default_pool_size")).value).toBe("7");

    editConfig(pb, (cfg) => (cfg.pgbun!.default_pool_size = 4));
    await a.query("SET default_pool_size = 9");
    expect((await config(a, "default_pool_size")).value).toBe("9");
    await a.query("RELOAD");
    expect((await config(a, "default_pool_size")).value).toBe("4"); // the file again, as PgBouncer
  });

  test("a listen_port change is a WARNING (55P02): the rest is applied, the old port stays in force and keeps serving", async () => {
    const pb = await subprocess();
    const a = await admin(pb);
    editConfig(pb, (cfg) => {
      cfg.pgbun!.listen_port = pb.port + 1;
      cfg.pgbun!.default_pool_size = 5;
    });
    const r = await withNotices(a, "RELOAD");
    expect(r.tag).toBe("RELOAD");
    expect(r.notices).toEqual([
      {
        severity: "WARNING",
        code: "55P02",
        message: `listen_port cannot be changed without restarting pgbun: ${pb.port} stays in force (the configuration asks for ${pb.port + 1})`,
      },
    ]);
    expect((await config(a, "listen_port")).value).toBe(String(pb.port));
    expect((await config(a, "default_pool_size")).value).toBe("5");
    const c = await connect(pb);
    expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    expect(pb.logs()).toContain("listen_port changed: it takes effect only after a restart");
  });
});

describe("workers = 2", () => {
  test("RELOAD and SET apply on every worker before the answer; a broken file is the error", async () => {
    const pb = await subprocess({ workers: 2 });
    await waitFor("both workers listening", () => pb.logs().split('"msg":"pgbun listening"').length === 3, 20_000);
    const a = await admin(pb);
    await a.query("SET default_pool_size = 6");
    // the other worker applied it too (its log line; the consoles below land on either worker)
    await waitFor("the sibling's SET", () => pb.logs().includes('"command":"SET default_pool_size"'));
    const consoles = await Promise.all(Array.from({ length: 6 }, () => admin(pb)));
    for (const c of consoles) expect((await config(c, "default_pool_size")).value).toBe("6");

    editConfig(pb, (cfg) => (cfg.pgbun!.default_pool_size = 8));
    expect((await a.query("RELOAD")).command).toBe("RELOAD");
    for (const c of consoles) expect((await config(c, "default_pool_size")).value).toBe("8");

    editConfig(pb, (cfg) => (cfg.pgbun!.max_client_conn = -1));
    const err = await rejection(a.query("RELOAD"));
    expect(err.code).toBe("F0000");
    expect(err.message).toContain("pgbun.max_client_conn");
    for (const c of consoles) expect((await config(c, "default_pool_size")).value).toBe("8");
  });
});
