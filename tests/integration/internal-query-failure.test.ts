// Integration: a server that dies while pgbun runs one of its own internal queries for a linked client (here the
// session-state check a pinned client gets after each transaction, held up by a lock) ends that client with
// PostgreSQL's own FATAL ErrorResponse, or pgbun's 08006 when the server just vanished: never a bare EOF.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { backendPid, pgConnect, tx, usePostgres, waitFor, withPgbun } from "../harness/fixtures.ts";
import { errorFields, only, type WireClient } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(60_000);

const pg = usePostgres();

/**
 * Pins `c` (an advisory lock), then holds an exclusive lock on pg_cursors from a direct connection, which the
 * state check reads: `c`'s next query is answered, and the check pgbun runs after it waits on that lock.
 * Returns the lock holder (the caller ends it) once `c`'s server is seen waiting.
 */
async function stallStateCheck(c: WireClient, pid: string): Promise<Client> {
  expect((await c.query("SELECT pg_advisory_lock(7)")).errors).toEqual([]);
  const holder = await pgConnect(pg);
  await holder.query("BEGIN");
  await holder.query("LOCK TABLE pg_catalog.pg_cursors IN ACCESS EXCLUSIVE MODE");
  const r = await c.query("SELECT 'answered before the check'");
  expect(r.errors).toEqual([]);
  expect(r.rows).toEqual([["answered before the check"]]);
  await waitFor(
    "the state check to wait on the lock",
    async () => (await pg.psql(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = ${pid}`)) === "Lock",
  );
  return holder;
}

describe("the server dies during an internal query run for a linked client", () => {
  test("pg_terminate_backend: the client gets PostgreSQL's own 57P01 FATAL, then the connection closes", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const c = await f.login();
      const pid = await backendPid(c);
      const holder = await stallStateCheck(c, pid);
      try {
        expect(await pg.psql(`SELECT pg_terminate_backend(${pid})`)).toBe("t");
        const { messages, closed } = await c.readUntilClosed(5_000);
        const errors = only(messages, "E").map(errorFields);
        expect(errors.map((e) => [e.S, e.C, e.M])).toEqual([["FATAL", "57P01", "terminating connection due to administrator command"]]);
        expect(closed).toBe(true);
      } finally {
        await holder.end();
      }
      // the pool goes on with a fresh server
      const next = await f.login();
      expect(await backendPid(next)).not.toBe(pid);
    });
  });

  test("PostgreSQL stops at once (the server vanishes): the client gets pgbun's 08006 FATAL, then the connection closes", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const c = await f.login();
      const pid = await backendPid(c);
      const holder = await stallStateCheck(c, pid);
      try {
        await pg.stopServer();
        const { messages, closed } = await c.readUntilClosed(5_000);
        const errors = only(messages, "E").map(errorFields);
        expect(errors.map((e) => [e.S, e.C])).toEqual([["FATAL", "08006"]]);
        expect(closed).toBe(true);
      } finally {
        await holder.end().catch(() => undefined);
        await pg.startServer();
      }
    });
  });
});
