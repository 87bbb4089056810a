// Backpressure: a client that does not read makes pgbun stop reading its server, so pgbun never holds a large result.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { usePostgres } from "../harness/fixtures.ts";
import { query, startupMessage } from "../../plugin-sdk/protocol/writer.ts";

let pgbun: TestPgbun;
usePostgres(
  async (pg) => {
    pgbun = await startPgbun({ pg, config: { pgbun: { pool_mode: "transaction", default_pool_size: 2, log_level: "warn" } } });
  },
  async () => {
    await pgbun?.stop();
  },
);

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

/** A raw client: counts bytes received and can stop reading its socket. */
async function rawClient(port: number) {
  let received = 0;
  let tail = Buffer.alloc(0);
  let onData: (() => void) | null = null;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        received += chunk.length;
        tail = Buffer.concat([tail, chunk]).subarray(-6);
        onData?.();
      },
    },
  });
  const endsWithReady = () => tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5;
  const untilReady = (ms: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ReadyForQuery after ${received} bytes`)), ms);
      onData = () => {
        if (endsWithReady()) {
          clearTimeout(timer);
          onData = null;
          resolve();
        }
      };
      onData();
    });
  const reset = () => {
    received = 0;
    tail = Buffer.alloc(0);
  };
  return { socket, untilReady, reset, get received() { return received; } };
}

test("a client that stops reading a 200 MB result does not make pgbun buffer it", async () => {
  const c = await rawClient(pgbun.port);
  c.socket.write(startupMessage({ user: "postgres", database: "app" }));
  await c.untilReady(10_000);
  const before = rssKb(pgbun.proc.pid);
  c.reset();
  c.socket.pause();
  // 200,000 rows of 1,000 bytes: about 205 MB on the wire
  c.socket.write(query("SELECT repeat('x', 1000) FROM generate_series(1, 200000)"));
  await Bun.sleep(3000);
  const during = rssKb(pgbun.proc.pid);
  const receivedWhilePaused = c.received;
  c.socket.resume();
  await c.untilReady(60_000);
  expect(c.received).toBeGreaterThan(200_000 * 1000);
  // what pgbun may hold is bounded by socket buffers and one read, far below the result's size
  expect(during - before).toBeLessThan(40 * 1024);
  expect(receivedWhilePaused).toBeLessThan(c.received);
  c.socket.end();
}, 90_000);

test("after the slow client, the server is clean for the next client", async () => {
  const c = await rawClient(pgbun.port);
  c.socket.write(startupMessage({ user: "postgres", database: "app" }));
  await c.untilReady(10_000);
  c.reset();
  c.socket.write(query("SELECT 1"));
  await c.untilReady(10_000);
  // RowDescription + DataRow + CommandComplete + ReadyForQuery of one small row, nothing left over
  expect(c.received).toBeLessThan(200);
  c.socket.end();
});

test("a client waiting for a server is read only up to a bound: what it sends meanwhile stays in the kernel", async () => {
  // both servers of the pool are held by open transactions, so the third client waits
  const holders = [await rawClient(pgbun.port), await rawClient(pgbun.port)];
  for (const h of holders) {
    h.socket.write(startupMessage({ user: "postgres", database: "app" }));
    await h.untilReady(10_000);
    h.reset();
    h.socket.write(query("BEGIN; SELECT 1"));
    await h.untilReady(10_000);
  }
  let accepted = 0;
  let pending = Buffer.alloc(0);
  let onData: ((chunk: Buffer) => void) | null = null;
  const waiter = await Bun.connect({
    hostname: "127.0.0.1",
    port: pgbun.port,
    socket: {
      data: (_s, chunk) => onData?.(Buffer.from(chunk)),
      drain: (s) => {
        const n = s.write(pending);
        if (n > 0) {
          accepted += n;
          pending = pending.subarray(n);
        }
      },
    },
  });
  let got = Buffer.alloc(0);
  onData = (chunk) => (got = Buffer.concat([got, chunk]));
  waiter.write(startupMessage({ user: "postgres", database: "app" }));
  while (!got.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) await Bun.sleep(20);
  got = Buffer.alloc(0);
  const before = rssKb(pgbun.proc.pid);
  // a small query makes the client wait; a 48 MB one follows it while no server is free (a message of a tapped
  // type is assembled whole before anyone decides: what is bounded is what arrives after the client waits)
  const big = Buffer.concat([query("SELECT 1"), query(`SELECT length('${"y".repeat(48 << 20)}')`)]);
  const n = waiter.write(big);
  accepted = Math.max(n, 0);
  pending = big.subarray(accepted);
  await Bun.sleep(2000);
  const acceptedWhileWaiting = accepted;
  const during = rssKb(pgbun.proc.pid);
  // the holders finish: the waiter gets a server, pgbun reads the rest, and the query runs whole
  for (const h of holders) {
    h.reset();
    h.socket.write(query("COMMIT"));
    await h.untilReady(10_000);
    h.socket.end();
  }
  const deadline = Date.now() + 60_000;
  while (!got.includes(String(48 << 20)) && Date.now() < deadline) await Bun.sleep(50);
  waiter.end();
  expect(acceptedWhileWaiting).toBeLessThan(24 << 20);
  expect(during - before).toBeLessThan(16 * 1024);
  expect(got.toString("latin1")).toContain(String(48 << 20));
}, 90_000);
