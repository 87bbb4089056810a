// The plugin pipeline against a real PostgreSQL: loading (paths, esbuild cache, npm), order, replacement, faults, rewriting, answering.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { join, relative, resolve } from "node:path";
import { Client } from "pg";
import { harnessTempDir, startPostgres, type TestPostgres } from "../harness/postgres.ts";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { startTestPooler, type TestPooler } from "../../plugin-sdk/testing.ts";
import { Frontend, MessageWriter, decodeDataRow, decodeErrorResponse, query } from "../../plugin-sdk/index.ts";
import { startupMessage } from "../../core/protocol/writer.ts";
import type { AuditEntry } from "../../examples/audit-log.ts";

const REPO = resolve(import.meta.dir, "..", "..");
const SDK = join(REPO, "plugin-sdk", "index.ts");
const EXAMPLES = {
  auditLog: join(REPO, "examples", "audit-log.ts"),
  firewall: join(REPO, "examples", "query-firewall.ts"),
  helloAnswer: join(REPO, "examples", "hello-answer.ts"),
};

// PostgreSQL and pgbun processes start here: generous limits for a loaded machine
setDefaultTimeout(30_000);

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
});

// ---- per-test resources, released after each test ----

const poolers: TestPooler[] = [];
const processes: TestPgbun[] = [];
const clients: Client[] = [];
const rawClients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  for (const r of rawClients.splice(0)) r.close();
  for (const p of poolers.splice(0)) await p.stop().catch(() => undefined);
  for (const p of processes.splice(0)) await p.stop().catch(() => undefined);
});

type PluginList = Array<string | [string, Record<string, unknown>]>;

/** An in-process pgbun in front of the test PostgreSQL; relative plugin paths (and .pgbun-cache) live in `dir`. */
async function pooler(plugins: PluginList, opts: { dir?: string; settings?: Record<string, unknown> } = {}): Promise<TestPooler> {
  const dir = opts.dir ?? (await harnessTempDir("plugins"));
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", ...opts.settings },
    plugins,
    dir,
  });
  poolers.push(p);
  return p;
}

/** A node-postgres client through the pooler (to the `app` database); errors after the test are ignored. */
async function connect(p: { url(db?: string): string }, applicationName?: string): Promise<Client> {
  const c = new Client({ connectionString: p.url("app"), application_name: applicationName });
  c.on("error", () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

async function value(c: Client, sql: string, params?: unknown[]): Promise<unknown> {
  const r = await c.query({ text: sql, values: params, rowMode: "array" });
  return (r.rows[0] as unknown[] | undefined)?.[0];
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; severity?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected the promise to reject");
}

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

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** The SDK import path as a plugin in `dir` would write it: relative. */
function sdkFrom(dir: string): string {
  const rel = relative(dir, SDK);
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** Writes a plugin source file into `dir`; `${SDK}` in the source becomes the relative SDK path. */
function writePlugin(dir: string, file: string, source: string): string {
  const path = join(dir, file);
  writeFileSync(path, source.replaceAll("${SDK}", sdkFrom(dir)));
  return path;
}

function pluginNames(p: TestPooler): string[] {
  return p.core.plugins.map((l) => l.plugin.name);
}

// ---- a raw protocol client, for pipelining several queries in one write ----

interface RawMessage {
  type: string;
  buf: Buffer;
}

class RawClient {
  private data = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
      this.wake?.();
    });
    socket.on("close", () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on("error", () => undefined);
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = netConnect({ host: "127.0.0.1", port });
    await new Promise<void>((ok, fail) => {
      socket.once("connect", ok);
      socket.once("error", fail);
    });
    const raw = new RawClient(socket);
    rawClients.push(raw);
    raw.send(startupMessage({ user: "postgres", database: "app" }));
    const login = await raw.readUntilReady(1);
    const error = login.find((m) => m.type === "E");
    if (error) throw new Error(`raw login failed: ${errorOf(error).message}`);
    return raw;
  }

  send(...messages: Uint8Array[]): void {
    this.socket.write(Buffer.concat(messages));
  }

  /** Reads whole messages until `n` ReadyForQuery have arrived. */
  async readUntilReady(n: number, ms = 5_000): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    let ready = 0;
    const deadline = Date.now() + ms;
    while (ready < n) {
      while (this.data.length >= 5 && this.data.length >= 1 + this.data.readUInt32BE(1)) {
        const len = 1 + this.data.readUInt32BE(1);
        const m = { type: String.fromCharCode(this.data[0]!), buf: Buffer.from(this.data.subarray(0, len)) };
        this.data = this.data.subarray(len);
        out.push(m);
        if (m.type === "Z") ready++;
        if (ready === n) return out;
      }
      if (this.ended) throw new Error(`connection closed after ${out.map((m) => m.type).join("")}`);
      if (Date.now() > deadline) throw new Error(`no ${n} ReadyForQuery within ${ms} ms (got ${out.map((m) => m.type).join("")})`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
      this.wake = null;
    }
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Parse, Bind, Execute and Sync of one unnamed statement without parameters (extended protocol). */
function extended(sql: string): Buffer {
  const w = new MessageWriter(64);
  w.begin(Frontend.Parse).cstring("").cstring(sql).int16(0).end();
  w.begin(Frontend.Bind).cstring("").cstring("").int16(0).int16(0).int16(0).end();
  w.begin(Frontend.Execute).cstring("").int32(0).end();
  w.begin(Frontend.Sync).end();
  return Buffer.from(w.finish());
}

const located = (m: RawMessage) => ({ buf: m.buf, start: 0, end: m.buf.length });
const errorOf = (m: RawMessage) => decodeErrorResponse(located(m));
const rows = (messages: RawMessage[]) => messages.filter((m) => m.type === "D").map((m) => decodeDataRow(located(m)));
const types = (messages: RawMessage[]) => messages.map((m) => m.type).join("");

// =====================================================================================================

describe("the audit-log example", () => {
  test("loaded from its path by a pgbun process (esbuild), it logs a query with its duration", async () => {
    const pgbun = await startPgbun({
      pg,
      config: { pgbun: { pool_mode: "transaction", log_level: "info", log_format: "json", plugins: [EXAMPLES.auditLog] } },
    });
    processes.push(pgbun);
    const c = await connect(pgbun);
    expect(await value(c, "SELECT 42 AS audited")).toBe(42);

    let line: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        for (const l of pgbun.logs().split("\n")) {
          if (!l.startsWith("{")) continue;
          const j = JSON.parse(l) as Record<string, unknown>;
          if (j.plugin === "audit-log" && j.query === "SELECT 42 AS audited") line = j;
        }
        return line !== undefined;
      },
      5_000,
      "the audit log line",
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
    await value(c, "SELECT 1 AS simple");
    await value(c, "SELECT $1::int AS extended", [7]);
    await rejection(c.query("SELECT 1/0"));
    await waitFor(() => entries.length >= 3, 2_000, "three audit entries");

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
    await value(c, "SELECT 1 AS fast");
    await value(c, "SELECT 'slow' FROM pg_sleep(0.3)");
    await value(c, "SELECT 2 AS fast");
    await waitFor(() => entries.length >= 1, 2_000, "the slow query's entry");
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
    await value(c, "SELECT 'one'");
    expect((await rejection(c.query("SELECT * FROM forbidden_table"))).code).toBe("42501");
    await c.query("BEGIN");
    expect((await rejection(c.query("SELECT * FROM forbidden_table"))).code).toBe("42501");
    await c.query("ROLLBACK");
    await value(c, "SELECT 'two'");
    await waitFor(() => entries.some((e) => e.text === "SELECT 'two'"), 2_000, "the last entry");
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

describe("tap order", () => {
  const recorderSource = (name: string) => `
    import { definePlugin } from "\${SDK}";
    export default definePlugin((o) => ({
      name: ${JSON.stringify(name)},
      enforce: o.enforce,
      apply(api) {
        api.onClientMessage("Query", () => {
          o.record(${JSON.stringify(name)});
          return undefined;
        });
      },
    }));
  `;

  async function callOrder(plugins: Array<[string, Record<string, unknown>]>, dir: string): Promise<{ calls: string[]; names: string[] }> {
    const calls: string[] = [];
    const record = (n: string) => calls.push(n);
    const p = await pooler(
      plugins.map(([spec, o]) => [spec, { ...o, record }] as [string, Record<string, unknown>]),
      { dir },
    );
    const c = await connect(p);
    calls.length = 0;
    await value(c, "SELECT 1");
    const names = pluginNames(p);
    await c.end();
    await p.stop();
    return { calls, names };
  }

  test("Query taps run in config order; enforce pre and post move plugins first and last", async () => {
    const dir = await harnessTempDir("order");
    for (const n of ["first", "second", "third"]) writePlugin(dir, `${n}.ts`, recorderSource(n));

    expect((await callOrder([["./first.ts", {}], ["./second.ts", {}], ["./third.ts", {}]], dir)).calls).toEqual(["first", "second", "third"]);
    expect((await callOrder([["./third.ts", {}], ["./first.ts", {}], ["./second.ts", {}]], dir)).calls).toEqual(["third", "first", "second"]);

    const pre = await callOrder([["./first.ts", {}], ["./second.ts", {}], ["./third.ts", { enforce: "pre" }]], dir);
    expect(pre.calls).toEqual(["third", "first", "second"]);
    expect(pre.names.indexOf("third")).toBeLessThan(pre.names.indexOf("first"));

    const post = await callOrder([["./first.ts", { enforce: "post" }], ["./second.ts", {}], ["./third.ts", {}]], dir);
    expect(post.calls).toEqual(["second", "third", "first"]);
    expect(post.names[post.names.length - 1]).toBe("first");
  });
});

describe("replacing a built-in", () => {
  const tinyPool = `
    import { definePlugin, SqlState } from "\${SDK}";
    const NAME = "tiny-pool";
    /** One server per client, opened at login, kept across transactions, closed with the client. */
    export default definePlugin(() => ({
      name: NAME,
      provides: ["pool"],
      apply(api) {
        const open = async (client) => {
          const target = api.core.targetFor(client.dbEntry, client.database, client.user);
          const server = await api.core.openServer(target, NAME);
          server.setState("idle");
          client.data[NAME] = server;
          return server;
        };
        api.hooks.authenticated.tapPromise(NAME, async (client) => {
          try {
            const server = await open(client);
            client.welcomeParams = new Map(server.params);
          } catch (err) {
            return { code: SqlState.ConnectionFailure, message: "tiny-pool: " + (err && err.message) };
          }
          return undefined;
        });
        api.hooks.needServer.tap(NAME, (client) => {
          const server = client.data[NAME];
          if (server && server.state === "idle") return server;
          // its server is gone: open another and hand it over once logged in
          open(client).then(
            (s) => (client.state === "waiting" ? client.linkServer(s) : s.close("client left")),
            (err) => client.fatal(SqlState.ConnectionFailure, "tiny-pool: " + (err && err.message)),
          );
          return undefined;
        });
        api.hooks.serverReleased.tap(NAME, (server, client, reason) => {
          if (reason === "client-close" || !client || client.data[NAME] !== server) return undefined; // the core closes it
          server.setState("idle");
          return true;
        });
        api.hooks.clientClosed.tap(NAME, (client) => {
          const server = client.data[NAME];
          delete client.data[NAME];
          if (server && server.state !== "closed") server.close("client closed");
        });
      },
    }));
  `;

  test("a plugin providing pool replaces pgbun:pool and queries still work", async () => {
    const dir = await harnessTempDir("tiny-pool");
    writePlugin(dir, "tiny-pool.ts", tinyPool);
    const p = await pooler(["./tiny-pool.ts"], { dir });
    const names = pluginNames(p);
    expect(names).toContain("tiny-pool");
    expect(names).not.toContain("pgbun:pool");
    // the other defaults still fill their capabilities
    expect(names).toContain("pgbun:transaction-detection");
    expect(names).toContain("pgbun:parameter-tracking");

    const a = await connect(p);
    const b = await connect(p);
    // used one after the other: the built-in pool would hand both the same idle server; this one never shares
    const pidA1 = await value(a, "SELECT pg_backend_pid()");
    const pidB1 = await value(b, "SELECT pg_backend_pid()");
    const pidA2 = await value(a, "SELECT pg_backend_pid()");
    expect(pidA1).not.toBe(pidB1);
    expect(pidA2).toBe(pidA1);
    await a.query("BEGIN");
    await a.query("CREATE TEMP TABLE t (x int)");
    await a.query("INSERT INTO t VALUES (1), (2)");
    expect(await value(a, "SELECT count(*)::int FROM t")).toBe(2);
    await a.query("COMMIT");
    expect(p.core.servers.size).toBe(2);

    await a.end();
    await b.end();
    await waitFor(() => p.core.servers.size === 0, 3_000, "the clients' servers to close");
  });

  test("listing pgbun:pool next to another pool provider is refused", async () => {
    const dir = await harnessTempDir("tiny-pool");
    writePlugin(dir, "tiny-pool.ts", tinyPool);
    const err = await rejection(pooler(["pgbun:pool", "./tiny-pool.ts"], { dir }));
    expect(err.message).toContain('"pool"');
    expect(err.message).toContain("pgbun:pool");
  });
});

describe("dependencies", () => {
  test("a plugin depending on a capability nobody provides fails start-up, naming the plugin and the capability", async () => {
    const dir = await harnessTempDir("deps");
    // the file name differs from the plugin name: the error must name the plugin, not only its file
    writePlugin(
      dir,
      "dep-missing.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "wants-cache", dependencies: ["pool", "query-cache"], apply() {} }));`,
    );
    const err = await rejection(pooler(["./dep-missing.ts"], { dir }));
    expect(err.message).toContain("wants-cache");
    expect(err.message).toContain("query-cache");
  });

  test("the same failure stops a pgbun process with the message on its output", async () => {
    const dir = await harnessTempDir("deps");
    const file = writePlugin(
      dir,
      "dep-missing.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "wants-cache", dependencies: ["query-cache"], apply() {} }));`,
    );
    const err = await rejection(startPgbun({ pg, config: { pgbun: { plugins: [file] } } }));
    expect(err.message).toContain("exited with code 1");
    expect(err.message).toContain("query-cache");
    expect(err.message).toContain("wants-cache");
  });

  test("a dependency on a built-in capability is satisfied by the defaults", async () => {
    const dir = await harnessTempDir("deps");
    writePlugin(
      dir,
      "needs-pool.ts",
      `import { definePlugin } from "\${SDK}";
       export default definePlugin(() => ({ name: "needs-pool", dependencies: ["pool", "transaction-detection", "pgbun:parameter-tracking"], apply() {} }));`,
    );
    const p = await pooler(["./needs-pool.ts"], { dir });
    expect(pluginNames(p)).toContain("needs-pool");
    expect(await value(await connect(p), "SELECT 1")).toBe(1);
  });

  test("two plugins providing the same capability fail start-up, naming the capability and both", async () => {
    const dir = await harnessTempDir("deps");
    // file names differ from plugin names: the error must name the plugins, not only where they came from
    for (const [file, n] of [["provider-a.ts", "cache-one"], ["provider-b.ts", "cache-two"]]) {
      writePlugin(
        dir,
        file!,
        `import { definePlugin } from "\${SDK}";
         export default definePlugin(() => ({ name: "${n}", provides: ["query-cache"], apply() {} }));`,
      );
    }
    const err = await rejection(pooler(["./provider-a.ts", "./provider-b.ts"], { dir }));
    expect(err.message).toContain("query-cache");
    expect(err.message).toContain("cache-one");
    expect(err.message).toContain("cache-two");
  });
});

describe("a throwing plugin", () => {
  const thrower = `
    import { definePlugin, decodeQuery, decodeDataRow } from "\${SDK}";
    export default definePlugin(() => ({
      name: "thrower",
      apply(api) {
        api.onClientMessage("Query", (ctx) => {
          if (decodeQuery(ctx) === "SELECT 'boom'") throw new Error("kaboom in a client hook");
          return undefined;
        });
        api.onServerMessage("DataRow", (ctx) => {
          if (decodeDataRow(ctx)[0] === "server-boom") throw new Error("kaboom in a server hook");
          return undefined;
        });
      },
    }));
  `;

  async function setup(): Promise<TestPooler> {
    const dir = await harnessTempDir("thrower");
    writePlugin(dir, "thrower.ts", thrower);
    return pooler(["./thrower.ts"], { dir });
  }

  test("a throw in a Query hook: that query fails naming the plugin, the client continues, others are unaffected", async () => {
    const p = await setup();
    const a = await connect(p);
    const b = await connect(p);
    expect(await value(b, "SELECT 'b before'")).toBe("b before");

    const err = await rejection(a.query("SELECT 'boom'"));
    expect(err.message).toContain("kaboom in a client hook");
    expect(err.severity).toBe("ERROR");

    expect(await value(a, "SELECT 'a after'")).toBe("a after");
    expect(await value(b, "SELECT 'b after'")).toBe("b after");
    // again, inside a transaction: the client keeps its session
    await a.query("BEGIN");
    await rejection(a.query("SELECT 'boom'"));
    expect(await value(a, "SELECT 'still here'")).toBe("still here");
    await a.query("COMMIT");
    // and the pooler still accepts new clients
    expect(await value(await connect(p), "SELECT 'new client'")).toBe("new client");
    // the error says which plugin failed
    expect(err.message).toContain('plugin "thrower" failed');
  });

  test("a throw in a server-message hook ends that client with an error naming the plugin; others keep working", async () => {
    const p = await setup();
    const a = await connect(p);
    const b = await connect(p);
    let ended = false;
    a.on("end", () => (ended = true));

    const err = await rejection(a.query("SELECT 'server-boom'"));
    expect(err.message).toContain("kaboom in a server hook");
    await waitFor(() => ended, 3_000, "the failed client's connection to end");
    await rejection(a.query("SELECT 1"));

    expect(await value(b, "SELECT 'b works'")).toBe("b works");
    const c = await connect(p);
    expect(await value(c, "SELECT 'new client works'")).toBe("new client works");
    // the error says which plugin failed
    expect(err.message).toContain('plugin "thrower" failed');
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
    expect(await value(c, "SELECT 1")).toBe(2);
    expect(await value(c, "SELECT 3")).toBe(3);
    expect(await value(c, "SELECT 1")).toBe(2);
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
    expect(await value(c, "SHOW plain_answer")).toBe("yes");
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
    expect(await within(3_000, value(other, "  show PGBUN_VERSION ; "), "normalized form")).toBe("pgbun-test-1.2.3");

    // a real query does wait for the held server: the pool really is exhausted
    let done = false;
    const waiting = value(other, "SELECT 'after commit'").then((v) => ((done = true), v));
    await Bun.sleep(300);
    expect(done).toBe(false);
    await holder.query("COMMIT");
    expect(await within(3_000, waiting, "the waiting query")).toBe("after commit");
  });

  test("inside a transaction the answer keeps the transaction open; a failed one refuses it", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const c = await connect(p);
    await c.query("BEGIN");
    const xid = await value(c, "SELECT txid_current()");
    expect(await value(c, "SHOW pgbun_version")).toBe("pgbun");
    expect(await value(c, "SELECT txid_current()")).toBe(xid);
    await c.query("COMMIT");
    // in a failed transaction it is refused as PostgreSQL refuses everything there
    await c.query("BEGIN");
    await rejection(c.query("SELECT 1/0"));
    expect((await rejection(c.query("SHOW pgbun_version"))).code).toBe("25P02");
    await c.query("ROLLBACK");
    expect(await value(c, "SHOW pgbun_version")).toBe("pgbun");
  });

  test("answers interleaved with named prepared statements leave pgbun:prepared-statements in step", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const c = await connect(p);
    for (let i = 0; i < 3; i++) {
      expect(await value(c, "SHOW pgbun_version")).toBe("pgbun");
      expect((await c.query({ name: "add", text: "SELECT $1::int + 1", values: [i], rowMode: "array" })).rows).toEqual([[i + 1]]);
      await c.query("BEGIN");
      expect(await value(c, "SHOW pgbun_version")).toBe("pgbun");
      expect((await c.query({ name: "add", text: "SELECT $1::int + 1", values: [i * 10], rowMode: "array" })).rows).toEqual([[i * 10 + 1]]);
      await c.query("COMMIT");
    }
  });

  test("pipelined behind a slow query, the answer comes after that query's result", async () => {
    const p = await pooler([EXAMPLES.helloAnswer]);
    const raw = await RawClient.connect(p.port);
    raw.send(query("SELECT 'first' FROM pg_sleep(0.2)"), query("SHOW pgbun_version"));
    const messages = await raw.readUntilReady(2);
    expect(rows(messages)).toEqual([["first"], ["pgbun"]]);
    expect(types(messages)).toBe("TDCZTDCZ");
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
    expect(await value(c, "SELECT 'allowed'")).toBe("allowed");
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
    expect(await value(other, "SELECT 'then allowed'")).toBe("then allowed");
  });

  test("refuses the extended protocol (Parse) too", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    const err = await rejection(c.query("SELECT * FROM forbidden_table WHERE id = $1", [1]));
    expect(err.code).toBe("42501");
    expect(await value(c, "SELECT $1::text", ["allowed"])).toBe("allowed");
  });

  test("inside a transaction the refusal fails the transaction, as PostgreSQL's own errors do", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const c = await connect(p);
    await c.query("BEGIN");
    expect((await rejection(c.query("SELECT * FROM forbidden_table"))).code).toBe("42501");
    expect((await rejection(c.query("SELECT 1"))).code).toBe("25P02");
    await c.query("ROLLBACK");
    expect(await value(c, "SELECT 'after rollback'")).toBe("after rollback");
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
    expect(await value(c, "SELECT $1::text", ["after rollback"])).toBe("after rollback");
  });

  test("pipelined behind a slow query, the refusal comes after that query's result", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const raw = await RawClient.connect(p.port);
    raw.send(query("SELECT 'first' FROM pg_sleep(0.2)"), query("SELECT * FROM forbidden_table"), query("SELECT 'third'"));
    const messages = await raw.readUntilReady(3);
    expect(types(messages)).toBe("TDCZEZTDCZ");
    expect(rows(messages)).toEqual([["first"], ["third"]]);
    const error = messages.find((m) => m.type === "E")!;
    expect(errorOf(error).code).toBe("42501");
  });

  test("a refused Parse skips to its Sync: answered here when alone, by the server when pipelined", async () => {
    const p = await pooler([[EXAMPLES.firewall, options]]);
    const raw = await RawClient.connect(p.port);
    raw.send(extended("SELECT * FROM forbidden_table"));
    const alone = await raw.readUntilReady(1);
    expect(types(alone)).toBe("EZ");
    expect(errorOf(alone[0]!).code).toBe("42501");

    raw.send(query("SELECT 'first' FROM pg_sleep(0.2)"), extended("SELECT * FROM forbidden_table"), extended("SELECT 'third'"));
    const piped = await raw.readUntilReady(3);
    // ParseComplete '1', BindComplete '2' only for the allowed statement
    expect(types(piped)).toBe("TDCZEZ12DCZ");
    expect(errorOf(piped.find((m) => m.type === "E")!).code).toBe("42501");
    expect(rows(piped)).toEqual([["first"], ["third"]]);
  });
});

describe("plugin options and the esbuild cache", () => {
  const optionsEcho = `
    import { definePlugin, decodeQuery, query } from "\${SDK}";
    export default definePlugin((factoryOptions) => ({
      name: "options-echo",
      apply(api) {
        const json = JSON.stringify({ factory: factoryOptions, api: api.options }).replace(/'/g, "''");
        api.onClientMessage("Query", (ctx) => (decodeQuery(ctx) === "SHOW plugin_options" ? query("SELECT '" + json + "'::text") : undefined));
      },
    }));
  `;

  test("options from the config reach the factory and api.options", async () => {
    const dir = await harnessTempDir("options");
    writePlugin(dir, "options-echo.ts", optionsEcho);
    const given = { level: "strict", limits: { perUser: 3, list: ["a", "b's"] }, enabled: true };
    const p = await pooler([["./options-echo.ts", given]], { dir });
    const echoed = JSON.parse((await value(await connect(p), "SHOW plugin_options")) as string);
    expect(echoed).toEqual({ factory: given, api: given });
  });

  test("a TS plugin importing the SDK by relative path is compiled once into .pgbun-cache and reused", async () => {
    const dir = await harnessTempDir("cache");
    const source = (v: string) => `
      import { definePlugin, decodeQuery, query } from "\${SDK}";
      export default definePlugin(() => ({
        name: "cached-plugin",
        apply(api) {
          api.onClientMessage("Query", (ctx) => (decodeQuery(ctx) === "SHOW cached_plugin" ? query("SELECT '${v}'::text") : undefined));
        },
      }));
    `;
    const file = writePlugin(dir, "cached.ts", source("version one"));
    expect(sdkFrom(dir).startsWith("..")).toBe(true);
    const cacheDir = join(dir, ".pgbun-cache");
    const cached = () => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.endsWith(".mjs")) : []);

    const first = await pooler(["./cached.ts"], { dir });
    expect(await value(await connect(first), "SHOW cached_plugin")).toBe("version one");
    const files = cached();
    expect(files.length).toBe(1);
    const stat1 = statSync(join(cacheDir, files[0]!));
    await first.stop();

    const second = await pooler(["./cached.ts"], { dir });
    expect(await value(await connect(second), "SHOW cached_plugin")).toBe("version one");
    expect(cached()).toEqual(files);
    const stat2 = statSync(join(cacheDir, files[0]!));
    expect(stat2.mtimeMs).toBe(stat1.mtimeMs);
    expect(stat2.ino).toBe(stat1.ino);
    await second.stop();

    // an edited source is compiled anew
    await Bun.sleep(20);
    writeFileSync(file, source("version two, edited").replaceAll("${SDK}", sdkFrom(dir)));
    const third = await pooler(["./cached.ts"], { dir });
    expect(await value(await connect(third), "SHOW cached_plugin")).toBe("version two, edited");
    expect(cached().length).toBe(2);
  });
});

describe("an npm-style plugin package", () => {
  test("node_modules/pgbun-plugin-demo is loaded by its name, with its options", async () => {
    const dir = await harnessTempDir("npm");
    const pkg = join(dir, "node_modules", "pgbun-plugin-demo");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "pgbun-plugin-demo", version: "1.0.0", type: "module", main: "index.js" }));
    writeFileSync(
      join(pkg, "index.js"),
      `// A published plugin: plain JavaScript, no build step, no import of pgbun's files.
       const encoder = new TextEncoder();
       function queryMessage(sql) {
         const text = encoder.encode(sql);
         const out = new Uint8Array(6 + text.length);
         out[0] = 0x51; // 'Q'
         new DataView(out.buffer).setInt32(1, 5 + text.length);
         out.set(text, 5);
         return out;
       }
       export default function demo(options = {}) {
         return {
           name: "pgbun-plugin-demo",
           apply(api) {
             api.onClientMessage("Query", (ctx) => {
               const body = ctx.body();
               const sql = new TextDecoder().decode(body.subarray(0, body.length - 1));
               if (sql !== "SHOW demo") return undefined;
               return queryMessage("SELECT '" + (options.greeting ?? "hello") + " from pgbun-plugin-demo'::text");
             });
           },
         };
       }
      `,
    );
    const p = await pooler([["pgbun-plugin-demo", { greeting: "hi" }]], { dir });
    expect(pluginNames(p)).toContain("pgbun-plugin-demo");
    expect(await value(await connect(p), "SHOW demo")).toBe("hi from pgbun-plugin-demo");
  });

  test("a package that is not installed fails start-up naming it", async () => {
    const dir = await harnessTempDir("npm");
    const err = await rejection(pooler(["pgbun-plugin-not-installed"], { dir }));
    expect(err.message).toContain("pgbun-plugin-not-installed");
  });
});
