// Lifecycle integration tests: timeouts, limits, upstream login failures, signals and reload, server auth methods.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnPgbun, startPgbun } from "../harness/pgbun.ts";
import { backendPid, eventually, PgbunFixture, usePostgres, withPgbun, writePlugin } from "../harness/fixtures.ts";
import { freePort, harnessTempDir } from "../harness/postgres.ts";
import { describe as show, errorFields, loginApp, msg, readyWithin, rows, type BackendMessage, type ErrorFields } from "../harness/wire.ts";

const pg = usePostgres();

function errorsOf(messages: BackendMessage[]): ErrorFields[] {
  return messages.filter((m) => m.type === "E").map((m) => errorFields(m));
}

describe("timeouts", () => {
  test("query_wait_timeout: a client waiting for the only server gets an error within ~2.5 s; after COMMIT new clients are served", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 1, query_wait_timeout: 1 } }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      expect((await c1.query("BEGIN")).status).toBe("T");
      const t0 = Date.now();
      c2.send(msg.query("SELECT 'c2'"));
      const { messages, closed } = await c2.readUntilClosed(5_000);
      const elapsed = Date.now() - t0;
      const errors = errorsOf(messages);
      expect(errors.length).toBe(1);
      expect(errors[0]!.M).toContain("query_wait_timeout");
      expect(rows(messages)).toEqual([]);
      expect(closed).toBe(true);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(2_500);

      expect((await c1.query("COMMIT")).status).toBe("I");
      const c3 = await f.login();
      expect((await c3.query("SELECT 'c3 served'")).rows).toEqual([["c3 served"]]);
      expect((await c1.query("SELECT 'c1 still served'")).rows).toEqual([["c1 still served"]]);
    });
  }, 30_000);

  test("idle_transaction_timeout: a client idle in BEGIN is disconnected with 25P03 and the next client gets a clean server", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 1, idle_transaction_timeout: 1 } }, async (f) => {
      const idleOutside = await f.login();
      const c1 = await f.login();
      expect((await c1.query("BEGIN")).status).toBe("T");
      const t0 = Date.now();
      const { messages, closed } = await c1.readUntilClosed(5_000);
      const elapsed = Date.now() - t0;
      const errors = errorsOf(messages);
      expect(errors.map((e) => e.C)).toEqual(["25P03"]);
      expect(closed).toBe(true);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(2_500);

      const c2 = await f.login();
      const r = await c2.query("SELECT 'clean', now() = statement_timestamp()");
      expect(r.rows).toEqual([["clean", "t"]]); // not inside the old transaction
      expect(r.status).toBe("I");
      // a client idle outside any transaction is not affected by idle_transaction_timeout
      expect((await idleOutside.query("SELECT 'still connected'")).rows).toEqual([["still connected"]]);
    });
  }, 30_000);

  test("client_idle_timeout: an idle client is disconnected, a busy one is not", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 2, client_idle_timeout: 1 } }, async (f) => {
      const idle = await f.login();
      const busy = await f.login();
      const t0 = Date.now();
      const closing = idle.readUntilClosed(5_000);
      while (Date.now() - t0 < 2_000) {
        expect((await busy.query("SELECT 'busy'")).rows).toEqual([["busy"]]);
        await Bun.sleep(250);
      }
      const { messages, closed } = await closing;
      const errors = errorsOf(messages);
      expect(errors.length).toBe(1);
      expect(errors[0]!.M).toContain("client_idle_timeout");
      expect(closed).toBe(true);
      expect(busy.isClosed).toBe(false);
    });
  }, 30_000);

  test("query_timeout: a query running past it fails, and the server it ran on is not handed to the next client", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 1, query_timeout: 1 } }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      const pid1 = await backendPid(c1);
      const t0 = Date.now();
      c1.send(msg.query("SELECT 'late' FROM pg_sleep(5)"));
      const { messages } = await c1.readUntilClosed(4_000);
      const elapsed = Date.now() - t0;
      const errors = errorsOf(messages);
      expect(errors.length).toBe(1);
      expect(errors[0]!.M).toContain("query_timeout");
      expect(rows(messages)).toEqual([]);
      expect(elapsed).toBeLessThan(2_500);

      const t1 = Date.now();
      c2.send(msg.query("SELECT 'fresh', pg_backend_pid()"));
      const got = await c2.readUntilReady(8_000);
      expect(errorsOf(got)).toEqual([]);
      expect(rows(got).length).toBe(1);
      expect(rows(got)[0]![0]).toBe("fresh");
      expect(rows(got)[0]![1]).not.toBe(pid1);
      expect(Date.now() - t1).toBeLessThan(2_000);
      expect(show(await c2.readFor(300))).toBe("");
    });
  }, 30_000);

  test("server_idle_timeout: an idle server connection is closed", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 2, server_idle_timeout: 1 } }, async (f) => {
      const c = await f.login();
      const pid = await backendPid(c); // released right after: idle in the pool
      const alive = async () => (await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`)) === "1";
      expect(await alive()).toBe(true);
      const t0 = Date.now();
      expect(await eventually(async () => !(await alive()), 5_000)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(3_000);
      // the client stays logged in and gets a new server when it needs one
      const r = await c.query("SELECT 2, pg_backend_pid()");
      expect(r.rows[0]![0]).toBe("2");
      expect(r.rows[0]![1]).not.toBe(pid);
    });
  }, 30_000);
});

describe("limits and login errors", () => {
  test("max_client_conn = 3: the 4th connection gets 53300; after one leaves, a new one gets in", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 2, max_client_conn: 3 } }, async (f) => {
      const c1 = await f.login();
      await f.login();
      await f.login();
      const fourth = await f.attempt({});
      expect(errorsOf(fourth.messages).map((e) => e.C)).toEqual(["53300"]);
      expect(fourth.client.isClosed || (await fourth.client.waitClosed(2_000))).toBe(true);

      await c1.close();
      await Bun.sleep(200);
      const again = await f.login();
      expect((await again.query("SELECT 'in'")).rows).toEqual([["in"]]);
    });
  }, 30_000);

  test("an unknown database with no '*' entry gets 3D000", async () => {
    const databases = { app: { host: pg.host, port: pg.port, user: "postgres", password: pg.password, dbname: "app" } };
    await withPgbun(pg, { pgbun: { pool_mode: "transaction" }, databases }, async (f) => {
      const r = await f.attempt({ database: "nosuchdb" });
      const errors = errorsOf(r.messages);
      expect(errors.map((e) => e.C)).toEqual(["3D000"]);
      expect(r.client.isClosed || (await r.client.waitClosed(2_000))).toBe(true);
      // the configured one works
      const ok = await f.login({ database: "app" });
      expect((await ok.query("SELECT current_database()")).rows).toEqual([["app"]]);
    });
  }, 30_000);

  test("a database missing upstream gives PostgreSQL's own 3D000 error", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction" } }, async (f) => {
      const r = await f.attempt({ database: "nosuchupstream" });
      const errors = errorsOf(r.messages);
      expect(errors.length).toBe(1);
      expect(errors[0]!.C).toBe("3D000");
      expect(errors[0]!.S).toBe("FATAL");
      expect(errors[0]!.M).toBe('database "nosuchupstream" does not exist');
      expect(r.client.isClosed || (await r.client.waitClosed(2_000))).toBe(true);
    });
  }, 30_000);

  test("a wrong upstream password gives the client PostgreSQL's 28P01 rather than a hang", async () => {
    const databases = { app: { host: pg.host, port: pg.port, user: "postgres", password: "wrong-password", dbname: "app" } };
    await withPgbun(pg, { pgbun: { pool_mode: "transaction" }, databases }, async (f) => {
      for (let i = 0; i < 2; i++) {
        const t0 = Date.now();
        const r = await f.attempt({}, 8_000);
        const errors = errorsOf(r.messages);
        expect(errors.length).toBe(1);
        expect(errors[0]!.C).toBe("28P01");
        expect(errors[0]!.M).toBe('password authentication failed for user "postgres"');
        expect(r.client.isClosed || (await r.client.waitClosed(2_000))).toBe(true);
        expect(Date.now() - t0).toBeLessThan(5_000);
      }
    });
  }, 30_000);
});

describe("signals", () => {
  test("SIGTERM: new connections are refused, the connected client finishes its query, pgbun exits when it leaves", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 2 } }, async (f) => {
      const c1 = await f.login();
      c1.send(msg.query("SELECT 'done' FROM pg_sleep(1)"));
      await Bun.sleep(200);
      f.pb.proc.kill("SIGTERM");
      await Bun.sleep(200);

      let served = false;
      try {
        const c = await loginApp(f.pb, {}, 2_000);
        f.clients.push(c);
        served = (await c.query("SELECT 1")).rows.length === 1;
      } catch {
        served = false;
      }
      expect(served).toBe(false);

      const got = await c1.readUntilReady(5_000);
      expect(errorsOf(got)).toEqual([]);
      expect(rows(got)).toEqual([["done"]]);
      await Bun.sleep(500);
      expect(f.pb.proc.exitCode).toBeNull();

      await c1.close();
      const exited = await Promise.race([f.pb.proc.exited.then(() => true), Bun.sleep(3_000).then(() => false)]);
      expect(exited).toBe(true);
      expect(f.pb.proc.exitCode).toBe(0);
    });
  }, 30_000);

  test("SIGQUIT: pgbun exits at once, even with a query running", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 2 } }, async (f) => {
      const c1 = await f.login();
      c1.send(msg.query("SELECT pg_sleep(5)"));
      await Bun.sleep(300);
      const t0 = Date.now();
      f.pb.proc.kill("SIGQUIT");
      const exited = await Promise.race([f.pb.proc.exited.then(() => true), Bun.sleep(2_000).then(() => false)]);
      expect(exited).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1_500);
      expect(await c1.waitClosed(1_000)).toBe(true);
    });
  }, 30_000);

  test("SIGTERM during start-up (a plugin's apply still running) waits for start-up, then shuts down with exit 0", async () => {
    // the handlers are installed before start-up ends: without them a signal right after "pgbun listening" took
    // the default action (exit 143, the Unix socket file left behind), as a loaded CI host once showed
    const dir = await harnessTempDir("signals");
    writePlugin(dir, "slow-apply.ts", `
      import { definePlugin } from "\${SDK}";
      export default definePlugin(() => ({
        name: "slow-apply",
        async apply() {
          console.error("slow-apply: applying");
          await Bun.sleep(1500);
        },
      }));
    `);
    const port = await freePort();
    const config = {
      pgbun: { listen_addr: "127.0.0.1", listen_port: port, unix_socket_dir: dir, plugins: ["pgbun:pool", "pgbun:transaction-detection", "./slow-apply.ts"] },
      databases: { "*": { host: pg.host, port: pg.port, password: pg.password } },
    };
    writeFileSync(join(dir, "pgbun.config.json"), JSON.stringify(config));
    const { proc, logs, output } = spawnPgbun(join(dir, "pgbun.config.json"), dir);
    try {
      expect(await eventually(() => logs().includes("slow-apply: applying"), 10_000)).toBe(true);
      proc.kill("SIGTERM");
      const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "hung" as const)]);
      await Promise.race([output, Bun.sleep(500)]);
      expect({ code, signal: proc.signalCode }).toEqual({ code: 0, signal: null });
      expect(logs()).toContain("pgbun listening");
      expect(existsSync(join(dir, `.s.PGSQL.${port}`))).toBe(false);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    }
  }, 30_000);

  test("SIGHUP applies a changed default_pool_size from the config file", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 1 } }, async (f) => {
      const c1 = await f.login();
      const c2 = await f.login();
      // pool size 1: c2 waits while c1 holds the server
      expect((await c1.query("BEGIN")).status).toBe("T");
      c2.send(msg.query("SELECT 'c2'"));
      expect(await readyWithin(c2, 700)).toBe("timeout");
      expect((await c1.query("COMMIT")).status).toBe("I");
      expect(rows(await c2.readUntilReady(5_000))).toEqual([["c2"]]);

      const file = f.pb.configFile;
      const config = JSON.parse(readFileSync(file, "utf8")) as { pgbun: Record<string, unknown> };
      config.pgbun.default_pool_size = 2;
      writeFileSync(file, JSON.stringify(config, null, 2));
      f.pb.proc.kill("SIGHUP");
      expect(await eventually(() => f.pb.logs().includes("configuration reloaded"), 5_000)).toBe(true);

      // pool size 2: a second server serves c2 while c1 holds the first
      expect((await c1.query("BEGIN")).status).toBe("T");
      const pid1 = await backendPid(c1);
      c2.send(msg.query("SELECT 'c2 again', pg_backend_pid()"));
      const got = await readyWithin(c2, 3_000);
      expect(got).not.toBe("timeout");
      const row = rows(got as BackendMessage[])[0]!;
      expect(row[0]).toBe("c2 again");
      expect(row[1]).not.toBe(pid1);
      expect((await c1.query("COMMIT")).status).toBe("I");
    });
  }, 30_000);

  test("SIGHUP with a broken config file keeps the running configuration and logs that the reload failed", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 1 } }, async (f) => {
      const c1 = await f.login();
      const file = f.pb.configFile;
      writeFileSync(file, "{ this is not json");
      f.pb.proc.kill("SIGHUP");
      expect(await eventually(() => /reload failed/i.test(f.pb.logs()), 5_000)).toBe(true);
      expect(f.pb.proc.exitCode).toBeNull();

      // still serving, and still with pool size 1 in transaction mode
      const c2 = await f.login();
      expect((await c2.query("SELECT 'after bad reload'")).rows).toEqual([["after bad reload"]]);
      expect((await c1.query("BEGIN")).status).toBe("T");
      c2.send(msg.query("SELECT 'waits'"));
      expect(await readyWithin(c2, 700)).toBe("timeout");
      expect((await c1.query("COMMIT")).status).toBe("I");
      expect(rows(await c2.readUntilReady(5_000))).toEqual([["waits"]]);
    });
  }, 30_000);
});

describe("server login with each upstream auth method", () => {
  let f: PgbunFixture;
  beforeAll(async () => {
    const at = { host: pg.host, port: pg.port, dbname: "postgres" };
    const databases = {
      md5db: { ...at, user: "md5user", password: "md5pass" },
      cleardb: { ...at, user: "cleartextuser", password: "clearpass" },
      trustdb: { ...at, user: "trustuser" },
      scramdb: { ...at, user: "postgres", password: "postgres" },
      md5bad: { ...at, user: "md5user", password: "nope" },
      clearbad: { ...at, user: "cleartextuser", password: "nope" },
      scrambad: { ...at, user: "postgres", password: "nope" },
    };
    f = new PgbunFixture(await startPgbun({ config: { pgbun: { pool_mode: "transaction", log_level: "debug" }, databases }, pg }));
  }, 30_000);
  afterAll(async () => {
    await f?.dispose();
  });

  const cases: Array<[string, string, string]> = [
    ["md5", "md5db", "md5user"],
    ["password (cleartext)", "cleardb", "cleartextuser"],
    ["trust", "trustdb", "trustuser"],
    ["scram-sha-256", "scramdb", "postgres"],
  ];
  for (const [method, db, role] of cases) {
    test(`${method}: pgbun logs in as ${role} and serves queries`, async () => {
      const c = await f.login({ database: db });
      const r = await c.query("SELECT current_user, current_database()");
      expect(r.errors).toEqual([]);
      expect(r.rows).toEqual([[role, "postgres"]]);
    }, 15_000);
  }

  for (const [method, db, role] of [
    ["md5", "md5bad", "md5user"],
    ["password (cleartext)", "clearbad", "cleartextuser"],
    ["scram-sha-256", "scrambad", "postgres"],
  ] as const) {
    test(`${method} with a wrong password: the client gets PostgreSQL's 28P01`, async () => {
      const r = await f.attempt({ database: db });
      const errors = errorsOf(r.messages);
      expect(errors.map((e) => e.C)).toEqual(["28P01"]);
      expect(errors[0]!.M).toBe(`password authentication failed for user "${role}"`);
    }, 15_000);
  }
});
