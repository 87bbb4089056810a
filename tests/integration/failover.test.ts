// Issue 12: a real primary and a streaming replica behind pgbun: read-only traffic over both, then failover.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { harnessTempDir } from "../harness/postgres.ts";
import { startReplicaSet, type TestReplicaSet } from "../harness/replica.ts";
import { closeAfterEach, pgConnect, rejection, waitFor } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(90_000);

let set: TestReplicaSet;
beforeAll(async () => {
  set = await startReplicaSet();
  await set.primary.psql("CREATE TABLE failover_t (n int)", "app");
  await set.caughtUp();
}, 60_000);
afterAll(() => set?.stop());
const track = closeAfterEach();

/**
 * ro: both hosts, round-robin (the default), any session; rw: target_session_attrs=read-write; standby: standbys
 * only. The primary is listed first, as a user would.
 */
async function pooler(): Promise<TestPooler> {
  const hosts = `host=127.0.0.1:${set.primary.port},127.0.0.1:${set.standby.port} dbname=app password=${set.primary.password}`;
  const p = await startTestPooler({
    upstream: { host: "127.0.0.1", port: set.primary.port, password: set.primary.password },
    settings: { pool_mode: "transaction", default_pool_size: 4, query_wait_timeout: 2 },
    databases: { ro: hosts, rw: `${hosts} target_session_attrs=read-write`, standby: `${hosts} target_session_attrs=standby` },
    dir: await harnessTempDir("failover"),
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler, database: string): Promise<Client> => track(await pgConnect(p, { database }), (c) => c.end());

interface Where {
  port: number;
  standby: boolean;
}
const WHERE = "SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby";

describe("primary and streaming replica", () => {
  test("read-only transactions are balanced over the primary and the replica", async () => {
    const p = await pooler();
    const clients = await Promise.all(Array.from({ length: 4 }, () => connect(p, "ro")));
    const perPort = new Map<number, number>();
    // rounds of four read-only transactions open at once: each holds a server, so all four servers serve each round
    for (let round = 0; round < 5; round++) {
      await Promise.all(clients.map((c) => c.query("BEGIN READ ONLY")));
      const rows = await Promise.all(clients.map(async (c) => (await c.query<Where>(WHERE)).rows[0]!));
      await Promise.all(clients.map((c) => c.query("COMMIT")));
      for (const { port } of rows) perPort.set(port, (perPort.get(port) ?? 0) + 1);
    }
    expect(perPort.get(set.primary.port)).toBe(10);
    expect(perPort.get(set.standby.port)).toBe(10);
  });

  test("the primary stopped and the replica promoted: pgbun follows; its transactions end with a clear error", async () => {
    const p = await pooler();
    const writer = await connect(p, "rw");
    const writerErrors: Array<Error & { code?: string }> = [];
    writer.on("error", (err) => writerErrors.push(err));
    await writer.query("BEGIN");
    const before = (await writer.query<Where>(`INSERT INTO failover_t VALUES (1); ${WHERE}`)) as unknown as Array<{ rows: Where[] }>;
    expect(before[1]!.rows[0]).toEqual({ port: set.primary.port, standby: false });
    const reader = await connect(p, "standby");
    expect((await reader.query<Where>(WHERE)).rows[0]).toEqual({ port: set.standby.port, standby: true });

    await set.primary.stopServer();
    // the transaction on the old primary ends with an error saying the connection went (PostgreSQL's or pgbun's)
    // (the session's error arrives unasked: the server went in the middle of its transaction)
    await waitFor("the writer's session to end", () => writerErrors.length > 0);
    expect(["57P01", "57P02", "08006"]).toContain(writerErrors[0]!.code!);
    // before the promotion no host is read-write
    expect((await rejection(connect(p, "rw").then((c) => c.query("SELECT 1")))).message).toMatch(/no host of database "rw"|server login failed/);

    // a failover takes a while (Patroni waits out its TTL) and clients keep asking: the failed logins meanwhile must
    // not push pgbun's next try far past the promotion (pgbun:backoff retries "no host fits", 57P03, at least once a
    // second, as a restart; at server_login_retry's 15 s cap pgbun would follow that much later)
    for (const until = Date.now() + 6_000; Date.now() < until; ) await rejection(connect(p, "rw").then((c) => c.query("SELECT 1")));
    await set.standby.promote();
    const promoted = Date.now();
    let landed: Where | undefined;
    while (landed === undefined && Date.now() - promoted < 10_000) {
      try {
        const c = await connect(p, "rw");
        const r = (await c.query(`INSERT INTO failover_t VALUES (2); ${WHERE}`)) as unknown as Array<{ rows: Where[] }>;
        landed = r[1]!.rows[0];
      } catch {
        await Bun.sleep(100);
      }
    }
    const followedMs = Date.now() - promoted;
    expect(landed).toEqual({ port: set.standby.port, standby: false });
    expect(followedMs).toBeLessThan(5_000);
    console.log(`pgbun followed the promotion in ${followedMs} ms`);

    // the standby entry's server is on a primary now: it learns so at its next ReadyForQuery (in_hot_standby off)
    // and is closed; with no standby left, a new standby login is refused
    await reader.query("SELECT 1");
    await Bun.sleep(1_500);
    const noStandby = await rejection(connect(p, "standby").then((c) => c.query("SELECT 1")));
    expect(noStandby.message).toContain('no host of database "standby" fits target_session_attrs=standby');
  });
});
