// workers = 2: processes share the port, and a CancelRequest reaches the query whichever worker accepts it.
import { expect, setDefaultTimeout, test } from "bun:test";
import { Client } from "pg";
import { usePostgres } from "../harness/fixtures.ts";
import { startPgbun } from "../harness/pgbun.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();

test("with two workers every cancel stops its own query, and both workers serve clients", async () => {
  const p = await startPgbun({ pg, config: { pgbun: { pool_mode: "transaction", workers: 2, default_pool_size: 4, log_level: "info" } } });
  try {
    const results: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = new Client({ connectionString: p.url() });
      c.on("error", () => {});
      await c.connect();
      const t0 = Date.now();
      const running = c.query("SELECT pg_sleep(5)").then(
        () => "finished",
        (e: { code?: string }) => e.code ?? "error",
      );
      await Bun.sleep(300);
      // node-postgres sends the CancelRequest on a new connection, which the kernel gives to either worker
      (new Client({ connectionString: p.url() }) as unknown as { cancel(c: Client, q: unknown): void }).cancel(c, (c as any).activeQuery);
      const outcome = await running;
      results.push(outcome === "57014" && Date.now() - t0 < 3_000 ? "canceled" : outcome);
      // the same client goes on, on whichever server it gets next
      expect((await c.query("SELECT 7 AS v")).rows[0].v).toBe(7);
      await c.end();
    }
    expect(results).toEqual(Array(8).fill("canceled"));
    const logs = p.logs();
    expect(logs).toContain('"worker":0');
    expect(logs).toContain('"worker":1');
  } finally {
    await p.stop();
  }
});
