// Plugins that tap ReadyForQuery only while a setting needs it (transaction-timeout, pool-statement) tap it when a reload sets it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { closeAfterEach, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();

async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 1, ...settings },
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler) => track(await pgConnect({ host: p.host, port: p.port }), (c) => c.end());

describe("transaction_timeout unset at start", () => {
  test("set by a reload (the console's SET), it ends the next transaction block left open, with 25P04", async () => {
    const p = await pooler();
    const warm = await connect(p);
    await warm.query("BEGIN");
    await warm.query("COMMIT");
    expect(p.core.setSetting("transaction_timeout", "1").restartNeeded).toEqual([]);
    const a = track(await pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }), (c) => c.end());
    const fatal = new Promise<{ code?: string; message: string }>((resolve) => a.on("error", (e: Error & { code?: string }) => resolve(e)));
    await a.query("BEGIN");
    const e = await Promise.race([fatal, Bun.sleep(5_000).then(() => ({ code: "none", message: "no error in 5 s" }))]);
    expect(e.code).toBe("25P04");
    expect(e.message).toBe("transaction_timeout");
    // the timed client's server was closed mid-transaction: the next client is served, outside any transaction
    const b = await connect(p);
    expect((await b.query("SELECT txid_current_if_assigned() IS NULL AS fresh")).rows[0].fresh).toBe(true);
  });

  test("set and unset again by reloads, a transaction block stays open", async () => {
    const p = await pooler();
    p.core.setSetting("transaction_timeout", "1");
    p.core.setSetting("transaction_timeout", "0");
    const a = await connect(p);
    await a.query("BEGIN");
    await Bun.sleep(1_800);
    expect((await a.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await a.query("COMMIT");
  });
});

describe("statement mode named by no configuration at start", () => {
  test("pool_mode = statement set by a reload: a client logging in after it has BEGIN refused with 0A000, and its session goes on", async () => {
    const p = await pooler();
    const before = await connect(p);
    await before.query("BEGIN");
    await before.query("COMMIT");
    p.core.setSetting("pool_mode", "statement");
    const a = await connect(p);
    const err = (await rejection(a.query("BEGIN"))) as Error & { code?: string };
    expect(err.code).toBe("0A000");
    expect(err.message).toBe("transaction blocks not allowed in statement pooling mode");
    expect((await a.query("SELECT txid_current_if_assigned() IS NULL AS outside")).rows[0].outside).toBe(true);
    // a client that logged in in transaction mode keeps it: its transaction block is its own
    await before.query("BEGIN");
    expect((await before.query("SELECT txid_current() IS NOT NULL AS inside")).rows[0].inside).toBe(true);
    await before.query("COMMIT");
  });
});
