// pgbun:metrics' pieces without a server: the sum over workers, a sibling's JSON checked, the SQLSTATE class reader.
import { describe, expect, test } from "bun:test";
import { errorResponse } from "../../plugin-sdk/index.ts";
import { sqlstateClass } from "../../plugins/metrics/errors.ts";
import { checkSnapshot, mergeSnapshots, type PoolSample, type Snapshot } from "../../plugins/metrics/snapshot.ts";

function pool(over: Partial<PoolSample> = {}): PoolSample {
  return { database: "app", user: "u", mode: "transaction", clActive: 1, clWaiting: 0, svActive: 1, svIdle: 2, svUsed: 0, svTested: 0, svLogin: 0, svBeingCanceled: 0, maxWaitMs: 0, health: null, ...over };
}

function snap(worker: number, over: Partial<Snapshot> = {}): Snapshot {
  return {
    time: 1000 + worker,
    version: "0.1.0",
    workers: [worker],
    missing: [],
    clients: { login: 0, active: 1, waiting: 0 },
    servers: { idle: 2, active: 1 },
    pools: [pool()],
    stats: { app: { xacts: 10, queries: 20, queryTime: 1_000 } },
    buckets: [0.001, 0.1],
    histograms: { app: { query: [15, 19, 20], xact: [8, 10, 10], wait: [0, 0, 0] } },
    errors: { app: { "42": 1 } },
    faults: { "pgbun:stats": 0 },
    maxClientConn: 100,
    ...over,
  };
}

describe("mergeSnapshots", () => {
  test("counts and totals add up, the longest wait wins, the worst health and the latest check are kept", () => {
    const a = snap(0, { pools: [pool({ maxWaitMs: 5, health: { state: "healthy", lastCheck: 10, lastError: "", consecutiveFailures: 0 } })] });
    const b = snap(1, {
      pools: [pool({ clWaiting: 3, maxWaitMs: 9, health: { state: "unhealthy", lastCheck: 20, lastError: "refused", consecutiveFailures: 4 } }), pool({ database: "other" })],
      errors: { app: { "42": 2, "22": 1 } },
      faults: { "pgbun:stats": 2 },
    });
    const m = mergeSnapshots([a, b], [2]);
    expect(m.workers).toEqual([0, 1]);
    expect(m.missing).toEqual([2]);
    expect(m.time).toBe(1001);
    expect(m.clients.active).toBe(2);
    expect(m.servers.idle).toBe(4);
    expect(m.maxClientConn).toBe(200);
    expect({ ...m.stats.app }).toEqual({ xacts: 20, queries: 40, queryTime: 2_000 });
    expect({ ...m.errors.app }).toEqual({ "42": 3, "22": 1 });
    expect(m.faults["pgbun:stats"]).toBe(2);
    expect(m.pools.map((p) => p.database)).toEqual(["app", "other"]);
    const app = m.pools[0]!;
    expect(app.clActive).toBe(2);
    expect(app.clWaiting).toBe(3);
    expect(app.svIdle).toBe(4);
    expect(app.maxWaitMs).toBe(9);
    expect(app.health).toEqual({ state: "unhealthy", lastCheck: 20, lastError: "refused", consecutiveFailures: 4 });
  });

  test("histograms add up bucket by bucket; workers with other bounds leave no histogram rather than a wrong one", () => {
    const b = snap(1, { histograms: { app: { query: [1, 1, 2], xact: [0, 1, 1], wait: [3, 3, 3] }, other: { query: [0, 0, 1], xact: [0, 0, 0], wait: [0, 0, 0] } } });
    const m = mergeSnapshots([snap(0), b], []);
    expect(m.buckets).toEqual([0.001, 0.1]);
    expect(m.histograms.app).toEqual({ query: [16, 20, 22], xact: [8, 11, 11], wait: [3, 3, 3] });
    expect(m.histograms.other!.query).toEqual([0, 0, 1]);
    const odd = mergeSnapshots([snap(0), snap(1, { buckets: [0.5, 1] })], []);
    expect(odd.buckets).toEqual([]);
    expect(Object.keys(odd.histograms)).toEqual([]);
    // a stats plugin that keeps no histograms: the others' are kept
    expect(mergeSnapshots([snap(0), snap(1, { buckets: [], histograms: {} })], []).histograms.app!.query).toEqual([15, 19, 20]);
  });

  test("a database named __proto__ is a key like any other", () => {
    const m = mergeSnapshots([snap(0, { stats: JSON.parse('{"__proto__": {"xacts": 1}}') }), snap(1, { stats: JSON.parse('{"__proto__": {"xacts": 2}}') })], []);
    expect(Object.keys(m.stats)).toEqual(["__proto__"]);
    expect(m.stats["__proto__"]!.xacts).toBe(3);
    expect(({} as Record<string, unknown>).xacts).toBeUndefined();
  });
});

describe("checkSnapshot (a sibling is trusted no more than the bytes it sends)", () => {
  test("a well-formed snapshot comes back field for field", () => {
    const s = snap(1, { pools: [pool({ health: { state: "healthy", lastCheck: 1, lastError: "", consecutiveFailures: 0 } })] });
    const back = checkSnapshot(JSON.parse(JSON.stringify(s)))!;
    expect(back).not.toBeNull();
    expect(JSON.parse(JSON.stringify(back))).toEqual(JSON.parse(JSON.stringify(s)));
  });

  test("anything else is refused", () => {
    const good = JSON.parse(JSON.stringify(snap(1)));
    const bad = (change: (x: any) => void) => {
      const x = structuredClone(good);
      change(x);
      return checkSnapshot(x);
    };
    expect(checkSnapshot(null)).toBeNull();
    expect(checkSnapshot([])).toBeNull();
    expect(bad((x) => (x.time = "now"))).toBeNull();
    expect(bad((x) => (x.clients.active = -1))).toBeNull();
    expect(bad((x) => (x.stats.app.xacts = "10"))).toBeNull();
    expect(bad((x) => (x.stats.app = 5))).toBeNull();
    expect(bad((x) => (x.pools[0].clActive = Infinity))).toBeNull();
    expect(bad((x) => (x.pools[0].database = 7))).toBeNull();
    expect(bad((x) => (x.pools[0].health = { state: "fine", lastCheck: 0, lastError: "", consecutiveFailures: 0 }))).toBeNull();
    expect(bad((x) => (x.workers = [-1]))).toBeNull();
    expect(bad((x) => delete x.faults)).toBeNull();
    expect(bad((x) => x.histograms.app.query.push(21))).toBeNull(); // longer than the bounds say
    expect(bad((x) => (x.histograms.app.wait[0] = -1))).toBeNull();
    expect(bad((x) => (x.buckets = [0, 1]))).toBeNull();
    expect(bad((x) => delete x.histograms)).toBeNull();
  });
});

describe("sqlstateClass", () => {
  const cls = (b: Uint8Array) => {
    const k = sqlstateClass(b, 0, b.length);
    return k < 0 ? null : String.fromCharCode(k >> 8, k & 0xff);
  };
  test("reads the C field's first two characters wherever it is", () => {
    expect(cls(errorResponse("42P01", "no such table"))).toBe("42");
    expect(cls(errorResponse("57014", "canceled", "ERROR", "detail first"))).toBe("57");
  });
  test("no code, a cut message or an empty code is -1, never a read past the end", () => {
    const e = errorResponse("22012", "division by zero");
    const c = e.indexOf(0x43, 5);
    expect(sqlstateClass(e, 0, c + 1)).toBe(-1); // cut right after the field type
    expect(sqlstateClass(e, 0, c + 2)).toBe(-1); // one character of the code only
    const noCode = new Uint8Array([0x45, 0, 0, 0, 9, 0x4d, 0x61, 0, 0]);
    expect(sqlstateClass(noCode, 0, noCode.length)).toBe(-1);
    const emptyCode = new Uint8Array([0x45, 0, 0, 0, 7, 0x43, 0, 0]);
    expect(sqlstateClass(emptyCode, 0, emptyCode.length)).toBe(-1);
  });
});
