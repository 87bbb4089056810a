// pgbun:stats' times: query, transaction and wait times in µs (waitedMs in ms) from its one clock, and the untimed short path.
import { describe, expect, test } from "bun:test";
import { DURATION_BUCKETS, query, readyForQuery, TxStatus, type StatsApi } from "../../plugin-sdk/index.ts";
import { applyPlugin, runClientMessage, runServerMessage, type FakeClient, type TestApi } from "../../plugin-sdk/testing.ts";
import { bucketOf } from "../../plugins/stats/histogram.ts";
import statsPlugin from "../../plugins/stats/index.ts";

/** The slot of the histogram that counted exactly one event. */
const onlySlot = (series: readonly number[]) => series.findIndex((n) => n > 0);

async function world(): Promise<{ t: TestApi; stats: StatsApi; c: FakeClient }> {
  const t = await applyPlugin(statsPlugin());
  const stats = t.api.capability<StatsApi>("stats")!;
  const c = t.client({ database: "app" });
  return { t, stats, c };
}

describe("pgbun:stats times", () => {
  test("a query's and its transaction's time is what passed between the Query and its ReadyForQuery, in µs", async () => {
    const { t, stats, c } = await world();
    t.hooks.needServer.tap("pool", () => t.server());
    expect(t.acquireServer(c)).not.toBeNull();
    runClientMessage(t, c, query("SELECT pg_sleep(0.03)"));
    const t0 = performance.now();
    Bun.sleepSync(30);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    const elapsedUs = (performance.now() - t0) * 1000;
    const totals = stats.totals().get("app")!;
    expect(totals.queries).toBe(1);
    expect(totals.xacts).toBe(1);
    expect(totals.queryTime).toBeGreaterThanOrEqual(29_000);
    expect(totals.queryTime).toBeLessThan(elapsedUs + 5_000);
    expect(totals.xactTime).toBe(totals.queryTime);
    const h = stats.histograms!().get("app")!;
    // cumulative: the first slot that counts it is its bucket, the one its time falls in
    expect(onlySlot(h.query)).toBe(bucketOf(totals.queryTime));
    expect(onlySlot(h.xact)).toBe(bucketOf(totals.xactTime));
    expect(DURATION_BUCKETS[onlySlot(h.query)]! * 1e6).toBeGreaterThanOrEqual(totals.queryTime);
  });

  test("a transaction of several queries: each query's time its own, the transaction's from its first Query to 'I'", async () => {
    const { t, stats, c } = await world();
    t.hooks.needServer.tap("pool", () => t.server());
    t.acquireServer(c);
    runClientMessage(t, c, query("BEGIN"));
    runServerMessage(t, c, readyForQuery(TxStatus.InTransaction));
    Bun.sleepSync(20); // the client thinks: in the transaction's time, in no query's
    runClientMessage(t, c, query("SELECT 1"));
    Bun.sleepSync(20);
    runServerMessage(t, c, readyForQuery(TxStatus.InTransaction));
    runClientMessage(t, c, query("COMMIT"));
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    const totals = stats.totals().get("app")!;
    expect(totals.queries).toBe(3);
    expect(totals.xacts).toBe(1);
    expect(totals.queryTime).toBeGreaterThanOrEqual(19_000);
    expect(totals.queryTime).toBeLessThan(35_000);
    expect(totals.xactTime).toBeGreaterThanOrEqual(39_000);
    expect(totals.xactTime).toBeGreaterThanOrEqual(totals.queryTime + 19_000);
  });

  test("pipelined queries: the second's time runs from the first's answer, not from when it was sent", async () => {
    const { t, stats, c } = await world();
    t.hooks.needServer.tap("pool", () => t.server());
    t.acquireServer(c);
    runClientMessage(t, c, query("SELECT 1"));
    runClientMessage(t, c, query("SELECT 2"));
    Bun.sleepSync(20);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    Bun.sleepSync(20);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    const totals = stats.totals().get("app")!;
    expect(totals.queries).toBe(2);
    expect(totals.xacts).toBe(2);
    // 20 ms each, not 20 + 40
    expect(totals.queryTime).toBeGreaterThanOrEqual(38_000);
    expect(totals.queryTime).toBeLessThan(55_000);
  });

  test("a ReadyForQuery no Query started (nothing marked) counts, untimed, in the first bucket", async () => {
    const { t, stats, c } = await world();
    t.hooks.needServer.tap("pool", () => t.server());
    t.acquireServer(c);
    Bun.sleepSync(5);
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    const totals = stats.totals().get("app")!;
    expect([totals.queries, totals.xacts, totals.queryTime, totals.xactTime]).toEqual([1, 1, 0, 0]);
    const h = stats.histograms!().get("app")!;
    expect([h.query[0], h.xact[0]]).toEqual([1, 1]);
  });

  test("a wait for a server: waitedMs in ms while waiting, then the wait time in µs once a server is linked", async () => {
    const { t, stats, c } = await world();
    let free = false;
    t.hooks.needServer.tap("pool", () => (free ? t.server() : undefined));
    expect(t.acquireServer(c)).toBeNull(); // queued: the stats tap starts the wait clock
    const t0 = performance.now();
    Bun.sleepSync(30);
    const waited = stats.waitedMs(c);
    expect(waited).toBeGreaterThanOrEqual(29);
    expect(waited).toBeLessThanOrEqual(performance.now() - t0 + 5);
    free = true;
    c.linkServer(t.server());
    expect(stats.waitedMs(c)).toBe(0);
    const totals = stats.totals().get("app")!;
    expect(totals.serverAssignments).toBe(1);
    expect(totals.waitTime).toBeGreaterThanOrEqual(29_000);
    expect(totals.waitTime).toBeLessThan((performance.now() - t0) * 1000 + 5_000);
    const h = stats.histograms!().get("app")!;
    expect(onlySlot(h.wait)).toBe(bucketOf(totals.waitTime));
  });
});

describe("each client's counters, whichever client came last", () => {
  test("interleaved clients of two pools: each query, transaction, assignment and byte counts in its own pool", async () => {
    const t = await applyPlugin(statsPlugin());
    const stats = t.api.capability<StatsApi>("stats")!;
    t.hooks.needServer.tap("pool", () => t.server());
    t.hooks.serverReleased.tap("pool", () => true); // taken back, not closed
    const a = t.client({ database: "app" });
    const b = t.client({ database: "other" });
    const [sa, sb] = [t.acquireServer(a)!, t.acquireServer(b)!];
    const [a0, b0] = [sa.bytesSent, sb.bytesSent];
    runClientMessage(t, a, query("SELECT 1"));
    runClientMessage(t, b, query("BEGIN"));
    runServerMessage(t, a, readyForQuery(TxStatus.Idle));
    runServerMessage(t, b, readyForQuery(TxStatus.InTransaction));
    runClientMessage(t, b, query("COMMIT"));
    sa.bytesSent += 1000; // a's server was sent 1000 bytes more, b's 7 more, while linked
    sb.bytesSent += 7;
    runServerMessage(t, b, readyForQuery(TxStatus.Idle));
    // b looked up last: a's release must still settle a's bytes
    t.api.releaseServer(a, sa, "transaction");
    t.api.releaseServer(b, sb, "transaction");
    const [a1, b1] = [sa.bytesSent, sb.bytesSent];
    sa.bytesSent += 500; // after the release: someone else's, not a's
    const totals = stats.totals();
    const [app, other] = [totals.get("app")!, totals.get("other")!];
    expect([app.queries, app.xacts, app.serverAssignments, app.received]).toEqual([1, 1, 1, a1 - a0]);
    expect([other.queries, other.xacts, other.serverAssignments, other.received]).toEqual([2, 1, 1, b1 - b0]);
    expect(app.received).toBeGreaterThan(1000);
    expect(other.received).toBeLessThan(1000);
    // a closed client's counters are not handed to the next one
    b.close("done");
    const c = t.client({ database: "app" });
    t.acquireServer(c);
    runClientMessage(t, c, query("SELECT 1"));
    runServerMessage(t, c, readyForQuery(TxStatus.Idle));
    expect(stats.totals().get("app")!.queries).toBe(2);
    expect(stats.totals().get("other")!.queries).toBe(2);
  });
});

describe("bucketOf", () => {
  test("gives the slot a scan of the bounds gives: at and around every bound and power of two, and past the last", () => {
    const bounds = DURATION_BUCKETS.map((s) => Math.round(s * 1e6));
    const scan = (us: number) => {
      let i = 0;
      while (i < bounds.length && us > bounds[i]!) i++;
      return i;
    };
    const values = [0, -1, -1e12, NaN, Infinity, 0.25, 1, 99.999, 1e15, 2 ** 32 + 150, 2 ** 53];
    for (const b of bounds) for (const d of [-1, -1e-6, 0, 1e-6, 1]) values.push(b + d);
    for (let k = 0; k <= 34; k++) for (const d of [-0.5, 0, 0.5, 1]) values.push(2 ** k + d);
    for (let i = 0; i < 20_000; i++) values.push(Math.random() * 1.2e7);
    const wrong = values.filter((us) => bucketOf(us) !== scan(us));
    expect(wrong).toEqual([]);
  });
});
