// pgbun:health-check and pool health with a real PostgreSQL: killed idle servers, background checks, a stopped and restarted PostgreSQL (issue 12, item 1).
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { closeAfterEach, initPgbench, pgConnect, runPgbench, usePostgres, waitFor, withPgbun } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import type { PoolApi, PoolInfo } from "../../plugin-sdk/index.ts";

setDefaultTimeout(90_000);

const pg = usePostgres();
const track = closeAfterEach();

beforeAll(async () => {
  await initPgbench(pg);
});

async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 4, ...settings },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: { host: string; port: number }) => track(await pgConnect({ host: p.host, port: p.port }), (c) => c.end());
const poolOf = (p: TestPooler): PoolInfo => [...(p.core.capability("pool") as PoolApi).pools()][0]!;
const serverPids = async () => (await pg.psql(`SELECT pid FROM pg_stat_activity WHERE datname = 'app' AND usename = 'postgres' AND pid <> pg_backend_pid()`)).split("\n").filter(Boolean);

describe("killed idle servers", () => {
  test("pg_terminate_backend on every idle server: the next queries all succeed (server_check_delay = 0)", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", default_pool_size: 4, server_check_delay: 0, log_level: "info" } }, async (f) => {
      const clients = await Promise.all(Array.from({ length: 4 }, () => connect(f.pb)));
      for (let round = 0; round < 3; round++) {
        // fill the pool with 4 idle servers, kill them all, and query at once: none may be handed a dead server
        await Promise.all(clients.map((c) => c.query("SELECT pg_sleep(0.1)")));
        const pids = await serverPids();
        expect(pids.length).toBe(4);
        await pg.psql(pids.map((pid) => `SELECT pg_terminate_backend(${pid});`).join(""));
        const results = await Promise.allSettled(clients.map((c) => c.query("SELECT 1 AS one")));
        expect(results.map((r) => (r.status === "fulfilled" ? "ok" : String(r.reason)))).toEqual(["ok", "ok", "ok", "ok"]);
      }
    });
  });
});

describe("background checks", () => {
  test("idle servers are checked without any client, and the pool says healthy", async () => {
    const p = await pooler({ server_check_delay: 1 });
    const c = await connect(p);
    await c.query("SELECT 1");
    const first = poolOf(p).health.lastCheck;
    expect(poolOf(p).health.state).toBe("healthy");
    // no client activity: only the background check can move lastCheck
    await waitFor("a background check", () => poolOf(p).health.lastCheck > first, 5_000);
    expect(poolOf(p).health.state).toBe("healthy");
    expect(poolOf(p).health.consecutiveFailures).toBe(0);
  });
});

/** Stops PostgreSQL with a fast shutdown (SIGINT to the postmaster), as `pg_ctl stop -m fast` does. */
async function stopFast(): Promise<void> {
  const pidFile = join(pg.dataDir, "postmaster.pid");
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  process.kill(pid, "SIGINT");
  await waitFor("postmaster gone", () => !existsSync(pidFile), 20_000);
  await pg.stopServer(); // already stopped: marks it so for startServer
}

describe("PostgreSQL stopped under load, then started", () => {
  for (const mode of ["fast", "immediate"] as const) {
    test(`${mode} stop: errors while down, no crash, unhealthy then healthy, no leaked servers, new clients work within 2 s`, async () => {
      const p = await pooler({ default_pool_size: 6, query_wait_timeout: 2, server_login_retry: 15 });
      const load = runPgbench(pg, p, ["-n", "-S", "-c", "6", "-T", "4"], 30_000);
      await Bun.sleep(1_500);
      if (mode === "fast") await stopFast();
      else await pg.stopServer();
      // a client while it is down gets an error (PostgreSQL's, or the connect failure's), not a hang
      const down = await connect(p).then(
        (c) => c.query("SELECT 1").then(() => "ok", (e: Error) => e.message),
        (e: Error) => e.message,
      );
      expect(down).not.toBe("ok");
      await load;
      expect(poolOf(p).health.state).toBe("unhealthy");
      await Bun.sleep(1_000);
      await pg.startServer();
      const ready = Date.now();
      let elapsed = -1;
      while (Date.now() - ready < 5_000) {
        const ok = await pgConnect({ host: p.host, port: p.port })
          .then(async (c) => {
            try {
              await c.query("SELECT 1");
              return true;
            } finally {
              await c.end();
            }
          })
          .catch(() => false);
        if (ok) {
          elapsed = Date.now() - ready;
          break;
        }
        await Bun.sleep(50);
      }
      expect(elapsed).toBeGreaterThanOrEqual(0);
      expect(elapsed).toBeLessThan(2_000);
      expect(poolOf(p).health.state).toBe("healthy");
      // pgbun's servers are exactly PostgreSQL's backends for it: nothing leaked, nothing half-open
      const mine = [...p.core.servers].filter((s) => s.state !== "closed").length;
      await waitFor("backends match servers", async () => (await serverPids()).length === mine, 5_000);
    });
  }
});
