// The read-write-split example on a real primary and streaming replica: BEGIN READ ONLY runs on the replica.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join, resolve } from "node:path";
import type { Client } from "pg";
import { harnessTempDir } from "../harness/postgres.ts";
import { startReplicaSet, type TestReplicaSet } from "../harness/replica.ts";
import { closeAfterEach, pgConnect } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import type { ReadWriteSplitOptions } from "../../examples/read-write-split.ts";

setDefaultTimeout(60_000);

const EXAMPLE = join(resolve(import.meta.dir, "..", ".."), "examples", "read-write-split.ts");

let set: TestReplicaSet;
beforeAll(async () => {
  set = await startReplicaSet();
  await set.primary.psql("CREATE TABLE split_t (n int)", "app");
  await set.caughtUp();
}, 60_000);
afterAll(() => set?.stop());
const track = closeAfterEach();

/** app on the primary, app_replica on the standby (its read-only transactions' entry), the example loaded by path. */
async function pooler(): Promise<TestPooler> {
  const auth = `dbname=app password=${set.primary.password}`;
  const p = await startTestPooler({
    upstream: { host: "127.0.0.1", port: set.primary.port, password: set.primary.password },
    settings: { pool_mode: "transaction", default_pool_size: 2 },
    databases: { app: `host=127.0.0.1 port=${set.primary.port} ${auth}`, app_replica: `host=127.0.0.1 port=${set.standby.port} ${auth} target_session_attrs=standby` },
    plugins: [[EXAMPLE, { replicas: { app: "app_replica" }, poolSize: 2 } satisfies ReadWriteSplitOptions as Record<string, unknown>]],
    dir: await harnessTempDir("example-rw-split"),
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler): Promise<Client> => track(await pgConnect(p), (c) => c.end());

/** "port standby?" of the server running the client's statement. */
async function where(c: Client): Promise<string> {
  const r = await c.query<{ port: number; standby: boolean }>("SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby");
  return `${r.rows[0]!.port} ${r.rows[0]!.standby}`;
}

describe("the read-write-split example", () => {
  test("BEGIN READ ONLY and START TRANSACTION READ ONLY run on the replica; the client's other statements on the primary", async () => {
    const p = await pooler();
    const c = await connect(p);
    const primary = `${set.primary.port} false`;
    const replica = `${set.standby.port} true`;
    expect(await where(c)).toBe(primary);
    for (const begin of ["BEGIN READ ONLY", "start transaction isolation level repeatable read, read only"]) {
      await c.query(begin);
      expect(await where(c)).toBe(replica);
      await c.query("COMMIT");
      // the next transaction is judged afresh: a plain one goes back to the primary
      expect(await where(c)).toBe(primary);
    }
    await c.query("BEGIN");
    await c.query("INSERT INTO split_t VALUES (1)");
    expect(await where(c)).toBe(primary);
    await c.query("COMMIT");
    await c.query("BEGIN READ WRITE");
    expect(await where(c)).toBe(primary);
    await c.query("COMMIT");
  });

  test("read-only transactions of concurrent clients share the replica pool; the next client sees the replicated data", async () => {
    const p = await pooler();
    const writer = await connect(p);
    await writer.query("INSERT INTO split_t VALUES (42)");
    await set.caughtUp();
    const readers = await Promise.all(Array.from({ length: 5 }, () => connect(p)));
    const seen = await Promise.all(
      readers.map(async (c) => {
        await c.query("BEGIN READ ONLY");
        const r = await c.query<{ n: number; standby: boolean }>("SELECT count(*)::int AS n, pg_is_in_recovery() AS standby FROM split_t WHERE n = 42");
        await c.query("COMMIT");
        return r.rows[0];
      }),
    );
    expect(seen).toEqual(Array(5).fill({ n: 1, standby: true }));
    // at most poolSize replica backends served them
    const backends = Number(await set.standby.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = 'app'"));
    expect(backends).toBeLessThanOrEqual(2 + 1); // the pool's two, and this psql's own
  });

  test("with the replica down, read-only transactions run on the primary", async () => {
    const p = await pooler();
    await set.standby.stopServer();
    const c = await connect(p);
    await c.query("BEGIN READ ONLY");
    expect(await where(c)).toBe(`${set.primary.port} false`);
    await c.query("COMMIT");
  });
});
