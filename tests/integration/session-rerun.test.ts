// Integration: a statement whose text was seen at Parse pins again at each later Bind of it (issue 9 item 5):
// postgres.js runs its cached `listen "ch"` again after an unlisten without sending the text, and so may any raw
// protocol client re-binding a named or the unnamed statement. The client must be pinned again: notifications
// sent while it sits idle between transactions arrive, and another client never gets its LISTENing server.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { pgConnect, tx, usePostgres, waitFor, withPgbun } from "../harness/fixtures.ts";
import { errorFields, msg, type BackendMessage, type WireClient } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(60_000);

const pg = usePostgres();

/** Waits a moment so that what PostgreSQL sends after a NOTIFY has time to arrive (or to be lost). */
const settle = () => Bun.sleep(300);

/** The payloads of the NotificationResponses among `messages` for `channel`. */
function payloads(messages: BackendMessage[], channel: string): string[] {
  const out: string[] = [];
  for (const m of messages) {
    if (m.type !== "A") continue;
    const a = m.body.indexOf(0, 4);
    const b = m.body.indexOf(0, a + 1);
    if (m.body.subarray(4, a).toString() === channel) out.push(m.body.subarray(a + 1, b).toString());
  }
  return out;
}

/** The channels the server another client lands on listens to (it must never be a LISTENing client's server). */
async function channelsSeenByAnother(url: string): Promise<string[]> {
  const other = postgres(url, { max: 1, prepare: false, onnotice: () => undefined, connect_timeout: 10 });
  try {
    const r = await other`select coalesce(string_agg(c, ','), '') as c from pg_listening_channels() c`;
    return r[0]!.c === "" ? [] : String(r[0]!.c).split(",");
  } finally {
    await other.end({ timeout: 1 });
  }
}

describe("postgres.js in transaction mode: listen, unlisten, listen again (the cached statement runs without its text)", () => {
  test("sql.listen / unlisten / listen: the notifications sent while listening arrive ('ac'), and no other client gets the LISTENing server", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const url = f.pb.url();
      const sql = postgres(url, { max: 1, prepare: true, onnotice: () => undefined, connect_timeout: 10 });
      try {
        const got: string[] = [];
        const first = await sql.listen("rerun_ch", (x) => got.push(x));
        await pg.psql("NOTIFY rerun_ch, 'a'", "app");
        await waitFor("notification a", () => got.length === 1);
        await first.unlisten();
        await pg.psql("NOTIFY rerun_ch, 'b'", "app");
        await settle();
        // the second listen is postgres.js's cached statement: Bind/Execute only
        await sql.listen("rerun_ch", (x) => got.push(x));
        await settle();
        expect(await channelsSeenByAnother(url)).toEqual([]);
        await pg.psql("NOTIFY rerun_ch, 'c'", "app");
        await waitFor("notification c", () => got.length >= 2).catch(() => undefined);
        expect(got.join("")).toBe("ac");
      } finally {
        await sql.end({ timeout: 1 });
      }
    });
  });

  test("sql`listen ch` on an ordinary connection, unlisten, listen again: every notification sent while listening arrives", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const url = f.pb.url();
      const got: string[] = [];
      const sql = postgres(url, {
        max: 1,
        prepare: true,
        onnotice: () => undefined,
        onnotify: (channel: string, payload: string) => channel === "plain_ch" && got.push(payload),
        connect_timeout: 10,
      } as postgres.Options<{}>);
      try {
        await sql`listen plain_ch`;
        await pg.psql("NOTIFY plain_ch, '1'", "app");
        await waitFor("notification 1", () => got.length === 1);
        await sql`unlisten plain_ch`;
        await pg.psql("NOTIFY plain_ch, '2'", "app");
        await settle();
        await sql`listen plain_ch`;
        await settle();
        expect(await channelsSeenByAnother(url)).toEqual([]);
        await pg.psql("NOTIFY plain_ch, '3'", "app");
        await waitFor("notification 3", () => got.length >= 2).catch(() => undefined);
        expect(got).toEqual(["1", "3"]);
      } finally {
        await sql.end({ timeout: 1 });
      }
    });
  });
});

describe("raw protocol: Parse once, Bind/Execute/Sync the same statement again after UNLISTEN", () => {
  /** Bind/Execute/Sync of `statement`, which must succeed and leave no transaction open. */
  async function run(c: WireClient, statement: string): Promise<void> {
    c.send(Buffer.concat([msg.bind("", statement), msg.execute(), msg.sync()]));
    const got = await c.readUntilReady();
    expect(got.filter((m) => m.type === "E")).toEqual([]);
    expect(got[got.length - 1]!.body[0]).toBe("I".charCodeAt(0));
  }

  test('named statement: the second LISTEN pins again (the NOTIFY sent while the client is idle arrives; another client gets the other server)', async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      a.send(msg.parse("listen_again", "LISTEN raw_ch"));
      await run(a, "listen_again");
      expect((await a.query("UNLISTEN raw_ch")).errors).toEqual([]);
      // unpinned now: A's server may go to anyone; the statement is bound again without its text
      await run(a, "listen_again");
      const pidA = (await a.query("SELECT pg_backend_pid()")).rows[0]![0]!;
      for (let round = 0; round < 3; round++) {
        const other = await b.query("SELECT pg_backend_pid(), (SELECT count(*) FROM pg_listening_channels())");
        expect(other.rows.length).toBe(1);
        expect(other.rows[0]![0]).not.toBe(pidA);
        expect(other.rows[0]![1]).toBe("0");
      }
      await pg.psql("NOTIFY raw_ch, 'again'", "app");
      expect(payloads(await a.readFor(1_000), "raw_ch")).toEqual(["again"]);
    });
  });

  test("the unnamed statement does not outlive pgbun's state check (a simple Query drops it): re-binding it after a checked transaction fails with 26000, never LISTENs unseen", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      a.send(msg.parse("", "LISTEN unnamed_ch"));
      await run(a, "");
      // UNLISTEN as a named statement: the client itself sends no simple Query
      a.send(msg.parse("u", "UNLISTEN unnamed_ch"));
      await run(a, "u");
      a.send(Buffer.concat([msg.bind("", ""), msg.execute(), msg.sync()]));
      const got = await a.readUntilReady();
      expect(got.filter((m) => m.type === "E").map((m) => errorFields(m).C)).toEqual(["26000"]);
      expect((await a.query("SELECT count(*) FROM pg_listening_channels()")).rows).toEqual([["0"]]);
    });
  });

  test("node-postgres B never lands on the server of a client whose re-bound statement LISTENs (pool size 1: B waits)", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      a.send(msg.parse("l", "LISTEN one_ch"));
      await run(a, "l");
      expect((await a.query("UNLISTEN one_ch")).errors).toEqual([]);
      await run(a, "l");
      const b = await pgConnect(f.pb);
      try {
        const answer = b.query("SELECT count(*)::int AS n FROM pg_listening_channels()").then((r) => r.rows[0].n as number);
        const early = await Promise.race([answer, Bun.sleep(800).then(() => "waiting" as const)]);
        expect(early).toBe("waiting");
        expect((await a.query("UNLISTEN one_ch")).errors).toEqual([]);
        expect(await answer).toBe(0);
      } finally {
        await b.end().catch(() => undefined);
      }
    });
  });
});
