// bench/minipool.ts, the benchmark's least-pooler reference: its clients get their own rows through a pool smaller than they are.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { startBenchPostgres, type BenchPostgres, BENCH_DATABASE } from "./database.ts";
import { startMinipool, type PassthroughInstance } from "./passthrough-process.ts";
import { runTransactions } from "./pgbench.ts";
import { cleanupAll } from "./processes.ts";

let db: BenchPostgres;
let pool: PassthroughInstance;

beforeAll(async () => {
  db = await startBenchPostgres({ maxConnections: 50, scale: 1 });
  pool = await startMinipool(db.pg, 2);
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

test("pgbench -S runs through it at -M simple and extended with 10 clients on 2 servers, none failing", async () => {
  for (const protocol of ["simple", "extended"] as const) {
    const run = await runTransactions(db, pool.port, protocol, 10, 2_000);
    expect(run.transactions).toBe(2_000);
  }
}, 60_000);

test("each client gets its own answers while the two servers are handed from client to client per transaction", async () => {
  const sql = postgres({ host: pool.host, port: pool.port, user: db.pg.superuser, database: BENCH_DATABASE, max: 8, prepare: false });
  try {
    const answers = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const [row] = await sql.unsafe(`SELECT ${i}::int AS n, pg_backend_pid() AS pid`);
        return row as unknown as { n: number; pid: number };
      }),
    );
    expect(answers.map((a) => a.n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // eight connections of the driver shared two servers
    expect(new Set(answers.map((a) => a.pid)).size).toBeLessThanOrEqual(2);
    // a transaction keeps its server to its end
    const pids = await sql.begin(async (tx) => {
      const [a] = await tx.unsafe("SELECT pg_backend_pid() AS pid");
      await tx.unsafe("SELECT pg_sleep(0.05)");
      const [b] = await tx.unsafe("SELECT pg_backend_pid() AS pid");
      return [a!.pid, b!.pid];
    });
    expect(pids[0]).toBe(pids[1]);
  } finally {
    await sql.end({ timeout: 5 });
  }
}, 60_000);
