// workers = 2: the admin console shows totals over both workers and its control commands reach both, whichever worker it lands on.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { Client } from "pg";
import { pgConnect, usePostgres, waitFor } from "../harness/fixtures.ts";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { loginApp, msg, rows } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const ADMIN = "admin";
const CLIENTS = 12;

const pg = usePostgres();

// ---- per-test resources ----

let pgbun: TestPgbun | null = null;
const opened: Client[] = [];

afterEach(async () => {
  if (pgbun) for (const pid of workerPids(pgbun)) process.kill(pid, "SIGCONT"); // a stopped worker would hang its clients' end
  for (const c of opened.splice(0)) await c.end().catch(() => undefined);
  await pgbun?.stop();
  pgbun = null;
});

/** pgbun with two workers in transaction mode; each worker's pool share (12) can hold every client. */
async function twoWorkers(): Promise<TestPgbun> {
  pgbun = await startPgbun({
    pg,
    config: { pgbun: { pool_mode: "transaction", workers: 2, default_pool_size: 24, admin_users: [ADMIN], log_level: "info" } },
  });
  // the port answers once one worker listens: wait for both, or every connection would land on the first
  const p = pgbun;
  await waitFor("both workers listening", () => p.logs().split('"msg":"pgbun listening"').length === 3, 20_000);
  return p;
}

/** Pooled clients to `app`, named app-0…app-(n-1) (application_name), each having run a query. */
async function pooledClients(p: TestPgbun, n = CLIENTS): Promise<Client[]> {
  const list = await Promise.all(Array.from({ length: n }, (_, i) => pgConnect(p, { application_name: `app-${i}` })));
  opened.push(...list);
  await Promise.all(list.map((c) => c.query("SELECT 1")));
  return list;
}

/** A console connection; the kernel hands each new connection to either worker. */
async function console_(p: TestPgbun, timeoutMs = 10_000): Promise<Client> {
  const c = await pgConnect(p, { user: ADMIN, database: "pgbouncer", password: undefined, connectionTimeoutMillis: timeoutMs });
  opened.push(c);
  return c;
}

type Row = Record<string, string | null>;

async function show(c: Client, what: string): Promise<Row[]> {
  return (await c.query(`SHOW ${what}`)).rows as Row[];
}

const num = (v: string | null | undefined) => Number(v);

function rowOf(rows: Row[], where: Row): Row {
  const row = rows.find((r) => Object.entries(where).every(([k, v]) => r[k] === v));
  if (!row) throw new Error(`no row ${JSON.stringify(where)} in ${JSON.stringify(rows, null, 1)}`);
  return row;
}

/** Ids encode their worker (worker w of 2 hands out w+1, w+3, …): the worker that owns a client or server id. */
const workerOfId = (id: string | null) => (num(id) - 1) % 2;

/** The worker a console connection landed on: the one that owns its own client id. */
async function consoleWorker(c: Client): Promise<number> {
  const me = (await show(c, "CLIENTS")).filter((r) => r.database === "pgbouncer");
  expect(me.length).toBe(1); // one console open at a time
  return workerOfId(me[0]!.id);
}

/** The worker processes of the supervisor. */
function workerPids(p: TestPgbun): number[] {
  const out = Bun.spawnSync(["pgrep", "-P", String(p.proc.pid)]).stdout.toString().trim();
  return out ? out.split("\n").map(Number) : [];
}

/** "pending" when the promise has not settled within ms. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([promise, Bun.sleep(ms).then(() => "pending" as const)]);
}

test("SHOW POOLS, CLIENTS, SERVERS, LISTS and STATS count both workers' connections, whichever worker answers", async () => {
  const p = await twoWorkers();
  const clients = await pooledClients(p);
  // each client holds a transaction open: 12 clients linked to 12 servers, spread over both workers
  for (const c of clients) await c.query("BEGIN");
  await Promise.all(clients.map((c) => c.query("SELECT 1")));

  const seen = new Set<number>();
  for (let i = 0; i < 30 && (i < 4 || seen.size < 2); i++) {
    const admin = await console_(p);
    seen.add(await consoleWorker(admin));
    const pool = rowOf(await show(admin, "POOLS"), { database: "app", user: "postgres" });
    expect([num(pool.cl_active), num(pool.sv_active), num(pool.cl_waiting)]).toEqual([CLIENTS, CLIENTS, 0]);
    const rows = await show(admin, "CLIENTS");
    const app = rows.filter((r) => r.database === "app");
    expect(app.map((r) => r.application_name).sort()).toEqual(clients.map((_, i) => `app-${i}`).sort());
    expect(rows.length).toBe(CLIENTS + 1); // + this console
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    expect(new Set(app.map((r) => workerOfId(r.id))).size).toBe(2); // both workers serve clients
    const servers = (await show(admin, "SERVERS")).filter((r) => r.database === "app");
    expect(servers.length).toBe(CLIENTS);
    expect(new Set(servers.map((r) => r.id)).size).toBe(CLIENTS);
    // every client's link names a server of the list (ptr is unique across workers too)
    expect(app.map((r) => r.link).sort()).toEqual(servers.map((r) => r.ptr).sort());
    const lists = await show(admin, "LISTS");
    expect(num(rowOf(lists, { list: "used_servers" }).items)).toBe(CLIENTS);
    expect(num(rowOf(lists, { list: "used_clients" }).items)).toBe(CLIENTS + 1);
    await admin.end();
    opened.pop();
  }
  expect(seen.size).toBe(2); // the console answered from both workers

  // queries sent together are answered in order, though the worker tables arrive later than SHOW VERSION's
  const w = await loginApp(p, { user: ADMIN, database: "pgbouncer" });
  try {
    w.send(Buffer.concat([msg.query("SHOW POOLS"), msg.query("SHOW VERSION"), msg.query("SHOW LISTS")]));
    const answers = [await w.readUntilReady(), await w.readUntilReady(), await w.readUntilReady()];
    expect(answers.map((a) => rows(a)[0]![0])).toEqual(["app", expect.stringMatching(/^pgbun /), "databases"]);
  } finally {
    w.destroy();
  }

  for (const c of clients) await c.query("COMMIT");
  for (let round = 0; round < 5; round++) await Promise.all(clients.map((c) => c.query("SELECT 2")));
  // per client: the first SELECT 1, BEGIN…COMMIT and 5 single SELECTs: 7 transactions, 9 queries
  const xacts = CLIENTS * 7;
  const queries = CLIENTS * 9;
  const totals: string[] = [];
  seen.clear();
  for (let i = 0; i < 30 && (i < 3 || seen.size < 2); i++) {
    const admin = await console_(p);
    seen.add(await consoleWorker(admin));
    const stats = rowOf(await show(admin, "STATS"), { database: "app" });
    expect(num(stats.total_xact_count)).toBeGreaterThanOrEqual(xacts);
    expect(num(stats.total_query_count)).toBeGreaterThanOrEqual(queries);
    const bare = rowOf(await show(admin, "STATS_TOTALS"), { database: "app" });
    expect([bare.xact_count, bare.query_count]).toEqual([stats.total_xact_count, stats.total_query_count]);
    totals.push(`${stats.total_xact_count}/${stats.total_query_count}`);
    await admin.end();
    opened.pop();
  }
  expect(seen.size).toBe(2);
  expect(new Set(totals).size).toBe(1); // the same totals from either worker
});

test("PAUSE from one console holds new queries on both workers; RESUME from another releases them", async () => {
  const p = await twoWorkers();
  const clients = await pooledClients(p);
  const first = await console_(p);
  const app = (await show(first, "CLIENTS")).filter((r) => r.database === "app");
  expect(new Set(app.map((r) => workerOfId(r.id))).size).toBe(2);

  expect(await within(first.query("PAUSE app").then((r) => r.command), 5_000)).toBe("PAUSE");
  const running = clients.map((c) => c.query("SELECT 3 AS v").then((r) => r.rows[0].v as number));
  expect(await within(Promise.all(running), 700)).toBe("pending");
  const second = await console_(p);
  await waitFor("12 clients waiting over both workers", async () => num(rowOf(await show(second, "POOLS"), { database: "app" }).cl_waiting) === CLIENTS);
  expect(num(rowOf(await show(second, "DATABASES"), { name: "app" }).paused)).toBe(1);
  expect((await second.query("RESUME app")).command).toBe("RESUME");
  expect(await within(Promise.all(running), 5_000)).toEqual(Array(CLIENTS).fill(3));
  expect(num(rowOf(await show(first, "DATABASES"), { name: "app" }).paused)).toBe(0);
});

test("KILL_CLIENT ends a client of either worker from one console", async () => {
  const p = await twoWorkers();
  const clients = await pooledClients(p);
  const admin = await console_(p);
  const app = (await show(admin, "CLIENTS")).filter((r) => r.database === "app");
  const victims = [0, 1].map((w) => app.find((r) => workerOfId(r.id) === w)!); // one client of each worker
  for (const v of victims) await admin.query(`KILL_CLIENT ${v.id}`); // (node-postgres reads the tag KILL_CLIENT as "KILL")
  const killed = new Set(victims.map((v) => v.application_name));
  for (const [i, c] of clients.entries()) {
    const outcome = await c.query("SELECT 4 AS v").then(
      (r) => String(r.rows[0].v),
      (e: Error) => `error: ${e.message}`,
    );
    if (killed.has(`app-${i}`)) expect(outcome).toStartWith("error");
    else expect(outcome).toBe("4");
  }
  expect((await show(admin, "CLIENTS")).filter((r) => r.database === "app").length).toBe(CLIENTS - 2);
  const err = await admin.query("KILL_CLIENT 999999").then(
    () => null,
    (e: Error) => e.message,
  );
  expect(err).toBe("no client with id 999999");
});

test("a worker that does not answer is left out with a warning, and the console still answers", async () => {
  const p = await twoWorkers();
  await pooledClients(p);
  const [stopped] = workerPids(p);
  expect(workerPids(p).length).toBe(2);
  process.kill(stopped!, "SIGSTOP");
  // a connection the kernel gives to the stopped worker gets no answer: try again until the live one has it
  let admin: Client | null = null;
  for (let i = 0; i < 20 && !admin; i++) admin = await console_(p, 1_500).catch(() => null);
  expect(admin).not.toBeNull();
  const notices: string[] = [];
  admin!.on("notice", (n) => notices.push(n.message ?? ""));
  const t0 = Date.now();
  const pool = rowOf(await show(admin!, "POOLS"), { database: "app" });
  expect(Date.now() - t0).toBeLessThan(3_000);
  expect(notices).toHaveLength(1);
  expect(notices[0]).toMatch(/^worker [01] did not answer within 1000 ms: SHOW POOLS leaves it out$/);
  expect(num(pool.cl_active)).toBeLessThan(CLIENTS); // only the live worker's clients
  process.kill(stopped!, "SIGCONT");
  await waitFor("both workers in SHOW POOLS again", async () => num(rowOf(await show(admin!, "POOLS"), { database: "app" }).cl_active) === CLIENTS);
});

test("RELOAD reaches both workers; SHUTDOWN stops them all and the supervisor exits", async () => {
  const p = await twoWorkers();
  await pooledClients(p);
  const admin = await console_(p);
  const poolSize = async () => num(rowOf(await show(admin, "DATABASES"), { name: "app" }).pool_size);
  expect(await poolSize()).toBe(24); // 12 per worker
  const cfg = JSON.parse(readFileSync(p.configFile, "utf8"));
  cfg.pgbun.default_pool_size = 30;
  writeFileSync(p.configFile, JSON.stringify(cfg));
  expect((await admin.query("RELOAD")).command).toBe("RELOAD");
  await waitFor("both workers' shares of the new pool_size", async () => (await poolSize()) === 30);
  await admin.query("SHUTDOWN").catch(() => undefined); // the connection ends with the worker
  expect(await within(p.proc.exited, 10_000)).toBe(0);
  expect(p.logs()).not.toContain("restarting it");
});
