// Heap objects pgbun allocates per transaction, by pgbench protocol: the "allocate nothing per message" check.
// Usage: node_modules/.bin/bun bench/alloc.ts  (starts its own PostgreSQL; pgbun runs in this process)
import { heapStats } from "bun:jsc";
import { startTestPooler } from "../bin/testing.ts";
import { startBenchPostgres, pgClientEnv, BENCH_DATABASE } from "./database.ts";
import { cleanupAll } from "./processes.ts";

const PROTOCOLS = ["simple", "extended", "prepared"] as const;
/** Two run lengths: their difference is the steady state, free of each run's connection set-up. */
const SHORT = 150;
const LONG = 300;

type Counts = Record<string, number>;

function counts(): Counts {
  return { ...heapStats().objectTypeCounts } as Counts;
}

/**
 * Objects made between `before` and now. JSC counts live objects: nothing is collected between the two reads
 * unless a collection happens, which runs this short are meant to avoid (a negative count shows one did).
 */
function made(before: Counts, after: Counts): Counts {
  const out: Counts = {};
  for (const [type, n] of Object.entries(after)) out[type] = n - (before[type] ?? 0);
  return out;
}

const db = await startBenchPostgres({ maxConnections: 100, scale: 1 });
const pooler = await startTestPooler({
  upstream: { host: db.pg.host, port: db.pg.port, user: db.pg.superuser, password: db.pg.password },
  settings: { pool_mode: "transaction", log_level: "warn" },
});

async function pgbench(protocol: string, transactions: number): Promise<void> {
  const args = ["-n", "-S", "-M", protocol, "-c", "1", "-t", String(transactions), "-h", "127.0.0.1", "-p", String(pooler.port), "-U", db.pg.superuser];
  const proc = Bun.spawn([db.pgbench, ...args, BENCH_DATABASE], { env: pgClientEnv(), stdout: "ignore", stderr: "pipe" });
  if ((await proc.exited) !== 0) throw new Error(`pgbench ${args.join(" ")} failed: ${await new Response(proc.stderr).text()}`);
}

async function objectsPerRun(protocol: string, transactions: number): Promise<Counts> {
  await pgbench(protocol, 500); // warm: code compiled, pools and statements in place
  Bun.gc(true);
  const before = counts();
  await pgbench(protocol, transactions);
  return made(before, counts());
}

try {
  console.log(`objects allocated per transaction in steady state ((run of ${LONG} − run of ${SHORT}) ÷ ${LONG - SHORT})`);
  for (const protocol of PROTOCOLS) {
    const short = await objectsPerRun(protocol, SHORT);
    const long = await objectsPerRun(protocol, LONG);
    const per = Object.keys(long)
      .map((type) => [type, ((long[type] ?? 0) - (short[type] ?? 0)) / (LONG - SHORT)] as const)
      .filter(([, n]) => Math.abs(n) >= 0.05)
      .sort((a, b) => b[1] - a[1]);
    console.log(`-M ${protocol}: ${per.map(([t, n]) => `${t} ${n.toFixed(1)}`).join(", ") || "nothing"}`);
  }
  console.log("(each read of a socket makes one Uint8Array inside Bun: 2 per transaction are the runtime's own)");
} finally {
  await pooler.stop();
  await cleanupAll();
}
