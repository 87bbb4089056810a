// Integration: prepared statements under DDL in transaction mode: the client sees what PostgreSQL itself would send
// (each scenario runs directly and through pgbun and must give the same answers), never rows decoded against a
// description it was not sent, and never a statement another client parsed before a schema change.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import type { Client } from "pg";
import { pgConnect, tx, usePostgres, withPgbun, type Endpoint } from "../harness/fixtures.ts";
import { describe as show, loginApp, msg, rows, sqlState, type BackendMessage, WireClient } from "../harness/wire.ts";
import { TEST_ROLES, type TestPostgres } from "../harness/postgres.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(60_000);

const pg = usePostgres();
const TRUST_USER = TEST_ROLES.trust.user;

let tableSeq = 0;
/** A table name of its own for each run of a scenario (direct and through pgbun must not share state). */
const freshTable = (base: string) => `${base}_${++tableSeq}`;

function url(to: Endpoint): string {
  return `postgres://postgres:${encodeURIComponent(pg.password)}@${to.host}:${to.port}/app`;
}

/** A postgres.js client with prepared statements on (its default), one connection. */
function pgjs(to: Endpoint) {
  return postgres(url(to), { max: 1, prepare: true, onnotice: () => undefined, connect_timeout: 10 });
}

/** What a scenario saw: results as JSON, errors as their SQLSTATE. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    return JSON.stringify(await p);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `error ${e.code ?? e.message}`;
  }
}

/** Runs `scenario` directly on PostgreSQL and through pgbun (transaction mode, pool `size`); returns both transcripts. */
async function directAndPooled(size: number, scenario: (to: Endpoint, db: TestPostgres) => Promise<string[]>): Promise<{ direct: string[]; pooled: string[] }> {
  const direct = await scenario(pg, pg);
  let pooled: string[] = [];
  await withPgbun(pg, { pgbun: tx(size) }, async (f) => {
    pooled = await scenario(f.pb, pg);
  });
  return { direct, pooled };
}

// ---------------------------------------------------------------------------------------------------------------

describe("a cached statement whose result type changes (issue 9, item 2): no hidden retry", () => {
  test("postgres.js: `select name from t`, then ALTER COLUMN name TYPE int: the re-prepared query returns the integer 1, as directly", async () => {
    const { direct, pooled } = await directAndPooled(1, async (to) => {
      const t = freshTable("ddl_name");
      await pg.psql(`CREATE TABLE ${t} (name text); INSERT INTO ${t} VALUES ('1')`, "app");
      const sql = pgjs(to);
      try {
        const seen = [await outcome(sql`select name from ${sql(t)}`)];
        seen.push(await outcome(sql`select name from ${sql(t)}`));
        await pg.psql(`ALTER TABLE ${t} ALTER COLUMN name TYPE int USING name::int`, "app");
        seen.push(await outcome(sql`select name from ${sql(t)}`));
        seen.push(await outcome(sql`select name from ${sql(t)}`));
        return seen;
      } finally {
        await sql.end();
      }
    });
    expect(direct).toEqual(['[{"name":"1"}]', '[{"name":"1"}]', '[{"name":1}]', '[{"name":1}]']);
    expect(pooled).toEqual(direct);
  });

  test("postgres.js: `select * from t`, then DROP TABLE t; CREATE TABLE t (a int, b bool): rows come with the new columns, as directly", async () => {
    const { direct, pooled } = await directAndPooled(1, async (to) => {
      const t = freshTable("ddl_recreate");
      await pg.psql(`CREATE TABLE ${t} (name text); INSERT INTO ${t} VALUES ('x')`, "app");
      const sql = pgjs(to);
      try {
        const seen = [await outcome(sql`select * from ${sql(t)}`)];
        await pg.psql(`DROP TABLE ${t}; CREATE TABLE ${t} (a int, b bool); INSERT INTO ${t} VALUES (5, true)`, "app");
        seen.push(await outcome(sql`select * from ${sql(t)}`));
        seen.push(await outcome(sql`select * from ${sql(t)}`));
        return seen;
      } finally {
        await sql.end();
      }
    });
    expect(direct).toEqual(['[{"name":"x"}]', '[{"a":5,"b":true}]', '[{"a":5,"b":true}]']);
    expect(pooled).toEqual(direct);
  });

  test("node-postgres named query (it never re-prepares): after ALTER COLUMN TYPE every run fails with 0A000, as directly; never the old description's rows", async () => {
    const { direct, pooled } = await directAndPooled(2, async (to) => {
      const t = freshTable("ddl_pgnamed");
      await pg.psql(`CREATE TABLE ${t} (name text); INSERT INTO ${t} VALUES ('7')`, "app");
      const c: Client = await pgConnect(to);
      try {
        const q = { name: `sel_${t}`, text: `select name from ${t}` };
        const seen = [await outcome(c.query(q).then((r) => r.rows))];
        await pg.psql(`ALTER TABLE ${t} ALTER COLUMN name TYPE int USING name::int`, "app");
        for (let i = 0; i < 3; i++) seen.push(await outcome(c.query(q).then((r) => r.rows)));
        // an unnamed query sees the new type
        seen.push(await outcome(c.query(`select name from ${t}`).then((r) => r.rows)));
        return seen;
      } finally {
        await c.end();
      }
    });
    expect(direct).toEqual(['[{"name":"7"}]', "error 0A000", "error 0A000", "error 0A000", '[{"name":7}]']);
    expect(pooled).toEqual(direct);
  });

  test("raw protocol: a named SELECT * after ADD COLUMN fails with 0A000 on every Bind (in an implicit transaction and in BEGIN), as directly", async () => {
    const run = async (to: Endpoint): Promise<string[]> => {
      const t = freshTable("ddl_raw");
      await pg.psql(`CREATE TABLE ${t} (a int); INSERT INTO ${t} VALUES (1); GRANT ALL ON ${t} TO ${TRUST_USER}`, "app");
      // the trust role logs in without a password, directly as through pgbun
      const c = await loginApp(to, { user: TRUST_USER });
      try {
        c.send(Buffer.concat([msg.parse("s", `SELECT * FROM ${t}`), msg.bind("", "s"), msg.execute(), msg.sync()]));
        const seen = [show(await c.readUntilReady())];
        await pg.psql(`ALTER TABLE ${t} ADD COLUMN b int NOT NULL DEFAULT 7`, "app");
        for (let i = 0; i < 2; i++) {
          c.send(Buffer.concat([msg.bind("", "s"), msg.execute(), msg.sync()]));
          seen.push(errorsAndStatus(await c.readUntilReady()));
        }
        seen.push((await c.query("BEGIN")).status);
        c.send(Buffer.concat([msg.bind("", "s"), msg.execute(), msg.sync()]));
        seen.push(errorsAndStatus(await c.readUntilReady()));
        seen.push((await c.query("ROLLBACK")).status);
        // re-parsed under a new name, the statement has the new column
        c.send(Buffer.concat([msg.parse("s2", `SELECT * FROM ${t}`), msg.bind("", "s2"), msg.execute(), msg.sync()]));
        seen.push(show(await c.readUntilReady()));
        return seen;
      } finally {
        c.destroy();
      }
    };
    const { direct, pooled } = await directAndPooled(1, run);
    expect(direct).toEqual(['1 2 D(["1"]) C(SELECT 1) Z(I)', "0A000 Z(I)", "0A000 Z(I)", "T", "0A000 Z(E)", "I", '1 2 D(["1","7"]) C(SELECT 1) Z(I)']);
    expect(pooled).toEqual(direct);
  });
});

/** The SQLSTATEs of the errors, then the ReadyForQuery status. */
function errorsAndStatus(messages: BackendMessage[]): string {
  const errs = messages.filter((m) => m.type === "E").map(sqlState);
  const z = messages.find((m) => m.type === "Z");
  return [...errs, z ? `Z(${String.fromCharCode(z.body[0]!)})` : "no Z"].join(" ");
}

describe("a statement parsed before a schema change is never handed to a new client (issue 9, item 3)", () => {
  test("postgres.js: client 1 prepares an insert while the column is text; it becomes int; a new client 2 prepares the same text and it works, as directly", async () => {
    const { direct, pooled } = await directAndPooled(1, async (to) => {
      const t = freshTable("ddl_insert");
      await pg.psql(`CREATE TABLE ${t} (name text)`, "app");
      const one = pgjs(to);
      try {
        const seen = [await outcome(one`insert into ${one(t)} (name) values (${"1"}) returning name`)];
        await pg.psql(`ALTER TABLE ${t} ALTER COLUMN name TYPE int USING name::int`, "app");
        const two = pgjs(to);
        try {
          seen.push(await outcome(two`insert into ${two(t)} (name) values (${"2"}) returning name`));
          seen.push(await outcome(two`insert into ${two(t)} (name) values (${"3"}) returning name`));
        } finally {
          await two.end();
        }
        // client 1, still holding its old statement, recovers by re-preparing (postgres.js retries on this error)
        seen.push(await outcome(one`insert into ${one(t)} (name) values (${"4"}) returning name`));
        return seen;
      } finally {
        await one.end();
      }
    });
    expect(direct[0]).toBe('[{"name":"1"}]');
    expect(direct.slice(1, 3)).toEqual(['[{"name":2}]', '[{"name":3}]']);
    expect(pooled).toEqual(direct);
  });

  test("raw protocol, pool of 2: a new client's statement works on both servers after ALTER, though both had the old statement", async () => {
    const t = freshTable("ddl_two");
    await pg.psql(`CREATE TABLE ${t} (name text)`, "app");
    const insert = `insert into ${t} (name) values ($1) returning name, pg_backend_pid()`;
    /** Runs the named insert with `value`; returns [name, backend pid] of the one row, failing on anything else. */
    const run = async (c: WireClient, value: string): Promise<[string, string]> => {
      c.send(Buffer.concat([msg.bind("", "ins", [value]), msg.execute(), msg.sync()]));
      const got = await c.readUntilReady();
      expect(got.map((m) => m.type).join("")).toBe("2DCZ");
      return rows(got)[0] as [string, string];
    };
    /** Runs `fn` while `holder` keeps one server busy in a transaction (so `fn` gets the other one). */
    const besideHolder = async <T>(holder: WireClient, fn: () => Promise<T>): Promise<T> => {
      expect((await holder.query("BEGIN")).status).toBe("T");
      try {
        return await fn();
      } finally {
        expect((await holder.query("COMMIT")).status).toBe("I");
      }
    };
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const holder = await f.login();
      a.send(Buffer.concat([msg.parse("ins", insert), msg.describe("S", "ins"), msg.sync()]));
      expect((await a.readUntilReady()).map((m) => m.type).join("")).toBe("1tTZ");
      // a's statement lands on both servers: alone, then beside the holder (LIFO hands a the other one)
      const before = new Set<string>();
      before.add((await run(a, "1"))[1]);
      before.add((await besideHolder(holder, () => run(a, "2")))[1]);
      expect(before.size).toBe(2);
      await pg.psql(`ALTER TABLE ${t} ALTER COLUMN name TYPE int USING name::int`, "app");
      // a new client prepares the same text: on either server it must act as its own fresh Parse would
      const b = await f.login();
      b.send(Buffer.concat([msg.parse("ins", insert), msg.describe("S", "ins"), msg.sync()]));
      const described = await b.readUntilReady();
      // the parameter is int4 (23) now, as a fresh Parse gives
      const pdesc = described.find((m) => m.type === "t")!;
      expect(pdesc.body.readInt16BE(0)).toBe(1);
      expect(pdesc.body.readUInt32BE(2)).toBe(23);
      const after = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const value = String(20 + i);
        const [name, pid] = i % 2 === 1 ? await besideHolder(holder, () => run(b, value)) : await run(b, value);
        expect(name).toBe(value);
        after.add(pid);
      }
      expect(after).toEqual(before);
      // and a, holding its pre-ALTER statement, gets what PostgreSQL gives an old statement: an error, not rows
      for (let i = 0; i < 2; i++) {
        a.send(Buffer.concat([msg.bind("", "ins", ["30"]), msg.execute(), msg.sync()]));
        const got = await a.readUntilReady();
        expect(got.filter((m) => m.type === "D")).toEqual([]);
        expect(got.filter((m) => m.type === "E").length).toBe(1);
      }
    });
  });
});

describe("shared statements stay shared when nothing changed", () => {
  test("two clients with the same statement text on a pool of 1 share one server statement: the second client's Parse does not leave a second one behind", async () => {
    const t = freshTable("ddl_share");
    await pg.psql(`CREATE TABLE ${t} (a int); INSERT INTO ${t} VALUES (1)`, "app");
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const clients: WireClient[] = [];
      for (let i = 0; i < 3; i++) clients.push(await f.login());
      for (const c of clients) {
        c.send(Buffer.concat([msg.parse("q", `SELECT a FROM ${t}`), msg.bind("", "q"), msg.execute(), msg.sync()]));
        expect(show(await c.readUntilReady())).toBe('1 2 D(["1"]) C(SELECT 1) Z(I)');
      }
      const c = clients[0]!;
      const r = await c.query(`SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT a FROM ${t}'`);
      expect(r.rows).toEqual([["1"]]);
    });
  });

  test("a Bind held until a server is free, then while pgbun describes the statement there, is counted once in SHOW STATS (total_bind_count)", async () => {
    const t = freshTable("ddl_count");
    await pg.psql(`CREATE TABLE ${t} (a int); INSERT INTO ${t} VALUES (1)`, "app");
    await withPgbun(pg, { pgbun: tx(2, { admin_users: ["postgres"] }) }, async (f) => {
      const a = await f.login();
      const holder = await f.login();
      a.send(Buffer.concat([msg.parse("c", `SELECT a FROM ${t}`), msg.bind("", "c"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('1 2 D(["1"]) C(SELECT 1) Z(I)');
      // holder takes that server: a's next Bind lands on a new one, without the statement, and is held there
      expect((await holder.query("BEGIN")).status).toBe("T");
      a.send(Buffer.concat([msg.bind("", "c"), msg.execute(), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe('2 D(["1"]) C(SELECT 1) Z(I)');
      expect((await holder.query("COMMIT")).status).toBe("I");
      const admin = await f.login({ database: "pgbouncer" });
      const stats = await admin.query("SHOW STATS");
      const cols = stats.messages.find((m) => m.type === "T")!;
      const names: string[] = [];
      for (let i = 2, n = cols.body.readInt16BE(0); names.length < n; ) {
        const z = cols.body.indexOf(0, i);
        names.push(cols.body.toString("utf8", i, z));
        i = z + 19;
      }
      const app = stats.rows.find((r) => r[0] === "app")!;
      expect(app[names.indexOf("total_bind_count")]).toBe("2");
    });
  });

  test("a Describe of a statement on a server that does not have it yet is held, answered with the statement's own description, and after ALTER answered as directly (ParameterDescription, then 0A000)", async () => {
    const t = freshTable("ddl_describe");
    await pg.psql(`CREATE TABLE ${t} (a int); INSERT INTO ${t} VALUES (1)`, "app");
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const holder = await f.login();
      a.send(Buffer.concat([msg.parse("d", `SELECT * FROM ${t}`), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe("1 Z(I)");
      expect((await holder.query("BEGIN")).status).toBe("T");
      a.send(Buffer.concat([msg.describe("S", "d"), msg.sync()]));
      const got = await a.readUntilReady();
      expect(got.map((m) => m.type).join("")).toBe("tTZ");
      expect((await holder.query("COMMIT")).status).toBe("I");
      await pg.psql(`ALTER TABLE ${t} ADD COLUMN b int`, "app");
      // on either server now the old statement's result type changed: PostgreSQL's 0A000, as directly
      for (let i = 0; i < 2; i++) {
        if (i === 1) expect((await holder.query("BEGIN")).status).toBe("T");
        a.send(Buffer.concat([msg.describe("S", "d"), msg.sync()]));
        // PostgreSQL describes the parameters, then fails on the result columns
        expect(show(await a.readUntilReady())).toBe("t E(0A000 cached plan must not change result type) Z(I)");
        if (i === 1) expect((await holder.query("COMMIT")).status).toBe("I");
      }
    });
  });

  test("a pipeline of two statements the server does not have yet (pool of 2): each is parsed and described there first, and the answers come in order", async () => {
    const t = freshTable("ddl_pipe");
    await pg.psql(`CREATE TABLE ${t} (a int, b text); INSERT INTO ${t} VALUES (1, 'one')`, "app");
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const holder = await f.login();
      // both statements parsed on the server a is on now (holder opens the second server later)
      a.send(Buffer.concat([msg.parse("sa", `SELECT a, pg_backend_pid() FROM ${t}`), msg.parse("sb", `SELECT b FROM ${t}`), msg.sync()]));
      expect(show(await a.readUntilReady())).toBe("1 1 Z(I)");
      const first = (await a.query("SELECT pg_backend_pid()")).rows[0]![0];
      expect((await holder.query("BEGIN")).status).toBe("T");
      // a now lands on the other server, which has neither statement: one write, two held Binds
      a.send(Buffer.concat([msg.bind("", "sa"), msg.execute(), msg.bind("", "sb"), msg.execute(), msg.sync()]));
      const got = await a.readUntilReady();
      expect(got.map((m) => m.type).join("")).toBe("2DC2DCZ");
      const [[one, pid], [text]] = rows(got) as [[string, string], [string]];
      expect(one).toBe("1");
      expect(text).toBe("one");
      expect(pid).not.toBe(first);
      expect((await holder.query("COMMIT")).status).toBe("I");
    });
  });
});

describe("the unnamed statement never crosses clients", () => {
  test("B's Bind of the unnamed statement, never parsed by B, on the server where A left one: 26000 as directly, never A's query", async () => {
    const run = async (to: Endpoint, sameBackend: boolean): Promise<string[]> => {
      const a = await loginApp(to, { user: TRUST_USER });
      const b = await loginApp(to, { user: TRUST_USER });
      try {
        a.send(Buffer.concat([msg.parse("", "SELECT 'secret of a', pg_backend_pid()"), msg.bind("", ""), msg.execute(), msg.sync()]));
        const got = await a.readUntilReady();
        const pidA = rows(got)[0]![1];
        const seen = [show(got).replace(/"\d+"\]/, '"pid"]')];
        b.send(Buffer.concat([msg.bind("", ""), msg.execute(), msg.sync()]));
        const answer = await b.readUntilReady();
        seen.push(errorsAndStatus(answer));
        if (sameBackend) expect((await b.query("SELECT pg_backend_pid()")).rows[0]![0]).toBe(pidA!);
        // A's own unnamed statement, in its next transaction, is its own business: not checked here
        return seen;
      } finally {
        a.destroy();
        b.destroy();
      }
    };
    const direct = await run(pg, false);
    let pooled: string[] = [];
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      pooled = await run(f.pb, true);
    });
    expect(direct).toEqual(['1 2 D(["secret of a","pid"]) C(SELECT 1) Z(I)', "26000 Z(I)"]);
    expect(pooled).toEqual(direct);
  });
});

describe("many postgres.js clients on a pool of 2 across a column type change", () => {
  test("before the ALTER every row decodes as text, after it as an integer, on every client and server; nothing fails", async () => {
    const t = freshTable("ddl_many");
    await pg.psql(`CREATE TABLE ${t} (id int, name text); INSERT INTO ${t} SELECT g, g::text FROM generate_series(1, 5) g`, "app");
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const clients = Array.from({ length: 6 }, () => pgjs(f.pb));
      try {
        /** Each client runs the same cached statement `rounds` times, concurrently; returns every decoded name. */
        const phase = async (rounds: number) => {
          const seen = await Promise.all(
            clients.map(async (sql, k) => {
              const names: unknown[] = [];
              for (let i = 0; i < rounds; i++) {
                const id = ((k + i) % 5) + 1;
                const r = await sql`select name, pg_backend_pid() as pid from ${sql(t)} where id = ${id}`;
                names.push(r[0]!.name);
              }
              return names;
            }),
          );
          return seen.flat();
        };
        const before = await phase(10);
        expect(before.length).toBe(60);
        for (const n of before) expect(typeof n).toBe("string");
        await pg.psql(`ALTER TABLE ${t} ALTER COLUMN name TYPE int USING name::int`, "app");
        const after = await phase(10);
        expect(after.length).toBe(60);
        for (const n of after) expect(typeof n).toBe("number");
      } finally {
        await Promise.all(clients.map((c) => c.end()));
      }
    });
  });
});
