// Backpressure: a client that does not read makes pgbun stop reading its server, so pgbun never holds a large result.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { usePostgres } from "../harness/fixtures.ts";
import { query, startupMessage } from "../../core/protocol/writer.ts";

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
