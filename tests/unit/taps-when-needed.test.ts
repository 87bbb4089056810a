// transaction-timeout and pool-statement tap ReadyForQuery only once a configuration needs them, and keep the tap after.
import { describe, expect, test } from "bun:test";
import { Backend, readyForQuery, TxStatus } from "../../plugin-sdk/index.ts";
import { applyPlugin, runServerMessage, type TestApi, type TestApiOptions } from "../../plugin-sdk/testing.ts";
import poolStatement from "../../plugins/pool-statement/index.ts";
import transactionTimeout from "../../plugins/transaction-timeout/index.ts";

const rfqTaps = (t: TestApi) => t.hooks.serverMessage.get(Backend.ReadyForQuery)?.taps.map((x) => x.name) ?? [];

describe("pgbun:transaction-timeout", () => {
  const world = (o: TestApiOptions = {}) => applyPlugin(transactionTimeout(), o);

  test("no limit anywhere: ReadyForQuery is not tapped", async () => {
    expect(rfqTaps(await world())).toEqual([]);
  });

  test("a global limit, or only a [users] entry's, taps it at start", async () => {
    expect(rfqTaps(await world({ settings: { transaction_timeout: 5 } }))).toEqual(["pgbun:transaction-timeout"]);
    expect(rfqTaps(await world({ users: { app: { transaction_timeout: 5 } } }))).toEqual(["pgbun:transaction-timeout"]);
  });

  test("a reload that sets a limit taps it once; one that clears it keeps the tap, which then times nothing", async () => {
    const t = await world();
    t.reload({ settings: { transaction_timeout: 1 } });
    t.reload({ users: { app: { transaction_timeout: 2 } } });
    expect(rfqTaps(t)).toEqual(["pgbun:transaction-timeout"]);
    t.reload({ settings: { transaction_timeout: 0 }, users: {} });
    expect(rfqTaps(t)).toEqual(["pgbun:transaction-timeout"]);
    // the client sits in a transaction block, far past any limit: with none set it stays
    const c = t.client({ user: "app", database: "db" });
    const s = t.server();
    c.linkServer(s);
    runServerMessage(t, c, readyForQuery(TxStatus.InTransaction));
    t.tick(t.now + 60_000);
    expect(c.closed).toBe(false);
  });
});

describe("pgbun:pool-statement", () => {
  const world = (o: TestApiOptions = {}) => applyPlugin(poolStatement(), o);

  test("no statement mode anywhere: ReadyForQuery is not tapped", async () => {
    expect(rfqTaps(await world({ settings: { pool_mode: "transaction" }, users: { u: { pool_mode: "session" } } }))).toEqual([]);
  });

  test("statement mode in pool_mode, a [databases] entry or a [users] entry taps it at start", async () => {
    for (const o of [{ settings: { pool_mode: "statement" as const } }, { databases: { db: { pool_mode: "statement" as const } } }, { users: { u: { pool_mode: "statement" as const } } }]) {
      expect(rfqTaps(await world(o))).toEqual(["pgbun:pool-statement"]);
    }
  });

  test("a reload that names statement mode taps it once; later reloads keep it (clients keep their login's mode)", async () => {
    const t = await world();
    t.reload({ databases: { db: { pool_mode: "statement" } } });
    t.reload({ settings: { pool_mode: "statement" } });
    t.reload({ settings: { pool_mode: "transaction" }, databases: {} });
    expect(rfqTaps(t)).toEqual(["pgbun:pool-statement"]);
  });
});
