// pgbun:metrics: /metrics in Prometheus text format (parsed strictly) moves with pgbench, sums workers; /healthz, /readyz.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { initPgbench, parsePgbenchSummary, runPgbench, usePostgres, waitFor, sdkFrom } from "../harness/fixtures.ts";
import { freePort, startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { DURATION_BUCKETS } from "../../plugin-sdk/index.ts";
import { harnessTempDir } from "../harness/postgres.ts";

setDefaultTimeout(60_000);

const pg = usePostgres((db) => initPgbench(db));

// ---- a strict parser of the Prometheus text exposition format (0.0.4) ----

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "summary", "histogram", "untyped"]);

function parseValue(s: string, line: string): number {
  if (s === "NaN") return NaN;
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value in: ${line}`);
  return Number(s);
}

/** Labels `{a="x",b="y"}` starting at `i` of `line`; returns the labels and the index after `}`. */
function parseLabels(line: string, i: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // {
  while (line[i] !== "}") {
    const eq = line.indexOf("=", i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name) || name in labels) throw new Error(`bad or repeated label name ${name} in: ${line}`);
    if (line[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = "";
    let j = eq + 2;
    for (;; j++) {
      const c = line[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === "\\") {
        const e = line[++j];
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else throw new Error(`bad escape in: ${line}`);
      } else value += c;
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") throw new Error(`expected , or } in: ${line}`);
  }
  return [labels, i + 1];
}

/** The families of an exposition; throws on anything the format does not allow. */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("exposition does not end with a newline");
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  let current: Family | null = null;
  const familyOf = (sample: string): Family | undefined => {
    if (current && (sample === current.name || ((current.type === "summary" || current.type === "histogram") && /^(.*)_(sum|count|bucket)$/.exec(sample)?.[1] === current.name))) return current;
    return undefined;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name!)) throw new Error(`bad metric name: ${line}`);
      let f = families.get(name!);
      if (!f) {
        if (current && current.samples.length === 0 && current.type === "") throw new Error(`family ${current.name} has no TYPE`);
        f = { name: name!, type: "", help: "", samples: [] };
        families.set(name!, f);
      } else if (f !== current || f.samples.length > 0) throw new Error(`${kind} for ${name} after its samples, or family split: ${line}`);
      current = f;
      if (kind === "TYPE") {
        if (!TYPES.has(rest!) || f.type !== "") throw new Error(`bad or repeated TYPE: ${line}`);
        f.type = rest!;
      } else f.help = rest!;
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`bad sample line: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new Error(`bad sample name: ${line}`);
    let [labels, i] = line[nameEnd] === "{" ? parseLabels(line, nameEnd) : [{}, nameEnd];
    if (line[i] !== " ") throw new Error(`expected a space before the value: ${line}`);
    const parts = line.slice(i + 1).split(" ");
    if (parts.length < 1 || parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]!))) throw new Error(`bad value/timestamp: ${line}`);
    const value = parseValue(parts[0]!, line);
    const f = familyOf(name);
    if (!f) throw new Error(`sample ${name} outside its family (TYPE missing or families interleaved): ${line}`);
    if (f.type === "") throw new Error(`sample before TYPE: ${line}`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seenSeries.has(series)) throw new Error(`repeated series: ${line}`);
    seenSeries.add(series);
    if (f.type === "counter" && (value < 0 || Number.isNaN(value))) throw new Error(`negative or NaN counter: ${line}`);
    f.samples.push({ name, labels, value });
  }
  return families;
}

/** The one sample of `name` whose labels include `labels`; throws when there is none or more than one. */
function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name.replace(/_(sum|count|bucket)$/, "")) ?? families.get(name);
  const hits = (family?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return hits[0]!.value;
}

/** The sum of every sample of `name` (over all label values). */
const total = (families: Map<string, Family>, name: string) => (families.get(name)?.samples ?? []).filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);

/**
 * A histogram's series for `database` checked as Prometheus requires (le bounds rising to +Inf, counts cumulative,
 * +Inf = _count) and against the counter and seconds total it must agree with; returns its buckets by le.
 */
function checkHistogram(m: Map<string, Family>, name: string, counter: string, seconds: string | null, database = "app"): Map<string, number> {
  const f = m.get(name)!;
  expect(f.type).toBe("histogram");
  const buckets = f.samples.filter((s) => s.name === `${name}_bucket` && s.labels.database === database);
  expect(buckets.map((b) => b.labels.le)).toEqual([...DURATION_BUCKETS.map(String), "+Inf"]);
  for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
  const count = value(m, `${name}_count`, { database });
  expect(buckets.at(-1)!.value).toBe(count);
  expect(count).toBe(value(m, counter, { database }));
  if (seconds) expect(value(m, `${name}_sum`, { database })).toBeCloseTo(value(m, seconds, { database }), 6);
  return new Map(buckets.map((b) => [b.labels.le!, b.value]));
}

test("the parser refuses what the format does not allow (so a parse that passes means something)", () => {
  expect(() => parseExposition("# TYPE a counter\na 1\n")).not.toThrow();
  expect(() => parseExposition("a 1\n")).toThrow(); // no TYPE
  expect(() => parseExposition("# TYPE a counter\na -1\n")).toThrow();
  expect(() => parseExposition('# TYPE a gauge\na{x="1} 1\n')).toThrow();
  expect(() => parseExposition('# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n')).toThrow();
  expect(() => parseExposition("# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n")).toThrow();
  expect(() => parseExposition("# TYPE a gauge\na one\n")).toThrow();
  expect(() => parseExposition("# TYPE a summary\na_sum 1\na_count 2\n")).not.toThrow();
  expect(() => parseExposition('# TYPE a histogram\na_bucket{le="1"} 1\na_bucket{le="+Inf"} 2\na_sum 1\na_count 2\n')).not.toThrow();
  expect(() => parseExposition("# TYPE a gauge\na 1")).toThrow();
});

// ---- the listener ----

interface Stats {
  pb: TestPgbun;
  base: string;
}

async function startWithStats(settings: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Stats> {
  const port = await freePort();
  const pb = await startPgbun({ pg, config: { pgbun: { log_level: "info", stats_listen_port: port, ...settings }, ...extra } });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor("the stats listener", async () => (await fetch(`${base}/healthz`).catch(() => null))?.status === 200, 15_000, 100);
  } catch (err) {
    console.error(pb.logs());
    await pb.stop();
    throw err;
  }
  return { pb, base };
}

async function scrape(base: string): Promise<Map<string, Family>> {
  const r = await fetch(`${base}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return parseExposition(await r.text());
}

const APP = { database: "app" };

describe("pgbun:metrics", () => {
  test("off by default: no stats listener is opened without stats_listen_port", async () => {
    const pb = await startPgbun({ pg, config: { pgbun: { log_level: "info" } } });
    try {
      const c = new Client({ connectionString: pb.url() });
      await c.connect();
      await c.query("SELECT 1");
      await c.end();
      expect(pb.logs()).not.toContain("stats listener");
    } finally {
      await pb.stop();
    }
  });

  test("/metrics parses strictly and its counters and gauges move with pgbench", async () => {
    const { pb, base } = await startWithStats({ pool_mode: "transaction", default_pool_size: 4 });
    try {
      const before = await scrape(base);
      // PgBouncer exporter names are there from the start (for Grafana dashboards)
      expect(before.get("pgbouncer_pools_client_active_connections")?.type).toBe("gauge");
      expect(before.get("pgbouncer_stats_queries_pooled_total")?.type).toBe("counter");
      expect(before.get("pgbun_query_duration_seconds")?.type).toBe("histogram");
      expect(value(before, "pgbouncer_up")).toBe(1);
      expect(value(before, "pgbun_workers", { state: "answered" })).toBe(1);

      // while pgbench runs, its clients are active in the pool and servers are linked
      const bench = runPgbench(pg, pb, ["-c", "6", "-j", "2", "-T", "4", "-M", "extended"]);
      let sawActive = 0;
      let sawServers = 0;
      let sawLiveGauges = 0;
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline) {
        const m = await scrape(base);
        const pool = { database: "app", user: pg.superuser };
        const names = m.get("pgbouncer_pools_client_active_connections")?.samples.some((s) => s.labels.database === "app");
        // a logged-in client is active (with or without a server) or waiting for one
        if (names) sawActive = Math.max(sawActive, value(m, "pgbouncer_pools_client_active_connections", pool) + value(m, "pgbouncer_pools_client_waiting_connections", pool));
        const servers = total(m, "pgbouncer_pools_server_active_connections") + total(m, "pgbouncer_pools_server_idle_connections");
        sawServers = Math.max(sawServers, servers);
        if (value(m, "pgbun_clients", { state: "active" }) + value(m, "pgbun_clients", { state: "waiting" }) >= 6) sawLiveGauges++;
        await Bun.sleep(200);
      }
      const r = await bench;
      if (r.code !== 0) throw new Error(`pgbench failed:\n${r.output}`);
      const summary = parsePgbenchSummary(r.output);
      expect(summary.processed).toBeGreaterThan(0);
      expect(sawActive).toBe(6);
      expect(sawServers).toBeGreaterThan(0);
      expect(sawServers).toBeLessThanOrEqual(4);
      expect(sawLiveGauges).toBeGreaterThan(0);

      await waitFor("pgbench's clients to leave", async () => value(await scrape(base), "pgbun_clients", { state: "active" }) === 0, 5_000);
      const after = await scrape(base);
      // before any traffic the database has no counters yet
      const delta = (name: string) => value(after, name, APP) - (before.get(name)?.samples.some((x) => x.labels.database === "app") ? value(before, name, APP) : 0);
      // each pgbench transaction is a BEGIN..END block: one pooled transaction, seven queries (extended protocol: one Sync each)
      expect(delta("pgbouncer_stats_sql_transactions_pooled_total")).toBeGreaterThanOrEqual(summary.processed);
      expect(delta("pgbouncer_stats_queries_pooled_total")).toBeGreaterThanOrEqual(7 * summary.processed);
      expect(delta("pgbouncer_stats_binds_total")).toBeGreaterThanOrEqual(7 * summary.processed);
      expect(delta("pgbouncer_stats_received_bytes_total")).toBeGreaterThan(0);
      expect(delta("pgbouncer_stats_sent_bytes_total")).toBeGreaterThan(0);
      expect(delta("pgbouncer_stats_queries_duration_seconds_total")).toBeGreaterThan(0);
      expect(delta("pgbouncer_stats_server_in_transaction_seconds_total")).toBeGreaterThan(0);
      expect(delta("pgbouncer_stats_server_assignments_total")).toBeGreaterThanOrEqual(summary.processed);
      // the histograms count every query, transaction and server assignment the counters count, their sums are the
      // counters' seconds; pgbench's short queries fill the low buckets
      const queries = checkHistogram(after, "pgbun_query_duration_seconds", "pgbouncer_stats_queries_pooled_total", "pgbouncer_stats_queries_duration_seconds_total");
      checkHistogram(after, "pgbun_transaction_duration_seconds", "pgbouncer_stats_sql_transactions_pooled_total", "pgbouncer_stats_server_in_transaction_seconds_total");
      const waits = checkHistogram(after, "pgbun_client_wait_seconds", "pgbouncer_stats_server_assignments_total", "pgbouncer_stats_client_wait_seconds_total");
      expect(queries.get("0.01")!).toBeGreaterThan(0);
      expect(queries.get("+Inf")!).toBeGreaterThanOrEqual(7 * summary.processed);
      expect(waits.get("+Inf")!).toBeGreaterThanOrEqual(summary.processed);
      // the login counter (pgbun:stats' clientLogins, beyond PgBouncer's exporter names): pgbench's 6 clients
      expect(delta("pgbun_stats_client_logins_total")).toBeGreaterThanOrEqual(6);
      // the pool's health from its server logins
      const pool = { database: "app", user: pg.superuser };
      expect(value(after, "pgbun_pool_health", { ...pool, state: "healthy" })).toBe(1);
      expect(value(after, "pgbun_pool_health", { ...pool, state: "unhealthy" })).toBe(0);
      expect(value(after, "pgbun_pool_health_consecutive_failures", pool)).toBe(0);
      expect(value(after, "pgbun_pool_health_last_check_timestamp_seconds", pool)).toBeGreaterThan(Date.now() / 1000 - 60);
      // the dashboard's samples (one per 2 s) cover the run: time goes forward, the totals grow
      const history = (await (await fetch(`${base}/api/history`)).json()) as Array<{ time: number; stats: { all: Record<string, number> } }>;
      expect(history.length).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < history.length; i++) {
        expect(history[i]!.time).toBeGreaterThan(history[i - 1]!.time);
        expect(history[i]!.stats.all.xacts ?? 0).toBeGreaterThanOrEqual(history[i - 1]!.stats.all.xacts ?? 0);
      }
      expect(history.at(-1)!.stats.all.xacts).toBeGreaterThan(history[0]!.stats.all.xacts ?? 0);
      // SHOW DATABASES and SHOW LISTS under the exporter's names: the app database ("*" made it) with the pool's servers
      const appDb = { name: "app", database: "app", force_user: "", pool_mode: "transaction" };
      expect(value(after, "pgbouncer_databases_pool_size", appDb)).toBe(4);
      expect(value(after, "pgbouncer_databases_current_connections", appDb)).toBe(value(after, "pgbouncer_pools_server_idle_connections", pool));
      expect(value(after, "pgbouncer_databases_current_connections", appDb)).toBeGreaterThan(0);
      expect(value(after, "pgbouncer_pools")).toBe(1);
      expect(value(after, "pgbouncer_used_clients")).toBe(0);
      // gauges come back down: no client left, the servers idle in their pool
      expect(value(after, "pgbouncer_pools_client_active_connections", { database: "app", user: pg.superuser })).toBe(0);
      expect(value(after, "pgbouncer_pools_server_active_connections", { database: "app", user: pg.superuser })).toBe(0);
      expect(value(after, "pgbouncer_pools_server_idle_connections", { database: "app", user: pg.superuser })).toBeGreaterThan(0);
    } finally {
      await pb.stop();
    }
  });

  test("a pg_sleep(0.2) query and transaction land in le=0.25 and not le=0.1; a client's wait of 0.3 s and a little for a server in le=0.5", async () => {
    const { pb, base } = await startWithStats({ pool_mode: "session", default_pool_size: 1 });
    try {
      const c = new Client({ connectionString: pb.url() });
      c.on("error", () => undefined);
      await c.connect();
      await c.query("SELECT 1");
      const before = await scrape(base);
      await c.query("SELECT pg_sleep(0.2)");
      const after = await scrape(base);
      const moved = (name: string, le: string) => value(after, `${name}_bucket`, { database: "app", le }) - value(before, `${name}_bucket`, { database: "app", le });
      for (const name of ["pgbun_query_duration_seconds", "pgbun_transaction_duration_seconds"]) {
        expect([name, moved(name, "0.1")]).toEqual([name, 0]);
        expect([name, moved(name, "0.25")]).toEqual([name, 1]);
        expect([name, moved(name, "+Inf")]).toEqual([name, 1]);
      }
      checkHistogram(after, "pgbun_query_duration_seconds", "pgbouncer_stats_queries_pooled_total", "pgbouncer_stats_queries_duration_seconds_total");

      // the pool's one server is c's session: a second client waits until c leaves
      const waiter = new Client({ connectionString: pb.url() });
      waiter.on("error", () => undefined);
      const served = waiter.connect().then(() => waiter.query("SELECT 1"));
      await waitFor("the second client to wait", async () => value(await scrape(base), "pgbun_clients", { state: "waiting" }) === 1, 5_000, 20);
      await Bun.sleep(300);
      const waited = await scrape(base);
      await c.end();
      await served;
      const done = await scrape(base);
      const waitMoved = (le: string) => value(done, "pgbun_client_wait_seconds_bucket", { database: "app", le }) - value(waited, "pgbun_client_wait_seconds_bucket", { database: "app", le });
      expect(waitMoved("0.25")).toBe(0);
      expect(waitMoved("0.5")).toBe(1);
      expect(waitMoved("+Inf")).toBe(1);
      checkHistogram(done, "pgbun_client_wait_seconds", "pgbouncer_stats_server_assignments_total", "pgbouncer_stats_client_wait_seconds_total");
      await waiter.end();
    } finally {
      await pb.stop();
    }
  });

  test("errors are counted by SQLSTATE class, and a plugin's faults by plugin", async () => {
    const dir = await harnessTempDir("metrics");
    const faulty = join(dir, "faulty.ts");
    writeFileSync(
      faulty,
      `import { definePlugin } from "${sdkFrom(dir)}";\n` +
        `export default definePlugin(() => ({ name: "test-faulty", apply(api) { api.hooks.tick.tap("test-faulty", () => { throw new Error("boom"); }); } }));\n`,
    );
    const { pb, base } = await startWithStats({ pool_mode: "session", plugins: [faulty] });
    try {
      const c = new Client({ connectionString: pb.url() });
      c.on("error", () => undefined);
      await c.connect();
      for (let i = 0; i < 3; i++) await c.query("SELECT 1/0").catch(() => undefined); // 22012: class 22
      await c.query("SELECT * FROM no_such_table").catch(() => undefined); // 42P01: class 42
      await c.query("SELECT 1");
      const m = await scrape(base);
      expect(value(m, "pgbun_server_errors_total", { database: "app", class: "22" })).toBe(3);
      expect(value(m, "pgbun_server_errors_total", { database: "app", class: "42" })).toBe(1);
      expect(total(m, "pgbun_server_errors_total")).toBe(4);
      await c.end();
      // the janitor ticks about 3 times a second: the faulty tap's count grows; the built-ins have none
      let first = 0;
      await waitFor("a fault", async () => (first = value(await scrape(base), "pgbun_plugin_faults_total", { plugin: "test-faulty" })) > 0, 5_000);
      await waitFor("more faults", async () => value(await scrape(base), "pgbun_plugin_faults_total", { plugin: "test-faulty" }) > first, 5_000);
      expect(value(m, "pgbun_plugin_faults_total", { plugin: "pgbun:stats" })).toBe(0);
    } finally {
      await pb.stop();
    }
  });

  test("/healthz answers 200; /readyz is 200 while every database's host accepts connections and 503 naming one that does not", async () => {
    const dead = await freePort();
    const db = (port: number) => ({ host: pg.host, port, password: pg.password });
    const up = await startWithStats({}, { databases: { app: db(pg.port), "*": db(pg.port) } });
    try {
      // a client asking for a database that does not exist leaves an unhealthy pool: shown, but pgbun stays ready
      // (else any client could take it out of a load balancer)
      const nope = new Client({ host: up.pb.host, port: up.pb.port, user: pg.superuser, password: pg.password, database: "no_such_db" });
      nope.on("error", () => undefined);
      expect(await nope.connect().then(() => "connected", (e: { code?: string }) => e.code)).toBe("3D000");
      const h = await fetch(`${up.base}/healthz`);
      expect(h.status).toBe(200);
      expect(await h.text()).toBe("ok\n");
      const r = await fetch(`${up.base}/readyz`);
      expect(r.status).toBe(200);
      const ready = (await r.json()) as { ready: boolean; reasons: string[]; databases: Record<string, boolean>; unhealthy: Record<string, string> };
      expect(ready).toMatchObject({ ready: true, reasons: [], databases: { app: true, "*": true } });
      expect(ready.unhealthy[`no_such_db/${pg.superuser}`]).toContain("does not exist");
      expect((await fetch(`${up.base}/nothing-here`)).status).toBe(404);
      expect((await fetch(`${up.base}/metrics`, { method: "POST" })).status).toBe(405);
    } finally {
      await up.pb.stop();
    }
    // an entry that fixes its login (user=) and whose server refuses it: the configuration's own pool is unhealthy
    const wrong = { host: pg.host, port: pg.port, dbname: "app", user: pg.superuser, password: "not-the-password" };
    const down = await startWithStats({}, { databases: { app: db(pg.port), gone: db(dead), wrong } });
    try {
      expect((await fetch(`${down.base}/healthz`)).status).toBe(200); // alive, though not ready
      const c = new Client({ host: down.pb.host, port: down.pb.port, user: pg.superuser, password: pg.password, database: "wrong" });
      c.on("error", () => undefined);
      expect(await c.connect().then(() => "connected", (e: { code?: string }) => e.code)).toBe("28P01");
      const r = await fetch(`${down.base}/readyz`);
      expect(r.status).toBe(503);
      const body = (await r.json()) as { ready: boolean; reasons: string[]; databases: Record<string, boolean> };
      expect(body.ready).toBe(false);
      expect(body.databases).toEqual({ app: true, gone: false, wrong: true });
      expect(body.reasons.join("\n")).toContain("database gone: no host accepts a connection");
      expect(body.reasons.join("\n")).toContain(`pool wrong/${pg.superuser} is unhealthy`);
    } finally {
      await down.pb.stop();
    }
  });

  test("while a graceful shutdown drains its clients, /readyz answers 503 (shutting down) and /healthz 200", async () => {
    const { pb, base } = await startWithStats({ pool_mode: "session" });
    try {
      const c = new Client({ connectionString: pb.url() });
      c.on("error", () => undefined);
      await c.connect();
      await c.query("SELECT 1");
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      // SIGTERM: stop accepting, wait until the clients leave
      pb.proc.kill("SIGTERM");
      await waitFor("readiness to drop", async () => (await fetch(`${base}/readyz`)).status === 503, 5_000);
      const body = (await (await fetch(`${base}/readyz`)).json()) as { reasons: string[] };
      expect(body.reasons).toContain("shutting down");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await c.query("SELECT 2 AS v")).rows[0].v).toBe(2); // the session goes on meanwhile
      await c.end();
      expect(await pb.proc.exited).toBe(0);
    } finally {
      await pb.stop();
    }
  });

  test("a reload moves the listener to a new stats_listen_port, and port 0 closes it", async () => {
    const { pb, base } = await startWithStats({});
    try {
      const config = JSON.parse(readFileSync(pb.configFile, "utf8"));
      const moved = await freePort();
      config.pgbun.stats_listen_port = moved;
      writeFileSync(pb.configFile, JSON.stringify(config));
      pb.proc.kill("SIGHUP");
      const next = `http://127.0.0.1:${moved}`;
      await waitFor("the moved listener", async () => (await fetch(`${next}/healthz`).catch(() => null))?.status === 200, 10_000);
      expect(await fetch(`${base}/healthz`).then(() => "answered", () => "refused")).toBe("refused");
      // other addresses on the same port: the old socket makes way (it would collide with the new one)
      config.pgbun.stats_listen_addr = "*";
      writeFileSync(pb.configFile, JSON.stringify(config));
      pb.proc.kill("SIGHUP");
      const opened = () => pb.logs().split("stats listener (").length - 1; // one line per listener opened
      await waitFor("the reload's outcome", () => opened() >= 3 || pb.logs().includes("stats listener not moved"), 10_000);
      expect(pb.logs()).not.toContain("stats listener not moved");
      expect((await fetch(`${next}/healthz`)).status).toBe(200);
      config.pgbun.stats_listen_port = 0;
      writeFileSync(pb.configFile, JSON.stringify(config));
      pb.proc.kill("SIGHUP");
      await waitFor("the listener to close", async () => (await fetch(`${next}/healthz`).then(() => "answered", () => "refused")) === "refused", 10_000);
      // the pooler itself goes on
      const c = new Client({ connectionString: pb.url() });
      await c.connect();
      expect((await c.query("SELECT 1 AS v")).rows[0].v).toBe(1);
      await c.end();
    } finally {
      await pb.stop();
    }
  });

  test("workers = 2: /metrics holds the totals of both workers", async () => {
    const { pb, base } = await startWithStats({ pool_mode: "session", default_pool_size: 40, workers: 2 });
    try {
      await waitFor("both workers in the scrape", async () => value(await scrape(base), "pgbun_workers", { state: "answered" }) === 2, 10_000);
      // 16 sessions: the kernel spreads them over both workers' listening sockets (each worker may open 40 / 2
      // servers, so even 16 on one worker all get theirs)
      const clients: Client[] = [];
      for (let i = 0; i < 16; i++) {
        const c = new Client({ connectionString: pb.url() });
        c.on("error", () => undefined);
        await c.connect();
        await c.query("SELECT 1");
        clients.push(c);
      }
      try {
        const m = await scrape(base);
        expect(value(m, "pgbun_workers", { state: "missing" })).toBe(0);
        // the dashboard's data is the same sum
        const dash = (await (await fetch(`${base}/api/snapshot`)).json()) as { workers: number[]; clients: Record<string, number> };
        expect(dash.workers).toEqual([0, 1]);
        expect(dash.clients.active).toBe(16);
        expect(value(m, "pgbouncer_pools_client_active_connections", { database: "app", user: pg.superuser })).toBe(16);
        expect(value(m, "pgbouncer_pools_server_active_connections", { database: "app", user: pg.superuser })).toBe(16);
        expect(value(m, "pgbouncer_stats_sql_transactions_pooled_total", APP)).toBeGreaterThanOrEqual(16);
        const logs = pb.logs();
        expect(logs).toContain('"worker":0');
        expect(logs).toContain('"worker":1');
      } finally {
        for (const c of clients) await c.end().catch(() => undefined);
      }
      // pgbench through both workers: the summed transaction count covers every transaction it made
      const before = await scrape(base);
      const r = await runPgbench(pg, pb, ["-c", "8", "-j", "2", "-T", "2", "-C", "-S"]);
      if (r.code !== 0) throw new Error(`pgbench failed:\n${r.output}`);
      // -C: pgbench reports tps including reconnections, which parsePgbenchSummary does not read
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.output)?.[1]);
      expect(processed).toBeGreaterThan(0);
      await waitFor("pgbench's clients to leave", async () => value(await scrape(base), "pgbun_clients", { state: "active" }) === 0, 5_000);
      const after = await scrape(base);
      expect(value(after, "pgbouncer_stats_sql_transactions_pooled_total", APP) - value(before, "pgbouncer_stats_sql_transactions_pooled_total", APP)).toBeGreaterThanOrEqual(processed);
      // the histograms are summed over the workers too: bucket by bucket, +Inf = the summed counters
      checkHistogram(after, "pgbun_query_duration_seconds", "pgbouncer_stats_queries_pooled_total", "pgbouncer_stats_queries_duration_seconds_total");
      checkHistogram(after, "pgbun_transaction_duration_seconds", "pgbouncer_stats_sql_transactions_pooled_total", "pgbouncer_stats_server_in_transaction_seconds_total");
      checkHistogram(after, "pgbun_client_wait_seconds", "pgbouncer_stats_server_assignments_total", "pgbouncer_stats_client_wait_seconds_total");
    } finally {
      await pb.stop();
    }
  });
});
