// Integration: many clients on few servers in transaction mode. No cross-talk between clients (rows, answers,
// SET LOCAL values, parameters), the pool size is respected, and each client's parameters are re-applied on
// whichever server it lands on (startup parameters, options -c, and session SETs of reported parameters).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client, ClientConfig } from "pg";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { appBackends, pgConnect, usePostgres, waitNoAppBackends } from "../harness/fixtures.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(30_000);

const pg = usePostgres((db) =>
  db.psql("CREATE TABLE tagged (id serial PRIMARY KEY, client int NOT NULL, seq int NOT NULL, via text NOT NULL)", "app"),
);

/** A connected node-postgres client through `b`, ended by the caller. */
function connect(b: TestPgbun, extra: ClientConfig = {}): Promise<Client> {
  return pgConnect(b, extra, { ignoreErrors: false });
}

describe("200 concurrent clients, transaction mode, default_pool_size 5", () => {
  const CLIENTS = 200;
  const POOL = 5;
  let bouncer: TestPgbun;

  beforeAll(async () => {
    bouncer = await startPgbun({
      config: { pgbun: { pool_mode: "transaction", default_pool_size: POOL, max_client_conn: CLIENTS + 50 } },
      pg,
    });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await waitNoAppBackends(pg);
  });

  /** One client's whole run; throws on the first thing it sees that is not its own. */
  async function clientRun(id: number): Promise<void> {
    const app = `conc-${id}`;
    const c = await connect(bouncer, { application_name: app });
    try {
      // an explicit transaction: its SET LOCALs and its uncommitted rows are its own
      await c.query("BEGIN");
      await c.query(`SET LOCAL myapp.tag = 'client-${id}'`);
      await c.query(`SET LOCAL work_mem = '${64 + id}kB'`);
      for (let seq = 1; seq <= 3; seq++) {
        const ins = await c.query("INSERT INTO tagged (client, seq, via) VALUES ($1, $2, 'tx') RETURNING client, seq", [id, seq]);
        expect(ins.rows).toEqual([{ client: id, seq }]);
      }
      const pidBefore = (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
      await c.query("SELECT pg_sleep(0.002)"); // gives the others time to queue behind this transaction
      const inside = await c.query(
        "SELECT current_setting('myapp.tag') AS tag, current_setting('work_mem') AS wm, current_setting('application_name') AS app, pg_backend_pid() AS pid, (SELECT count(*)::int FROM tagged WHERE client = $1) AS mine",
        [id],
      );
      expect(inside.rows).toEqual([{ tag: `client-${id}`, wm: `${64 + id}kB`, app, pid: pidBefore, mine: 3 }]);
      await c.query("COMMIT");

      // standalone statements, simple and extended protocol alternating; each may land on another server
      for (let seq = 4; seq <= 7; seq++) {
        const ins =
          seq % 2 === 0
            ? await c.query(`INSERT INTO tagged (client, seq, via) VALUES (${id}, ${seq}, 'simple') RETURNING client, seq`)
            : await c.query("INSERT INTO tagged (client, seq, via) VALUES ($1, $2, 'extended') RETURNING client, seq", [id, seq]);
        expect(ins.rows).toEqual([{ client: id, seq }]);
        const echo = await c.query(
          "SELECT $1::int AS me, current_setting('application_name') AS app, current_setting('myapp.tag', true) AS tag, current_setting('work_mem') AS wm",
          [id],
        );
        // SET LOCAL ended with the transaction: no client's tag or work_mem may be visible now
        expect(echo.rows).toMatchObject([{ me: id, app, wm: "4MB" }]);
        expect(echo.rows[0].tag ?? "").toBe(""); // NULL where the backend never saw the GUC, '' after it ended
        const simpleEcho = await c.query(`SELECT ${id} AS me, current_setting('application_name') AS app`);
        expect(simpleEcho.rows).toEqual([{ me: id, app }]);
      }

      const back = await c.query("SELECT client, seq, via FROM tagged WHERE client = $1 ORDER BY seq", [id]);
      expect(back.rows).toEqual([
        { client: id, seq: 1, via: "tx" },
        { client: id, seq: 2, via: "tx" },
        { client: id, seq: 3, via: "tx" },
        { client: id, seq: 4, via: "simple" },
        { client: id, seq: 5, via: "extended" },
        { client: id, seq: 6, via: "simple" },
        { client: id, seq: 7, via: "extended" },
      ]);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  test("each of 200 clients sees exactly its own rows, SET LOCAL values and answers, and all finish", async () => {
    let sampling = true;
    let maxBackends = 0;
    const sampler = (async () => {
      while (sampling) {
        maxBackends = Math.max(maxBackends, await appBackends(pg));
        await Bun.sleep(20);
      }
    })();
    const results = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, i) => clientRun(i + 1)));
    sampling = false;
    await sampler;

    const failures = results.flatMap((r, i) => (r.status === "rejected" ? [`client ${i + 1}: ${String(r.reason)}`] : []));
    expect(failures.slice(0, 5)).toEqual([]);
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(CLIENTS);

    // PostgreSQL's view: every client's 7 rows, none lost, none duplicated
    const perClient = JSON.parse(
      await pg.psql("SELECT json_build_object('clients', count(DISTINCT client), 'rows', count(*), 'bad', count(*) FILTER (WHERE seq NOT BETWEEN 1 AND 7)) FROM tagged", "app"),
    ) as { clients: number; rows: number; bad: number };
    expect(perClient).toEqual({ clients: CLIENTS, rows: CLIENTS * 7, bad: 0 });
    expect(await pg.psql("SELECT count(*) FROM (SELECT client FROM tagged GROUP BY client HAVING count(*) <> 7 OR count(DISTINCT seq) <> 7) x", "app")).toBe("0");

    // never more servers than the pool size, and they were actually used
    expect(maxBackends).toBeGreaterThan(0);
    expect(maxBackends).toBeLessThanOrEqual(POOL);
    expect(await appBackends(pg)).toBeLessThanOrEqual(POOL);
  }, 60_000);
});

describe("parameter re-application on a single shared server (transaction mode, default_pool_size 1)", () => {
  let bouncer: TestPgbun;

  beforeAll(async () => {
    bouncer = await startPgbun({ config: { pgbun: { pool_mode: "transaction", default_pool_size: 1 } }, pg });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await waitNoAppBackends(pg);
  });

  const SETTINGS_SQL =
    "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st, current_setting('TimeZone') AS tz, pg_backend_pid() AS pid";

  test("clients with their own application_name, options -c statement_timeout and TimeZone each see their own values", async () => {
    const a = await connect(bouncer, { application_name: "appA", options: "-c statement_timeout=1234 -c TimeZone=America/New_York" });
    const b = await connect(bouncer, { application_name: "appB", options: "-c statement_timeout=4321 -c TimeZone=Europe/Berlin" });
    const plain = await connect(bouncer);
    try {
      const defaults = (await plain.query(SETTINGS_SQL)).rows[0];
      expect(defaults.st).toBe("0");
      expect(defaults.app).toBe("");
      const expectA = { app: "appA", st: "1234ms", tz: "America/New_York" };
      const expectB = { app: "appB", st: "4321ms", tz: "Europe/Berlin" };
      const expectPlain = { app: "", st: "0", tz: defaults.tz };
      const pids = new Set<number>();
      for (let round = 0; round < 8; round++) {
        const ra = (await a.query(SETTINGS_SQL)).rows[0];
        const rb = (await b.query(SETTINGS_SQL)).rows[0];
        // the extended protocol too, and inside an explicit transaction
        const rp = (await plain.query(`${SETTINGS_SQL} WHERE $1::int = $1::int`, [round])).rows[0];
        await b.query("BEGIN");
        const rbTx = (await b.query(SETTINGS_SQL)).rows[0];
        await b.query("COMMIT");
        const raExt = (await a.query(`${SETTINGS_SQL} WHERE $1::int = $1::int`, [round])).rows[0];
        expect(ra).toMatchObject(expectA);
        expect(rb).toMatchObject(expectB);
        expect(rp).toMatchObject(expectPlain);
        expect(rbTx).toMatchObject(expectB);
        expect(raExt).toMatchObject(expectA);
        for (const r of [ra, rb, rp, rbTx, raExt]) pids.add(r.pid as number);
      }
      expect(pids.size).toBe(1); // really one server, shared by all three
      // statement_timeout is enforced with the client's own value, not just displayed
      const slow = await a.query("SELECT pg_sleep(2)").then(
        () => null,
        (e: { code?: string }) => e.code,
      );
      expect(slow).toBe("57014");
      // 1.5 s is over A's 1234 ms but within B's 4321 ms and the plain client's 0 (none)
      expect((await b.query("SELECT pg_sleep(1.5), true AS slept")).rows[0].slept).toBe(true);
      expect((await plain.query("SELECT pg_sleep(1.5), true AS slept")).rows[0].slept).toBe(true);
      expect((await a.query(SETTINGS_SQL)).rows[0]).toMatchObject(expectA);
    } finally {
      for (const c of [a, b, plain]) await c.end().catch(() => undefined);
    }
  }, 30_000);

  test("a session SET of unreported settings (statement_timeout, a custom GUC) follows its client and never reaches another", async () => {
    const a = await connect(bouncer);
    const b = await connect(bouncer);
    const SQL_ = "SELECT current_setting('statement_timeout') AS st, current_setting('myapp.tenant', true) AS tenant, pg_backend_pid() AS pid";
    try {
      await a.query("SET statement_timeout = 2500");
      await a.query("SET myapp.tenant = 'tenant-a'");
      const pids = new Set<number>();
      for (let round = 0; round < 5; round++) {
        const rb = (await b.query(SQL_)).rows[0];
        expect(rb.st).toBe("0");
        expect(rb.tenant ?? "").toBe("");
        await a.query("BEGIN");
        const ra = (await a.query(SQL_)).rows[0];
        await a.query("COMMIT");
        expect(ra).toMatchObject({ st: "2500ms", tenant: "tenant-a" });
        pids.add(ra.pid as number).add(rb.pid as number);
      }
      expect(pids.size).toBe(1);
    } finally {
      for (const c of [a, b]) await c.end().catch(() => undefined);
    }
  });

  test("RESET of a parameter given at startup returns to the client's startup value, as on PostgreSQL", async () => {
    const a = await connect(bouncer, { options: "-c TimeZone=America/New_York -c statement_timeout=1234" });
    const other = await connect(bouncer);
    try {
      await a.query("SET TimeZone = 'Asia/Tokyo'");
      await a.query("SET statement_timeout = 5000");
      expect((await a.query(SETTINGS_SQL)).rows[0]).toMatchObject({ tz: "Asia/Tokyo", st: "5s" });
      await other.query("SELECT 1"); // the server goes to another client in between
      await a.query("RESET TimeZone");
      await a.query("RESET statement_timeout");
      expect((await a.query(SETTINGS_SQL)).rows[0]).toMatchObject({ tz: "America/New_York", st: "1234ms" });
    } finally {
      for (const c of [a, other]) await c.end().catch(() => undefined);
    }
  });

  test("a session SET TimeZone/application_name follows its client into later transactions while another client keeps its own", async () => {
    const a = await connect(bouncer);
    const b = await connect(bouncer);
    try {
      const defaultTz = (await b.query("SELECT current_setting('TimeZone') AS tz")).rows[0].tz as string;
      expect(defaultTz).not.toBe("Asia/Tokyo");
      await a.query("SET TimeZone = 'Asia/Tokyo'");
      await a.query("SET application_name = 'renamedA'");
      const pids = new Set<number>();
      for (let round = 0; round < 6; round++) {
        await a.query("BEGIN");
        const ra = (await a.query(SETTINGS_SQL)).rows[0];
        const offset = (await a.query("SELECT extract(timezone_hour FROM now())::int AS h")).rows[0].h;
        await a.query("COMMIT");
        expect(ra).toMatchObject({ tz: "Asia/Tokyo", app: "renamedA" });
        expect(offset).toBe(9);
        const rb = (await b.query(SETTINGS_SQL)).rows[0];
        expect(rb).toMatchObject({ tz: defaultTz, app: "" });
        const raAuto = (await a.query("SELECT current_setting('TimeZone') AS tz, $1::int AS r", [round])).rows[0];
        expect(raAuto).toEqual({ tz: "Asia/Tokyo", r: round });
        pids.add(ra.pid as number).add(rb.pid as number);
      }
      expect(pids.size).toBe(1);
      // B changes its own later; A keeps Tokyo, B keeps its new zone
      await b.query("SET TimeZone = 'America/Sao_Paulo'");
      for (let round = 0; round < 3; round++) {
        expect((await a.query("SELECT current_setting('TimeZone') AS tz")).rows[0].tz).toBe("Asia/Tokyo");
        expect((await b.query("SELECT current_setting('TimeZone') AS tz")).rows[0].tz).toBe("America/Sao_Paulo");
      }
      // RESET goes back to the value this client started with
      await a.query("RESET TimeZone");
      expect((await b.query("SELECT current_setting('TimeZone') AS tz")).rows[0].tz).toBe("America/Sao_Paulo");
      expect((await a.query("SELECT current_setting('TimeZone') AS tz")).rows[0].tz).toBe(defaultTz);
    } finally {
      for (const c of [a, b]) await c.end().catch(() => undefined);
    }
  }, 30_000);
});
