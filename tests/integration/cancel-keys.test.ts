// Integration: pooler-issued cancel keys carry 64 random bits (pid and secret), so neither half can be guessed.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { ClientConnection } from "../../core/client.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { closeAfterEach, usePostgres, waitFor } from "../harness/fixtures.ts";
import { errorFields, loginApp, msg, only, rows, sendCancel, sqlState, type WireClient } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();

async function pooler(): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, max_client_conn: 200 },
  });
  return track(p, (p) => p.stop());
}

async function login(p: TestPooler): Promise<WireClient> {
  return track(await loginApp(p), (c) => c.destroy());
}

/** The pooler's side of a wire client, by its key's pid (searched, so the test does not assume how keys map). */
function coreClient(p: TestPooler, c: WireClient): ClientConnection {
  for (const client of p.core.clients) if (client.cancelPid === c.key!.pid) return client;
  throw new Error(`no client with cancel pid ${c.key!.pid}`);
}

describe("cancel key randomness", () => {
  test("reconnects into the same slot get a different pid each time, and a departed key cancels nothing", async () => {
    const p = await pooler();
    const keep = await login(p); // keeps the list from emptying, so the next client reuses the freed slot
    const seen = new Set<number>();
    let slot = -1;
    let last: { pid: number; secret: Buffer } | null = null;
    for (let i = 0; i < 6; i++) {
      const c = await login(p);
      const s = coreClient(p, c).slot;
      if (slot === -1) slot = s;
      expect(s).toBe(slot);
      seen.add(c.key!.pid);
      last = { pid: c.key!.pid, secret: Buffer.from(c.key!.secret) };
      await c.close();
      await waitFor("the slot to be freed", () => p.core.clients.at(slot) === undefined);
    }
    expect(seen.size).toBe(6);

    // the last departed key while its slot is taken by someone new: not theirs
    const next = await login(p);
    expect(coreClient(p, next).slot).toBe(slot);
    next.send(msg.query("SELECT pg_sleep(1.5), 'next done'"));
    await Bun.sleep(300);
    await sendCancel(p.host, p.port, last!.pid, last!.secret);
    const got = await next.readUntilReady(8_000);
    expect(only(got, "E").map((m) => errorFields(m))).toEqual([]);
    expect(rows(got)).toEqual([["", "next done"]]);
    expect((await keep.query("SELECT 'keep ok'")).rows).toEqual([["keep ok"]]);
  });

  test("the pids of 24 clients are spread over the whole 32 bits, not packed near small slot numbers", async () => {
    const p = await pooler();
    const pids: number[] = [];
    for (let i = 0; i < 24; i++) pids.push((await login(p)).key!.pid);
    expect(new Set(pids).size).toBe(24);
    // random 32-bit pids: all 24 below 2^24 has probability 2^-192; their top 8 bits repeat one value ~never
    expect(pids.some((pid) => pid >>> 0 >= 2 ** 24)).toBe(true);
    expect(new Set(pids.map((pid) => pid >>> 24)).size).toBeGreaterThan(1);
  });
});

describe("the key index", () => {
  test("holds live keys only: a departed client's pid is gone from it, and it is dropped once the last client leaves", async () => {
    const p = await pooler();
    const index = () => (p.core.cancel as unknown as { index: Int32Array }).index;
    const a = await login(p);
    const b = await login(p);
    const aPid = a.key!.pid;
    expect(p.core.cancel.find(aPid)).toBe(coreClient(p, a));
    await a.close();
    await waitFor("a to be gone", () => p.core.clients.size === 1);
    expect(p.core.cancel.find(aPid)).toBeUndefined();
    expect(index().length).toBeGreaterThan(0);
    await b.close();
    await waitFor("b to be gone", () => p.core.clients.size === 0);
    expect(index().length).toBe(0);
  });
});

describe("a right pid with a wrong secret", () => {
  test("cancels nothing, whichever bit of the secret is wrong; the right secret then cancels with 57014", async () => {
    const p = await pooler();
    const c = await login(p);
    const { pid, secret } = c.key!;
    c.send(msg.query("SELECT pg_sleep(1.5), 'still ran'"));
    await Bun.sleep(300);
    for (const bit of [0, 7, 8, 15, 16, 23, 24, 31]) {
      const wrong = Buffer.from(secret);
      wrong[3 - (bit >> 3)]! ^= 1 << (bit & 7);
      await sendCancel(p.host, p.port, pid, wrong);
    }
    await sendCancel(p.host, p.port, pid, Buffer.alloc(4)); // secret 0: what an unkeyed client holds
    const got = await c.readUntilReady(8_000);
    expect(only(got, "E").map((m) => errorFields(m))).toEqual([]);
    expect(rows(got)).toEqual([["", "still ran"]]);

    c.send(msg.query("SELECT pg_sleep(10)"));
    await Bun.sleep(300);
    const t0 = Date.now();
    await sendCancel(p.host, p.port, pid, secret);
    const canceled = await c.readUntilReady(8_000);
    expect(only(canceled, "E").map((m) => sqlState(m))).toEqual(["57014"]);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
