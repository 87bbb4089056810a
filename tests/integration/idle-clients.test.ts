// Integration: idle clients (slots, shed framers/outbound queues, cancel keys of reused slots) against a real PostgreSQL.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { ClientConnection } from "../../core/client.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { keptIdleCount } from "../../core/net/spares.ts";
import { closeAfterEach, usePostgres, waitFor } from "../harness/fixtures.ts";
import { describe as show, errorFields, extendedQuery, loginApp, msg, only, readyStatus, rows, sendCancel, sqlState, type WireClient } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();

/** An in-process pgbun in transaction mode with a small pool (2 servers), stopped after the test. */
async function pooler(settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, max_client_conn: 200, ...settings },
  });
  return track(p, (p) => p.stop());
}

/** A wire client logged in to `app` through `p`, destroyed after the test. */
async function login(p: TestPooler): Promise<WireClient> {
  return track(await loginApp(p), (c) => c.destroy());
}

/** `n` wire clients logged in one after another (their slots in order), destroyed after the test. */
async function loginMany(p: TestPooler, n: number): Promise<WireClient[]> {
  const clients: WireClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await login(p));
  return clients;
}

/** The pooler's side of a wire client, found the way a CancelRequest finds it: by its key's pid. */
function coreClient(p: TestPooler, c: WireClient): ClientConnection {
  const pid = c.key!.pid;
  const client = p.core.cancel.find(pid);
  if (client === undefined) throw new Error(`no client with cancel pid ${pid}`);
  expect(client.cancelPid).toBe(pid);
  return client;
}

/** Whether the pooler's client currently holds a framer / an outbound queue (private fields, read for the test). */
function heldIO(client: ClientConnection): { framer: boolean; out: boolean } {
  const io = client as unknown as { _framer: unknown; _out: unknown };
  return { framer: io._framer !== null, out: io._out !== null };
}

/** The clients (by index) that hold a framer or an outbound queue though idle. */
function holdingIO(p: TestPooler, cs: WireClient[]): number[] {
  return cs.flatMap((c, i) => {
    const io = heldIO(coreClient(p, c));
    return io.framer || io.out ? [i] : [];
  });
}

/**
 * Waits for the janitor to take back the framers and outbound queues of clients that have sent nothing since
 * (core/janitor.ts IO_IDLE_MS after a client's last message: within three ticks, about 1 s).
 */
async function shed(p: TestPooler, cs: WireClient[]): Promise<void> {
  await waitFor("idle clients to give back their framers and outbound queues", () => holdingIO(p, cs).length === 0, 3_000);
}

describe("many idle clients", () => {
  test("50 clients log in and go idle holding no framer or outbound queue; queried again in other orders, each gets its own answers", async () => {
    const p = await pooler();
    const N = 50;
    const cs = await loginMany(p, N);

    // each has its own slot, hence its own cancel pid
    const pids = cs.map((c) => c.key!.pid);
    expect(new Set(pids).size).toBe(N);
    expect(p.core.clients.size).toBe(N);
    expect(new Set(cs.map((c) => coreClient(p, c).slot)).size).toBe(N);
    expect(holdingIO(p, cs)).toEqual([]);
    await Bun.sleep(300);

    // round 1: simple queries, sent by all in reverse order before any answer is read (48 wait for the 2 servers)
    for (let i = N - 1; i >= 0; i--) cs[i]!.send(msg.query(`SELECT ${i}, 'client-${i}'`));
    const round1 = await Promise.all(cs.map((c) => c.readUntilReady(20_000)));
    round1.forEach((got, i) => {
      expect({ i, got: show(got) }).toEqual({ i, got: `T D(["${i}","client-${i}"]) C(SELECT 1) Z(I)` });
    });
    await shed(p, cs);

    // round 2: a pipeline of two extended-protocol syncs and a simple query in one write each, in a shuffled order
    const order = Array.from({ length: N }, (_, k) => (k * 7) % N);
    expect(new Set(order).size).toBe(N);
    for (const i of order) {
      cs[i]!.send(
        Buffer.concat([
          extendedQuery("SELECT $1::int * 2", [String(i)]),
          extendedQuery("SELECT $1::text || '-second'", [`client-${i}`]),
          msg.query(`SELECT ${i} + 1000`),
        ]),
      );
    }
    const round2 = await Promise.all(cs.map((c) => c.readReadyN(3, 20_000)));
    round2.forEach((got, i) => {
      expect({ i, errors: only(got, "E").map((m) => errorFields(m)) }).toEqual({ i, errors: [] });
      expect({ i, rows: rows(got) }).toEqual({ i, rows: [[String(i * 2)], [`client-${i}-second`], [String(i + 1000)]] });
      expect(readyStatus(got[got.length - 1]!)).toBe("I");
    });
    await shed(p, cs);

    // round 3: one at a time in yet another order, each taking a spare framer/queue the ones before gave back
    for (let k = 0; k < N; k++) {
      const i = (k * 13 + 5) % N;
      const r = await cs[i]!.query(`SELECT 'again-${i}', ${i}`);
      expect({ i, rows: r.rows, errors: r.errors }).toEqual({ i, rows: [[`again-${i}`, String(i)]], errors: [] });
    }
    await shed(p, cs);
    expect(keptIdleCount()).toBe(0);
    // nothing arrived that was not asked for
    for (const c of cs) expect(c.pendingBytes).toBe(0);
    expect(p.core.clients.size).toBe(N);
  });

  test("a client that goes on sending keeps its own framer and queue from one transaction to the next; idle, it gives them back", async () => {
    const p = await pooler();
    const c = await login(p);
    const client = coreClient(p, c);
    // at login it gives them back at once (most clients of a big pool sit idle)
    expect(heldIO(client)).toEqual({ framer: false, out: false });
    expect((await c.query("SELECT 1")).rows).toEqual([["1"]]);
    const io = client as unknown as { _framer: unknown; _out: unknown };
    const framer = io._framer;
    const out = io._out;
    expect(framer).not.toBeNull();
    expect(out).not.toBeNull();
    // transaction after transaction, the same objects: none given back to the spares and taken again
    for (let i = 0; i < 5; i++) {
      expect((await c.query(`SELECT ${i}`)).rows).toEqual([[String(i)]]);
      expect({ i, framer: io._framer === framer, out: io._out === out }).toEqual({ i, framer: true, out: true });
    }
    // its server went back after each one all the same; it is the one idle client counted as keeping its set
    expect(client.server).toBeNull();
    expect(keptIdleCount()).toBe(1);
    await shed(p, [c]);
    expect(keptIdleCount()).toBe(0);
    expect((await c.query("SELECT 'after the shed'")).rows).toEqual([["after the shed"]]);
    // one that leaves while keeping its set is counted out too
    expect(keptIdleCount()).toBe(1);
    await c.close();
    await waitFor("the client to be gone", () => p.core.clients.size === 0);
    expect(keptIdleCount()).toBe(0);
  });

  test("idle clients keep their own session parameters after their lists were shared at login", async () => {
    const p = await pooler();
    // three clients of one "application" (same startup parameters, shared after login) and one different
    const same = [];
    for (let i = 0; i < 3; i++) same.push(track(await loginApp(p, { application_name: "idle-app", DateStyle: "ISO, DMY" }), (c) => c.destroy()));
    const other = track(await loginApp(p, { application_name: "other-app" }), (c) => c.destroy());
    // one of them changes its own setting; the others, sharing its startup lists, must not see it
    expect((await same[0]!.query("SET DateStyle = 'German'")).errors).toEqual([]);
    expect(same[0]!.params.get("DateStyle")).toBe("German, DMY");
    for (const [i, c] of same.entries()) {
      const r = await c.query("SELECT current_setting('DateStyle'), current_setting('application_name')");
      expect({ i, rows: r.rows }).toEqual({ i, rows: [[i === 0 ? "German, DMY" : "ISO, DMY", "idle-app"]] });
    }
    const r = await other.query("SELECT current_setting('application_name')");
    expect(r.rows).toEqual([["other-app"]]);
    // and RESET brings the first back to its startup value, not to another client's
    expect((await same[0]!.query("RESET DateStyle")).errors).toEqual([]);
    expect((await same[0]!.query("SELECT current_setting('DateStyle')")).rows).toEqual([["ISO, DMY"]]);
  });
});

describe("cancel keys of clients in reused slots", () => {
  test("a CancelRequest with an idle-then-busy client's BackendKeyData cancels its pg_sleep(10) with 57014 within 3 s", async () => {
    const p = await pooler();
    const others = await loginMany(p, 5);
    const c = await login(p);
    expect(heldIO(coreClient(p, c))).toEqual({ framer: false, out: false });
    c.send(msg.query("SELECT pg_sleep(10)"));
    await Bun.sleep(300);
    const t0 = Date.now();
    await sendCancel(p.host, p.port, c.key!.pid, c.key!.secret);
    const got = await c.readUntilReady(8_000);
    const elapsed = Date.now() - t0;
    const errors = only(got, "E");
    expect(errors.map((m) => sqlState(m))).toEqual(["57014"]);
    expect(elapsed).toBeLessThan(3_000);
    expect(readyStatus(got[got.length - 1]!)).toBe("I");
    // the session goes on, and the idle bystanders were not touched
    expect((await c.query("SELECT 'after cancel'")).rows).toEqual([["after cancel"]]);
    for (const [i, o] of others.entries()) expect((await o.query(`SELECT ${i}`)).rows).toEqual([[String(i)]]);
  });

  test("a new client in a departed client's slot gets a new pid; the old pid+secret does not cancel it, its own key does", async () => {
    const p = await pooler();
    const keep = await login(p); // keeps the list from emptying when `a` leaves
    const a = await login(p);
    const old = { pid: a.key!.pid, secret: Buffer.from(a.key!.secret) };
    const slot = coreClient(p, a).slot;
    await a.close();
    await waitFor("a's slot to be freed", () => p.core.clients.at(slot) === undefined);

    // the old key while nobody holds its slot: ignored, and pgbun carries on
    await sendCancel(p.host, p.port, old.pid, old.secret);

    const b = await login(p);
    expect(b.key!.pid).not.toBe(old.pid); // the slot is reused, the pid is drawn afresh
    expect(coreClient(p, b).slot).toBe(slot);
    expect(b.key!.secret.equals(old.secret)).toBe(false);

    b.send(msg.query("SELECT pg_sleep(2), 'b done'"));
    await Bun.sleep(300);
    await sendCancel(p.host, p.port, old.pid, old.secret);
    const got = await b.readUntilReady(8_000);
    expect(only(got, "E").map((m) => errorFields(m))).toEqual([]);
    expect(rows(got)).toEqual([["", "b done"]]);

    // b's own key does reach b
    b.send(msg.query("SELECT pg_sleep(10)"));
    await Bun.sleep(300);
    const t0 = Date.now();
    await sendCancel(p.host, p.port, b.key!.pid, b.key!.secret);
    const canceled = await b.readUntilReady(8_000);
    expect(only(canceled, "E").map((m) => sqlState(m))).toEqual(["57014"]);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect((await keep.query("SELECT 'keep ok'")).rows).toEqual([["keep ok"]]);
  });
});

describe("a client idle halfway through a message", () => {
  test("half a Query (split in the header, then in the body), a 1 s pause while others run, then the rest: answered", async () => {
    const p = await pooler();
    const others = await loginMany(p, 4);
    const c = await login(p);
    const q = msg.query("SELECT 'sent in two halves'");
    for (const split of [3, Math.floor(q.length / 2)]) {
      c.send(q.subarray(0, split));
      await Bun.sleep(200);
      // it keeps the framer holding the half-read message while idle (nobody else may be handed it)
      expect({ split, framer: heldIO(coreClient(p, c)).framer }).toEqual({ split, framer: true });
      // meanwhile other clients take spare framers and queues, and give them back
      for (const [i, o] of others.entries()) expect((await o.query(`SELECT ${i}, 'other'`)).rows).toEqual([[String(i), "other"]]);
      await shed(p, others);
      // the half-read message is still there after the janitor's ticks: c's framer was not taken back
      expect({ split, framer: heldIO(coreClient(p, c)).framer }).toEqual({ split, framer: true });
      c.send(q.subarray(split));
      const got = await c.readUntilReady(5_000);
      expect({ split, got: show(got) }).toEqual({ split, got: 'T D(["sent in two halves"]) C(SELECT 1) Z(I)' });
      await shed(p, [c]);
    }
  });

  test("an extended-protocol pipeline stopped halfway through Bind for 1 s, then finished: answered", async () => {
    const p = await pooler();
    const other = await login(p);
    const c = await login(p);
    const all = extendedQuery("SELECT $1::text || '-done'", ["halfway"]);
    const bindAt = all.indexOf(msg.bind("", "", ["halfway"]));
    expect(bindAt).toBeGreaterThan(0);
    const split = bindAt + 8;
    c.send(all.subarray(0, split));
    await Bun.sleep(200);
    expect((await other.query("SELECT 'other ok'")).rows).toEqual([["other ok"]]);
    await Bun.sleep(800);
    c.send(all.subarray(split));
    const got = await c.readUntilReady(5_000);
    expect(only(got, "E").map((m) => errorFields(m))).toEqual([]);
    expect(rows(got)).toEqual([["halfway-done"]]);
    await shed(p, [c]);
    expect((await c.query("SELECT 'next'")).rows).toEqual([["next"]]);
  });

  test("inside a transaction: half a Query, a 1 s pause, the rest; the transaction goes on", async () => {
    const p = await pooler();
    const c = await login(p);
    expect((await c.query("BEGIN")).status).toBe("T");
    const q = msg.query("SELECT 'in tx'");
    const split = Math.floor(q.length / 2);
    c.send(q.subarray(0, split));
    await Bun.sleep(1_000);
    c.send(q.subarray(split));
    const got = await c.readUntilReady(5_000);
    expect(show(got)).toBe('T D(["in tx"]) C(SELECT 1) Z(T)');
    expect((await c.query("COMMIT")).status).toBe("I");
    await shed(p, [c]);
  });
});
