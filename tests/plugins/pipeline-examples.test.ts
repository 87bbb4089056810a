// The plugin pipeline against a real PostgreSQL: plugins that rewrite or answer queries, and the example plugins
// (audit-log, query-firewall, hello-answer) as a user copies them, alone, together, and pipelined behind other queries.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { harnessTempDir } from "../harness/postgres.ts";
import { startPgbun } from "../harness/pgbun.ts";
import { EXAMPLES, firstValue, pluginTestKit, rejection, usePostgres, waitFor, writePlugin } from "../harness/fixtures.ts";
import { extendedQuery, msg, readyStatus, rows, sqlState, types } from "../harness/wire.ts";
import { query } from "../../plugin-sdk/index.ts";
import type { AuditEntry } from "../../examples/audit-log.ts";

// PostgreSQL and pgbun processes start here: generous limits for a loaded machine
setDefaultTimeout(30_000);

const pg = usePostgres();
const { pooler, connect, login, track } = pluginTestKit(pg);

/** Fails clearly instead of hanging until the test timeout. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const REPO = resolve(import.meta.dir, "..", "..");
const EXAMPLES_DIR = join(REPO, "examples");

/** A temp project that installs pgbun (node_modules/pgbun, as npm links a file: dependency), as a user has it. */
async function projectWithPgbun(prefix: string): Promise<string> {
  const project = await harnessTempDir(prefix);
  mkdirSync(join(project, "node_modules"));
  symlinkSync(REPO, join(project, "node_modules", "pgbun"), "dir");
  return project;
}

describe("the examples as a user copies them", () => {
  test("every example imports the SDK as pgbun/plugin-sdk, never by a path into this repository", () => {
    const files = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const source = readFileSync(join(EXAMPLES_DIR, file), "utf8");
      const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms)].map((m) => m[1]!);
      expect({ file, imports: specifiers.filter((s) => s !== "pgbun/plugin-sdk" && !s.startsWith("node:") && s !== "bun") }).toEqual({ file, imports: [] });
      expect({ file, sdk: specifiers.includes("pgbun/plugin-sdk") }).toEqual({ file, sdk: true });
    }
  });

  test("a copied example runs in a project that installs pgbun (node_modules/pgbun), compiled by the loader", async () => {
    const project = await projectWithPgbun("copied-example");
    copyFileSync(EXAMPLES.helloAnswer, join(project, "hello-answer.ts"));
    const p = await pooler([["./hello-answer.ts", { version: "copied" }]], { dir: project });
    const c = await connect(p);
    expect(await firstValue(c, "SHOW pgbun_version")).toBe("copied");
  });
});

describe("the README's slow-query-guard", () => {
  /** The README's code block, as a user copies it into their project. */
  async function guardPooler(settings: Record<string, unknown> = {}) {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const block = /```ts\n(\/\/ slow-query-guard\.ts:[\s\S]*?)```/.exec(readme);
    if (!block) throw new Error("README.md has no slow-query-guard.ts code block");
    const project = await projectWithPgbun("readme-guard");
    writeFileSync(join(project, "slow-query-guard.ts"), block[1]!);
    await pg.psql("CREATE TABLE IF NOT EXISTS events (id int); CREATE TABLE IF NOT EXISTS guard_log (id int)", "app");
    return pooler([["./slow-query-guard.ts", { table: "events" }]], { dir: project, settings });
  }

  test("outside a transaction it refuses with 54000 without a server, while the only server is held", async () => {
    const p = await guardPooler({ default_pool_size: 1 });
    const holder = await connect(p);
    await holder.query("BEGIN");
    await holder.query("SELECT 1");
    const other = await connect(p);
    const err = await within(3_000, rejection(other.query("SELECT count(*) FROM events")), "the refusal with the pool exhausted");
    expect(err.code).toBe("54000");
    expect(err.message).toBe("full scan of events refused");
    await holder.query("COMMIT");
    expect(await firstValue(other, "SELECT count(*)::int FROM events WHERE id = -1")).toBe(0);
  });

  test("inside a block: ErrorResponse and ReadyForQuery 'E', the block fails upstream, and COMMIT keeps nothing of it", async () => {
    const p = await guardPooler();
    const raw = await login(p);
    raw.send(query("BEGIN"));
    await raw.readReadyN(1, 5_000);
    raw.send(query("INSERT INTO guard_log VALUES (4242)"));
    expect(types(await raw.readReadyN(1, 5_000))).toBe("CZ");
    raw.send(query("SELECT * FROM events"));
    const refused = await raw.readReadyN(1, 5_000);
    expect(types(refused)).toBe("EZ");
    expect(sqlState(refused[0]!)).toBe("54000");
    expect(readyStatus(refused[1]!)).toBe("E");
    // PostgreSQL's own answers in a failed block: 25P02, then COMMIT ends it as ROLLBACK
    raw.send(query("SELECT 1"));
    const ignored = await raw.readReadyN(1, 5_000);
    expect(sqlState(ignored[0]!)).toBe("25P02");
    raw.send(query("COMMIT"));
    const commit = await raw.readReadyN(1, 5_000);
    expect(types(commit)).toBe("CZ");
    expect(readyStatus(commit[1]!)).toBe("I");
    // the next client sees nothing of the refused block
    const next = await connect(p);
    expect(await firstValue(next, "SELECT count(*)::int FROM guard_log WHERE id = 4242")).toBe(0);
  });

  test("pipelined behind a slow query, the refusal comes in order and a named statement behind it still binds", async () => {
    const p = await guardPooler();
    const raw = await login(p);
    raw.send(
      Buffer.concat([
        query("SELECT 'first' FROM pg_sleep(0.2)"),
        query("SELECT * FROM events"),
        msg.parse("kept", "SELECT 'kept'::text"),
        msg.bind("", "kept"),
        msg.execute(),
        msg.sync(),
      ]),
    );
    const piped = await raw.readReadyN(3, 5_000);
    expect(types(piped)).toBe("TDCZEZ12DCZ");
    expect(sqlState(piped.find((m) => m.type === "E")!)).toBe("54000");
    raw.send(Buffer.concat([msg.bind("", "kept"), msg.execute(), msg.sync()]));
    expect(rows(await raw.readReadyN(1, 5_000))).toEqual([["kept"]]);
  });
});

describe("the audit-log example", () => {
  test("loaded from its path by a pgbun process (esbuild), it logs a query with its duration", async () => {
    const pgbun = await startPgbun({
      pg,
      config: { pgbun: { pool_mode: "transaction", log_level: "info", log_format: "json", plugins: [EXAMPLES.auditLog] } },
    });
    track(pgbun, (p) => p.stop());
    const c = await connect(pgbun);
    expect(await firstValue(c, "SELECT 42 AS audited")).toBe(42);

    let line: Record<string, unknown> | undefined;
    await waitFor(
      "the audit log line",
      () => {
        for (const l of pgbun.logs().split("\n")) {
          if (!l.startsWith("{")) continue;
          const j = JSON.parse(l) as Record<string, unknown>;
          if (j.plugin === "audit-log" && j.query === "SELECT 42 AS audited") line = j;
        }
        return line !== undefined;
      },
      5_000,
    );
    expect(line!.user).toBe("postgres");
    expect(line!.database).toBe("app");
    expect(line!.client).toMatch(/^C-\d+$/);
    expect(typeof line!.durationMs).toBe("number");
    expect(line!.durationMs as number).toBeGreaterThanOrEqual(0);
  });

  test("with a sink: simple and extended queries, user, database, duration and errors", async () => {
    const entries: AuditEntry[] = [];
    const p = await pooler([[EXAMPLES.auditLog, { sink: (e: AuditEntry) => entries.push(e) }]]);
    const c = await connect(p);
    await firstValue(c, "SELECT 1 AS simple");
    await firstValue(c, "SELECT $1::int AS extended", [7]);
    await rejection(c.query("SELECT 1/0"));
    await waitFor("three audit entries", () => entries.length >= 3, 2_000);

    expect(entries.map((e) => e.text)).toEqual(["SELECT 1 AS simple", "SELECT $1::int AS extended", "SELECT 1/0"]);
    expect(entries.map((e) => e.protocol)).toEqual(["query", "extended", "query"]);
    for (const e of entries) {
      expect(e.user).toBe("postgres");
      expect(e.database).toBe("app");
      expect(e.client).toMatch(/^C-\d+$/);
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(entries[0]!.error).toBeUndefined();
    expect(entries[2]!.error).toBe("22012");
  });

  test("slowMs logs only the queries slower than that, with their real duration", async () => {
    const entries: AuditEntry[] = [];
    const p = await pooler([[EXAMPLES.auditLog, { slowMs: 150, sink: (e: AuditEntry) => entries.push(e) }]]);
    const c = await connect(p);
    await firstValue(c, "SELECT 1 AS fast");
    await firstValue(c, "SELECT 'slow' FROM pg_sleep(0.3)");
    await firstValue(c, "SELECT 2 AS fast");
    await waitFor("the slow query's entry", () => entries.length >= 1, 2_000);
    await Bun.sleep(50);
    expect(entries.map((e) => e.text)).toEqual(["SELECT 'slow' FROM pg_sleep(0.3)"]);
    expect(entries[0]!.durationMs).toBeGreaterThanOrEqual(290);
  });
});

describe("the audit-log and query-firewall examples together", () => {
  test("queries answered by the firewall do not shift the audit log", async () => {
    const entries: AuditEntry[] = [];
    const p = await pooler([
      [EXAMPLES.auditLog, { sink: (e: AuditEntry) => entries.push(e) }],
      [EXAMPLES.firewall, { deny: ["forbidden_table"] }],
    ]);
    const c = await connect(p);
    await firstValue(c, "SELECT 'one'");
    expect((await rejection(c.query("SELECT * FROM forbidden_table"))).code).toBe("42501");
    await c.query("BEGIN");
    expect((await rejection(c.query("SELECT * FROM forbidden_table"))).code).toBe("42501");
    await c.query("ROLLBACK");
    await firstValue(c, "SELECT 'two'");
    await waitFor("the last entry", () => entries.some((e) => e.text === "SELECT 'two'"), 2_000);
    // refused outside a transaction: answered by pgbun, never reaches the server, not in the log;
    // refused inside one: the server raises the error, and the log has the client's text with it
    expect(entries.map((e) => [e.text, e.error ?? null])).toEqual([
      ["SELECT 'one'", null],
      ["BEGIN", null],
      ["SELECT * FROM forbidden_table", "42501"],
      ["ROLLBACK", null],
      ["SELECT 'two'", null],
    ]);
  });
});

describe("a rewriting plugin", () => {
  test("a Query hook returning a new Query message: SELECT 1 becomes SELECT 2", async () => {
    const dir = await harnessTempDir("rewrite");
    writePlugin(
      dir,
      "rewrite.ts",
      `import { definePlugin, decodeQuery, query } from "\${SDK}";
       export default definePlugin(() => ({
         name: "rewrite-one-to-two",
         apply(api) {
           api.onClientMessage("Query", (ctx) => (decodeQuery(ctx) === "SELECT 1" ? query("SELECT 2") : undefined));
         },
       }));`,
    );
    const p = await pooler(["./rewrite.ts"], { dir });
    const c = await connect(p);
    expect(await firstValue(c, "SELECT 1")).toBe(2);
    expect(await firstValue(c, "SELECT 3")).toBe(3);
    expect(await firstValue(c, "SELECT 1")).toBe(2);
  });
});

describe("a plugin answering with sendToClient + Action.Drop at the default stage", () => {
  test("does not break named prepared statements (pgbun:prepared-statements) inside a transaction", async () => {
    const dir = await harnessTempDir("answer");
    writePlugin(
      dir,
      "plain-answer.ts",
      `import { Action, commandComplete, dataRow, decodeQuery, definePlugin, readyForQuery, rowDescription } from "\${SDK}";
       export default definePlugin(() => ({
         name: "plain-answer",
         apply(api) {
           api.onClientMessage("Query", (ctx) => {
             if (decodeQuery(ctx) !== "SHOW plain_answer") return undefined;
             ctx.sendToClient(rowDescription(["plain_answer"]));
             ctx.sendToClient(dataRow(["yes"]));
             ctx.sendToClient(commandComplete("SHOW"));
             ctx.sendToClient(readyForQuery(ctx.client.txStatus));
             return Action.Drop;
           });
         },
       }));`,
    );
    const p = await pooler(["./plain-answer.ts"], { dir });
    const c = await connect(p);
    const protocolErrors: string[] = [];
    c.on("error", (err) => protocolErrors.push(err.message));
    await c.query("BEGIN");
    expect((await c.query({ name: "s", text: "SELECT $1::int AS n", values: [1], rowMode: "array" })).rows).toEqual([[1]]);
    expect(await firstValue(c, "SHOW plain_answer")).toBe("yes");
    // same text under another name: pgbun already has it on this server and answers the Parse itself
    const again = c.query({ name: "t", text: "SELECT $1::int AS n", values: [2], rowMode: "array" });
    expect((await within(3_000, again, "the second named statement")).rows).toEqual([[2]]);
    await Bun.sleep(50);
    expect(protocolErrors).toEqual([]);
    await c.query("COMMIT");
  });
});

describe("the hello-answer example", () => {
  test("answers SHOW pgbun_version without a server, even while the only server is held in a transaction", async () => {
    const p = await pooler([[EXAMPLES.helloAnswer, { version: "pgbun-test-1.2.3" }]], { settings: { default_pool_size: 1 } });
    const holder = await connect(p);
    await holder.query("BEGIN");
    await holder.query("SELECT 1");
    const other = await connect(p);

    const r = await within(3_000, other.query("SHOW pgbun_version"), "SHOW pgbun_version with the pool exhausted");
    expect(r.fields.map((f) => f.name)).toEqual(["pgbun_version"]);
    expect(r.rows).toEqual([{ pgbun_version: "pgbun-test-1.2.3" }]);
    expect(r.command).toBe("SHOW");
    expect(await within(3_000, firstValue(other, "  show PGBUN_VERSION ; "), "normalized form")).toBe("pgbun-test-1.2.3");

    // a real query does wait for the held server: the pool really is exhausted
    let done = false;
    const waiting = firstValue(other, "SELECT 'after commit'").then((v) => ((done = true), v));
    await Bun.sleep(300);
    expect(done).toBe(false);
    await holder.query("COMMIT");
    expect(await within(3_000, waiting, "the waiting query")).toBe("after commit");
  });

  test("inside a transaction the answer keeps the transaction open; a failed one refuses it", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const c = await connect(p);
    await c.query("BEGIN");
    const xid = await firstValue(c, "SELECT txid_current()");
    expect(await firstValue(c, "SHOW pgbun_version")).toBe("pgbun");
    expect(await firstValue(c, "SELECT txid_current()")).toBe(xid);
    await c.query("COMMIT");
    // in a failed transaction it is refused as PostgreSQL refuses everything there
    await c.query("BEGIN");
    await rejection(c.query("SELECT 1/0"));
    expect((await rejection(c.query("SHOW pgbun_version"))).code).toBe("25P02");
    await c.query("ROLLBACK");
    expect(await firstValue(c, "SHOW pgbun_version")).toBe("pgbun");
  });

  test("answers interleaved with named prepared statements leave pgbun:prepared-statements in step", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const c = await connect(p);
    for (let i = 0; i < 3; i++) {
      expect(await firstValue(c, "SHOW pgbun_version")).toBe("pgbun");
      expect((await c.query({ name: "add", text: "SELECT $1::int + 1", values: [i], rowMode: "array" })).rows).toEqual([[i + 1]]);
      await c.query("BEGIN");
      expect(await firstValue(c, "SHOW pgbun_version")).toBe("pgbun");
      expect((await c.query({ name: "add", text: "SELECT $1::int + 1", values: [i * 10], rowMode: "array" })).rows).toEqual([[i * 10 + 1]]);
      await c.query("COMMIT");
    }
  });

  test("pipelined behind a slow query, the answer comes after that query's result", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const raw = await login(p);
    raw.send(Buffer.concat([query("SELECT 'first' FROM pg_sleep(0.2)"), query("SHOW pgbun_version")]));
    const messages = await raw.readReadyN(2, 5_000);
    expect(rows(messages)).toEqual([["first"], ["pgbun"]]);
    expect(types(messages)).toBe("TDCZTDCZ");
  });

  test("answered by the server (pipelined), it leaves pgbun:prepared-statements in step: a named statement behind it still binds", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const raw = await login(p);
    raw.send(
      Buffer.concat([
        query("SELECT 'first' FROM pg_sleep(0.2)"),
        query("SHOW pgbun_version"),
        msg.parse("kept", "SELECT 'kept'::text"),
        msg.bind("", "kept"),
        msg.execute(),
        msg.sync(),
      ]),
    );
    const piped = await raw.readReadyN(3, 5_000);
    expect(types(piped)).toBe("TDCZTDCZ12DCZ");
    expect(rows(piped)).toEqual([["first"], ["pgbun"], ["kept"]]);
    raw.send(Buffer.concat([msg.bind("", "kept"), msg.execute(), msg.sync()]));
    const again = await raw.readReadyN(1, 5_000);
    expect(types(again)).toBe("2DCZ");
    expect(rows(again)).toEqual([["kept"]]);
  });
});

describe("the query-firewall example", () => {
  const options = { deny: ["forbidden_table", "^\\s*drop\\s"] };

  test("refuses a denied query with 42501 and allows others", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    const err = await rejection(c.query("SELECT * FROM forbidden_table"));
    expect(err.code).toBe("42501");
    expect(err.message).toContain("firewall");
    const drop = await rejection(c.query("  DROP TABLE whatever"));
    expect(drop.code).toBe("42501");
    expect(await firstValue(c, "SELECT 'allowed'")).toBe("allowed");
  });

  test("answers without a server: works while the only server is held by another client", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]], { settings: { default_pool_size: 1 } });
    const holder = await connect(p);
    await holder.query("BEGIN");
    await holder.query("SELECT 1");
    const other = await connect(p);
    const err = await within(3_000, rejection(other.query("SELECT * FROM forbidden_table")), "the refusal with the pool exhausted");
    expect(err.code).toBe("42501");
    await holder.query("COMMIT");
    expect(await firstValue(other, "SELECT 'then allowed'")).toBe("then allowed");
  });

  test("refuses the extended protocol (Parse) too", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    const err = await rejection(c.query("SELECT * FROM forbidden_table WHERE id = $1", [1]));
    expect(err.code).toBe("42501");
    expect(await firstValue(c, "SELECT $1::text", ["allowed"])).toBe("allowed");
  });

  test("inside a transaction the refusal fails the transaction, as PostgreSQL's own errors do", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    await c.query("BEGIN");
    expect((await rejection(c.query("SELECT * FROM forbidden_table"))).code).toBe("42501");
    expect((await rejection(c.query("SELECT 1"))).code).toBe("25P02");
    await c.query("ROLLBACK");
    expect(await firstValue(c, "SELECT 'after rollback'")).toBe("after rollback");
  });

  test("a named prepared statement is refused too (the firewall taps before pgbun:prepared-statements)", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    for (let i = 0; i < 2; i++) {
      const err = await rejection(c.query({ name: "sneaky", text: "SELECT * FROM forbidden_table WHERE id = $1", values: [i] }));
      expect(err.code).toBe("42501");
    }
    expect((await c.query({ name: "fine", text: "SELECT $1::int AS n", values: [5], rowMode: "array" })).rows).toEqual([[5]]);
    expect((await c.query({ name: "fine", text: "SELECT $1::int AS n", values: [6], rowMode: "array" })).rows).toEqual([[6]]);
  });

  test("a refused Parse inside a transaction fails the transaction through the server", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    await c.query("BEGIN");
    await c.query("SELECT 1");
    const err = await rejection(c.query("SELECT * FROM forbidden_table WHERE id = $1", [1]));
    expect(err.code).toBe("42501");
    expect((await rejection(c.query("SELECT $1::int", [1]))).code).toBe("25P02");
    await c.query("ROLLBACK");
    expect(await firstValue(c, "SELECT $1::text", ["after rollback"])).toBe("after rollback");
  });

  test("pipelined behind a slow query, the refusal comes after that query's result", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const raw = await login(p);
    raw.send(Buffer.concat([query("SELECT 'first' FROM pg_sleep(0.2)"), query("SELECT * FROM forbidden_table"), query("SELECT 'third'")]));
    const messages = await raw.readReadyN(3, 5_000);
    expect(types(messages)).toBe("TDCZEZTDCZ");
    expect(rows(messages)).toEqual([["first"], ["third"]]);
    const error = messages.find((m) => m.type === "E")!;
    expect(sqlState(error)).toBe("42501");
  });

  test("a refused Parse skips to its Sync: answered here when alone, by the server when pipelined", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const raw = await login(p);
    raw.send(extendedQuery("SELECT * FROM forbidden_table"));
    const alone = await raw.readReadyN(1, 5_000);
    expect(types(alone)).toBe("EZ");
    expect(sqlState(alone[0]!)).toBe("42501");

    raw.send(Buffer.concat([query("SELECT 'first' FROM pg_sleep(0.2)"), extendedQuery("SELECT * FROM forbidden_table"), extendedQuery("SELECT 'third'")]));
    const piped = await raw.readReadyN(3, 5_000);
    // ParseComplete '1', BindComplete '2' only for the allowed statement
    expect(types(piped)).toBe("TDCZEZ12DCZ");
    expect(sqlState(piped.find((m) => m.type === "E")!)).toBe("42501");
    expect(rows(piped)).toEqual([["first"], ["third"]]);
  });

  test("a refusal answered by the server leaves pgbun:prepared-statements in step: a named statement behind it still binds", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const raw = await login(p);
    // the refused Parse goes through the server (behind a slow query); a named statement is prepared behind it
    raw.send(
      Buffer.concat([
        query("SELECT 'first' FROM pg_sleep(0.2)"),
        extendedQuery("SELECT * FROM forbidden_table"),
        msg.parse("kept", "SELECT 'kept'::text"),
        msg.bind("", "kept"),
        msg.execute(),
        msg.sync(),
      ]),
    );
    expect(types(await raw.readReadyN(3, 5_000))).toBe("TDCZEZ12DCZ");
    // the client's statement exists: binding it again runs it
    raw.send(Buffer.concat([msg.bind("", "kept"), msg.execute(), msg.sync()]));
    const again = await raw.readReadyN(1, 5_000);
    expect(types(again)).toBe("2DCZ");
    expect(rows(again)).toEqual([["kept"]]);
  });

  test("a Query refused by the server inside a transaction leaves pgbun:prepared-statements in step", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const raw = await login(p);
    raw.send(query("BEGIN"));
    await raw.readReadyN(1, 5_000);
    raw.send(
      Buffer.concat([
        query("SELECT * FROM forbidden_table"),
        query("ROLLBACK"),
        msg.parse("kept", "SELECT 'kept'::text"),
        msg.bind("", "kept"),
        msg.execute(),
        msg.sync(),
      ]),
    );
    const piped = await raw.readReadyN(3, 5_000);
    expect(types(piped)).toBe("EZCZ12DCZ");
    expect(sqlState(piped[0]!)).toBe("42501");
    raw.send(Buffer.concat([msg.bind("", "kept"), msg.execute(), msg.sync()]));
    const again = await raw.readReadyN(1, 5_000);
    expect(types(again)).toBe("2DCZ");
    expect(rows(again)).toEqual([["kept"]]);
  });
});
