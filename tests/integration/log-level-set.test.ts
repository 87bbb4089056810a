// log_level set at run time (the console's SET, RELOAD) takes effect at once, in the core and in every plugin's log; log_format needs a restart.
import { expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { closeAfterEach, pgConnect, rejection, usePostgres, waitFor } from "../harness/fixtures.ts";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";

setDefaultTimeout(60_000);

const ADMIN = "admin";
const pg = usePostgres();
const track = closeAfterEach();

async function subprocess(): Promise<TestPgbun> {
  const pb = await startPgbun({
    pg,
    config: {
      pgbun: { pool_mode: "transaction", admin_users: [ADMIN], default_pool_size: 3, log_level: "info" },
      databases: { app: { host: pg.host, port: pg.port, password: pg.password } },
    },
  });
  return track(pb, (pb) => pb.stop());
}

const connect = async (p: { host: string; port: number }, opts: Record<string, unknown> = {}): Promise<Client> => track(await pgConnect(p, opts), (c) => c.end());
const debugLines = (pb: TestPgbun) => pb.logs().split("\n").filter((l) => l.includes('"level":20'));

test("SET log_level = debug: the next server login (core) and session check (pgbun:session-state) log at debug; back to info they stop", async () => {
  const pb = await subprocess();
  const a = await connect(pb, { user: ADMIN, database: "pgbouncer", password: undefined });
  // a client's SET makes pgbun:session-state check the server at the transaction's end: a debug line of that plugin
  const run = async () => {
    const c = await connect(pb);
    await c.query("SET search_path = public");
    await c.query("SELECT 1");
  };
  await run();
  await Bun.sleep(200);
  expect(debugLines(pb)).toEqual([]);

  expect((await a.query("SET log_level = debug")).command).toBe("SET");
  await a.query("RECONNECT"); // the idle server closes: the next client's server logs in anew
  await run();
  await waitFor("debug lines of the core and of pgbun:session-state", () => {
    const lines = debugLines(pb);
    return lines.some((l) => l.includes('"msg":"server login"')) && lines.some((l) => l.includes('"plugin":"pgbun:session-state"'));
  });

  expect((await a.query("SET log_level = info")).command).toBe("SET");
  const before = debugLines(pb).length;
  await run();
  await Bun.sleep(200);
  expect(debugLines(pb).length).toBe(before);
});

test("SET log_format is refused as restart-only (55P02): the output's format is chosen once, at start", async () => {
  const pb = await subprocess();
  const a = await connect(pb, { user: ADMIN, database: "pgbouncer", password: undefined });
  const err = await rejection(a.query("SET log_format = pretty"));
  expect(err.code).toBe("55P02");
  expect(err.message).toContain("log_format");
});
