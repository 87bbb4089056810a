// What pgbun relies on in Bun's socket reads: each data event's buffer is the handler's own, sized to the read.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { TCPSocketListener } from "bun";
import { makeTestCerts } from "../harness/tls.ts";

// core/pgbun.ts feeds a client's reads, plain or TLS (its handlers serve both), as owned (Framer.feed): a waiting
// client's read is held without a copy. That is right only while Bun never writes into a buffer it handed to a data
// handler, and the buffer is no larger than the read (a held view of a bigger one would keep the rest alive). A Bun
// upgrade that changes either fails here.

const listeners: TCPSocketListener<undefined>[] = [];
afterAll(() => {
  for (const l of listeners) l.stop(true);
});

const ROUNDS = 200;
const SIZE = 300;

/** Sends ROUNDS writes of SIZE bytes (round i all bytes i), each waited for, and returns the reads as handed over. */
async function readsOf(tls: { key: string; cert: string } | null): Promise<Uint8Array[]> {
  const kept: Uint8Array[] = [];
  let got = 0;
  const done = Promise.withResolvers<void>();
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls ? { tls } : {}),
    socket: {
      data(_s, chunk) {
        kept.push(chunk);
        got += chunk.length;
        if (got >= ROUNDS * SIZE) done.resolve();
      },
    },
  });
  listeners.push(listener);
  const opened = Promise.withResolvers<void>();
  const client = await Bun.connect<undefined>({
    hostname: "127.0.0.1",
    port: listener.port,
    ...(tls ? { tls: { rejectUnauthorized: false } } : {}),
    // a TLS socket takes writes once its handshake is done, not at open
    socket: tls ? { data() {}, handshake: () => opened.resolve() } : { data() {}, open: () => opened.resolve() },
  });
  await opened.promise;
  // one write per round, each waited for, so that most arrive as reads of their own
  for (let i = 0; i < ROUNDS; i++) {
    expect(client.write(new Uint8Array(SIZE).fill(i & 0xff))).toBe(SIZE);
    await Bun.sleep(1);
  }
  await done.promise;
  client.end();
  return kept;
}

function expectOwnReads(kept: Uint8Array[]): void {
  // the bytes as sent, in order, whatever the reads' boundaries: no kept buffer was written to again
  const all = Buffer.concat(kept);
  expect(all.length).toBe(ROUNDS * SIZE);
  for (let i = 0; i < ROUNDS; i++) expect(all.subarray(i * SIZE, (i + 1) * SIZE).every((b) => b === (i & 0xff))).toBe(true);
  // and no read is a view of a larger (shared or reused) buffer
  for (const k of kept) {
    expect(k.byteOffset).toBe(0);
    expect(k.buffer.byteLength).toBe(k.length);
  }
  expect(new Set(kept.map((k) => k.buffer)).size).toBe(kept.length);
  expect(kept.length).toBeGreaterThan(ROUNDS / 2); // most rounds were reads of their own (else this proves little)
}

describe("each data event's buffer is its own: reads kept across later reads stay intact, each exactly its bytes", () => {
  test("plain TCP", async () => {
    expectOwnReads(await readsOf(null));
  });

  test("TLS", async () => {
    const certs = await makeTestCerts("bun-reads");
    expectOwnReads(await readsOf({ key: readFileSync(certs.serverKey, "utf8"), cert: readFileSync(certs.serverCert, "utf8") }));
  });
});
