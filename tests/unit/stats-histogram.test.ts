// pgbun:stats' duration histograms: the bucket a duration falls in, the cumulative per-database view, counts equal to the counters.
import { describe, expect, test } from "bun:test";
import { DURATION_BUCKETS, query, readyForQuery, TxStatus, type StatsApi } from "../../plugin-sdk/index.ts";
import { applyPlugin, runClientMessage, runServerMessage } from "../../plugin-sdk/testing.ts";
import { BUCKET_SLOTS, bucketOf, histogramsByDatabase, KINDS, QUERY } from "../../plugins/stats/histogram.ts";
import statsPlugin from "../../plugins/stats/index.ts";

describe("bucketOf", () => {
  test("the bounds are inclusive (Prometheus' le), log-spaced 100 µs .. 10 s, and longer goes to +Inf", () => {
    expect(DURATION_BUCKETS[0]).toBe(0.0001);
    expect(DURATION_BUCKETS.at(-1)).toBe(10);
    for (let i = 1; i < DURATION_BUCKETS.length; i++) expect(DURATION_BUCKETS[i]! / DURATION_BUCKETS[i - 1]!).toBeLessThanOrEqual(2.5);
    expect(BUCKET_SLOTS).toBe(DURATION_BUCKETS.length + 1);
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(100)).toBe(0); // exactly 100 µs: le="0.0001"
    expect(bucketOf(100.5)).toBe(1);
    expect(bucketOf(200_000)).toBe(DURATION_BUCKETS.indexOf(0.25)); // pg_sleep(0.2) and a little
    expect(bucketOf(250_000)).toBe(DURATION_BUCKETS.indexOf(0.25));
    expect(bucketOf(10_000_000)).toBe(DURATION_BUCKETS.length - 1);
    expect(bucketOf(10_000_001)).toBe(DURATION_BUCKETS.length); // +Inf
    expect(bucketOf(3_600e6)).toBe(DURATION_BUCKETS.length);
  });
});

describe("histogramsByDatabase", () => {
  test("pools of one database add up, per slot made cumulative; the +Inf entry is every event", () => {
    const pool = (database: string, slots: Record<number, number>) => {
      const p = { database, buckets: new Float64Array(BUCKET_SLOTS * KINDS) };
      for (const [i, n] of Object.entries(slots)) p.buckets[Number(i) * KINDS + QUERY] = n;
      return p;
    };
    const h = histogramsByDatabase([pool("app", { 0: 2, 3: 1 }), pool("app", { 3: 4, [BUCKET_SLOTS - 1]: 1 }), pool("other", { 1: 7 })]);
    const app = h.get("app")!;
    expect(app.bounds).toEqual(DURATION_BUCKETS);
    expect(app.query.length).toBe(BUCKET_SLOTS);
    expect(app.query.slice(0, 5)).toEqual([2, 2, 2, 7, 7]);
    expect(app.query.at(-2)).toBe(7);
    expect(app.query.at(-1)).toBe(8);
    expect(app.xact.every((n) => n === 0)).toBe(true);
    expect(app.wait.every((n) => n === 0)).toBe(true);
    expect(h.get("other")!.query.at(0)).toBe(0);
    expect(h.get("other")!.query.at(-1)).toBe(7);
  });
});

describe("pgbun:stats counts each event in one bucket", () => {
  test("queries, transactions and server assignments: the histograms' +Inf entries are the counters", async () => {
    const t = await applyPlugin(statsPlugin());
    const stats = t.api.capability<StatsApi>("stats")!;
    t.hooks.needServer.tap("pool", () => t.server());
    const c = t.client({ database: "app" });
    for (let i = 0; i < 3; i++) {
      expect(t.acquireServer(c)).not.toBeNull();
      runClientMessage(t, c, query("BEGIN"));
      runServerMessage(t, c, readyForQuery(TxStatus.InTransaction));
      runClientMessage(t, c, query("SELECT 1"));
      runServerMessage(t, c, readyForQuery(TxStatus.InTransaction));
      runClientMessage(t, c, query("COMMIT"));
      runServerMessage(t, c, readyForQuery(TxStatus.Idle));
      t.api.releaseServer(c, c.server!, "transaction");
    }
    // the console's own answers are untimed: they count in the first bucket
    stats.countServed("app", "someone");
    const totals = stats.totals().get("app")!;
    const h = stats.histograms!().get("app")!;
    expect(totals.queries).toBe(10);
    expect(h.query.at(-1)).toBe(totals.queries);
    expect(h.xact.at(-1)).toBe(totals.xacts);
    expect(totals.xacts).toBe(4);
    expect(h.wait.at(-1)).toBe(totals.serverAssignments);
    expect(totals.serverAssignments).toBe(3);
    // a fake server answers at once: everything took less than 100 µs... or a little more on a busy machine
    expect(h.query[0]).toBeGreaterThanOrEqual(1);
    expect(h.wait[0]).toBe(3); // a free server: no wait
    for (const series of [h.query, h.xact, h.wait]) for (let i = 1; i < series.length; i++) expect(series[i]!).toBeGreaterThanOrEqual(series[i - 1]!);
  });
});
