// Heap objects pgbun allocates per transaction, by pgbench protocol: the "allocate nothing per message" check.
// Usage: node_modules/.bin/bun bench/alloc.ts [--clients N (1)] [--pool-size N (20)] [--protocols simple,extended,prepared]
//   (starts its own PostgreSQL; pgbun runs in this process). More clients than the pool has servers: clients wait.
import { heapStats } from "bun:jsc";
import { startTestPooler } from "../bin/testing.ts";
import { startBenchPostgres, pgClientEnv, BENCH_DATABASE } from "./database.ts";
import { cleanupAll } from "./processes.ts";
import { flagValue } from "./args.ts";

const argv = process.argv.slice(2);
const CLIENTS = Number(flagValue(argv, "--clients") ?? 1);
const POOL_SIZE = Number(flagValue(argv, "--pool-size") ?? 20);
const PROTOCOLS = (flagValue(argv, "--protocols") ?? "simple,extended,prepared").split(",");
/**
 * Two run lengths, in transactions per client: their difference is the steady state, free of each run's connection
 * set-up. Shorter with many clients, so that no collection runs inside a run (it would show as negative counts).
 */
const SHORT = CLIENTS === 1 ? 150 : Math.max(10, Math.round(400 / CLIENTS));
const LONG = CLIENTS === 1 ? 300 : SHORT * 2.5;

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
  settings: { pool_mode: "transaction", log_level: "warn", default_pool_size: POOL_SIZE },
});

async function pgbench(protocol: string, transactions: number): Promise<void> {
  const args = ["-n", "-S", "-M", protocol, "-c", String(CLIENTS), "-j", CLIENTS > 1 ? "2" : "1", "-t", String(transactions), "-h", "127.0.0.1", "-p", String(pooler.port), "-U", db.pg.superuser];
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
  console.log(
    `objects allocated per transaction in steady state, ${CLIENTS} client(s) on a pool of ${POOL_SIZE} ((run of ${LONG} − run of ${SHORT} transactions per client) ÷ ${(LONG - SHORT) * CLIENTS})`,
  );
  for (const protocol of PROTOCOLS) {
    const short = await objectsPerRun(protocol, SHORT);
    const long = await objectsPerRun(protocol, LONG);
    const per = Object.keys(long)
      .map((type) => [type, ((long[type] ?? 0) - (short[type] ?? 0)) / ((LONG - SHORT) * CLIENTS)] as const)
      .filter(([, n]) => Math.abs(n) >= 0.05)
      .sort((a, b) => b[1] - a[1]);
    console.log(`-M ${protocol}: ${per.map(([t, n]) => `${t} ${n.toFixed(1)}`).join(", ") || "nothing"}`);
  }
  console.log("(each read of a socket makes one Uint8Array inside Bun: 2 per transaction are the runtime's own)");
} finally {
  await pooler.stop();
  await cleanupAll();
}
