// Integration: asynchronous messages reach their client through pgbun whatever pgbun is doing on its server:
// NotificationResponses arriving during pgbun's own internal queries (the pinned client's state check after every
// transaction, parameter sync at link) and between transactions, in order; ParameterStatus as PostgreSQL reports
// the client's values; notices raised by pgbun's own internal queries stay pgbun's.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { pgConnect, pluginTestKit, tx, usePostgres, withPgbun, writePlugin, type Endpoint } from "../harness/fixtures.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { errorFields, loginApp, parameterStatus, type BackendMessage, type WireClient } from "../harness/wire.ts";

// generous per-test and per-hook limit for loaded machines (bun test alone defaults to 5 s)
setDefaultTimeout(60_000);

const pg = usePostgres();
const kit = pluginTestKit(pg);

const NOTIFIES = 300;

/** channel and payload of a NotificationResponse. */
function notification(m: BackendMessage): { channel: string; payload: string } {
  const a = m.body.indexOf(0, 4);
  const b = m.body.indexOf(0, a + 1);
  return { channel: m.body.subarray(4, a).toString(), payload: m.body.subarray(a + 1, b).toString() };
}

/** The payloads of the NotificationResponses among `messages`, for `channel`. */
function payloads(messages: BackendMessage[], channel: string): string[] {
  return messages.filter((m) => m.type === "A").map(notification).filter((n) => n.channel === channel).map((n) => n.payload);
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => String(i));

/**
 * The scenario: L (node-postgres) listens on `channel` and runs `select 1` in a loop while another
 * connection (through `notifier`) sends NOTIFIES notifications, one per transaction; returns the payloads L
 * received, in order, once all arrived or 10 s after the last was sent.
 */
async function listenWhileBusy(through: Endpoint, notifier: Endpoint, channel: string): Promise<string[]> {
  const l = await pgConnect(through);
  const n = await pgConnect(notifier);
  try {
    const got: string[] = [];
    l.on("notification", (m) => {
      if (m.channel === channel) got.push(m.payload ?? "");
    });
    await l.query(`LISTEN ${channel}`);
    let sending = true;
    const sender = (async () => {
      try {
        for (let i = 0; i < NOTIFIES; i++) await n.query(`NOTIFY ${channel}, '${i}'`);
      } finally {
        sending = false;
      }
    })();
    let deadline = Infinity;
    while (got.length < NOTIFIES && Date.now() < deadline) {
      await l.query("SELECT 1");
      if (!sending && deadline === Infinity) deadline = Date.now() + 10_000;
    }
    await sender;
    // whatever is still on its way
    await Bun.sleep(200);
    return got;
  } finally {
    await l.end();
    await n.end();
  }
}

describe("NOTIFY reaches a LISTENing client that keeps running short queries", () => {
  test(`transaction mode, pool size 2: all ${NOTIFIES} notifications arrive, in order (NOTIFY sent directly)`, async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      expect(await listenWhileBusy(f.pb, pg, "busy_tx")).toEqual(expected(NOTIFIES));
    });
  });

  test(`transaction mode, pool size 2: all ${NOTIFIES} arrive in order when the notifier goes through pgbun too`, async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      expect(await listenWhileBusy(f.pb, f.pb, "busy_tx_both")).toEqual(expected(NOTIFIES));
    });
  });

  test(`session mode: all ${NOTIFIES} notifications arrive, in order`, async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "session", default_pool_size: 2 } }, async (f) => {
      expect(await listenWhileBusy(f.pb, pg, "busy_session")).toEqual(expected(NOTIFIES));
    });
  });

  test(`directly (the reference): all ${NOTIFIES} notifications arrive, in order`, async () => {
    expect(await listenWhileBusy(pg, pg, "busy_direct")).toEqual(expected(NOTIFIES));
  });
});

describe("a pinned LISTEN client between transactions", () => {
  test("transaction mode: a client that sends nothing after LISTEN gets a NOTIFY within a second, as directly", async () => {
    await withPgbun(pg, { pgbun: tx(2) }, async (f) => {
      const l = await f.login();
      // another client keeps the pool busy meanwhile
      const other = await f.login();
      expect((await l.query("LISTEN idle_ch")).errors).toEqual([]);
      for (let i = 0; i < 3; i++) expect((await other.query("SELECT 1")).errors).toEqual([]);
      const sent = Date.now();
      await pg.psql("NOTIFY idle_ch, 'while idle'", "app");
      const got = await l.readUntil((m) => m.type === "A", 1_000);
      expect(Date.now() - sent).toBeLessThan(1_000);
      expect(notification(got[got.length - 1]!)).toEqual({ channel: "idle_ch", payload: "while idle" });
      // and the client goes on as before
      expect((await l.query("SELECT 'after'")).rows).toEqual([["after"]]);
    });
  });
});

/** The ParameterStatus messages (name=value) a wire client received after its login, in order. */
function paramsAfterLogin(c: WireClient, names: string[]): string[] {
  const since = c.history.findIndex((m) => m.type === "Z");
  return c.history
    .slice(since + 1)
    .filter((m) => m.type === "S")
    .map(parameterStatus)
    .filter(([k]) => names.includes(k))
    .map(([k, v]) => `${k}=${v}`);
}

describe("ParameterStatus from pgbun's parameter sync", () => {
  test("transaction mode, pool size 1: a client ends up seeing its values as PostgreSQL reports them, told once", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      // PostgreSQL reports these as "UTC" and "German, DMY" (its own spelling) right at login
      const a = await f.login({ TimeZone: "utc", DateStyle: "german", application_name: "app_a" });
      // B shares A's server and sets other values on it each time it runs
      const b = await f.login({ TimeZone: "Europe/Paris", DateStyle: "ISO, MDY", application_name: "app_b" });
      for (let i = 0; i < 4; i++) {
        expect((await a.query("SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('application_name')")).rows).toEqual([
          ["UTC", "German, DMY", "app_a"],
        ]);
        expect((await b.query("SELECT current_setting('TimeZone')")).rows).toEqual([["Europe/Paris"]]);
      }
      const names = ["TimeZone", "DateStyle", "application_name"];
      // once, at the first sync; the syncs that merely restore A's values after B are not reported
      expect(paramsAfterLogin(a, names).sort()).toEqual(["DateStyle=German, DMY", "TimeZone=UTC"]);
      expect(paramsAfterLogin(b, names)).toEqual([]);
      expect(a.params.get("TimeZone")).toBe("UTC");
      expect(a.params.get("DateStyle")).toBe("German, DMY");
      expect(a.params.get("application_name")).toBe("app_a");
    });
  });
});

describe("ParameterStatus from pgbun putting back a connection-time value after RESET", () => {
  test("transaction mode: RESET TimeZone reports the startup value at once, as PostgreSQL does, and the server goes back", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login({ options: "-c TimeZone=America/New_York" });
      const b = await f.login();
      for (let round = 0; round < 3; round++) {
        expect((await a.query("SET TimeZone = 'Asia/Tokyo'")).errors).toEqual([]);
        expect(a.params.get("TimeZone")).toBe("Asia/Tokyo");
        expect((await a.query("RESET TimeZone")).errors).toEqual([]);
        // nothing more is sent: the report must come by itself
        await a.readFor(300);
        expect(a.params.get("TimeZone")).toBe("America/New_York");
        // the server went back to the pool: B (pool size 1) is served
        expect((await b.query("SELECT current_setting('TimeZone') = 'America/New_York'")).rows).toEqual([["f"]]);
        expect((await a.query("SELECT current_setting('TimeZone')")).rows).toEqual([["America/New_York"]]);
      }
      expect(a.history.filter((m) => m.type === "S" && parameterStatus(m)[0] === "TimeZone").map((m) => parameterStatus(m)[1]).slice(-3)).toEqual([
        "Asia/Tokyo",
        expect.any(String),
        "America/New_York",
      ]);
    });
  });
});

describe("pgbun's own internal queries while a client is linked (a plugin's runInternal)", () => {
  // runs ROLLBACK (PostgreSQL warns: there is no transaction in progress) and a NOTIFY on the client's own channel
  // after each of its transactions: the notice is pgbun's, the notification the client's
  const source = `
    import { definePlugin, TxStatus } from "\${SDK}";
    export default definePlugin(() => ({
      name: "internal-noise",
      apply(api) {
        api.onServerMessage("ReadyForQuery", (ctx) => {
          const server = ctx.server;
          if (server === null || ctx.client.startupParams.get("application_name") !== "noisy") return undefined;
          if (!ctx.client.inSync || ctx.client.txStatus !== TxStatus.Idle) return undefined;
          server.runInternal("ROLLBACK");
          server.runInternal("SELECT pg_catalog.pg_notify('noise_ch', 'from pgbun')");
          server.out.flush(null);
          return undefined;
        }, { stage: -100 });
      },
    }));
  `;

  test("a NOTIFY the client listens for arrives; the WARNING raised by pgbun's ROLLBACK does not", async () => {
    const dir = await harnessTempDir("internal-noise");
    writePlugin(dir, "internal-noise.ts", source);
    const p = await kit.pooler(["./internal-noise.ts"], { dir, settings: { default_pool_size: 1 } });
    const c = kit.track(await loginApp(p, { application_name: "noisy" }), (w) => w.destroy());
    expect((await c.query("LISTEN noise_ch")).errors).toEqual([]);
    for (let i = 0; i < 3; i++) expect((await c.query(`SELECT ${i}`)).rows).toEqual([[String(i)]]);
    // the client's own notices still reach it
    expect((await c.query("DO $$ BEGIN RAISE NOTICE 'mine'; END $$")).errors).toEqual([]);
    await c.readFor(300);
    const notices = c.history.filter((m) => m.type === "N").map((m) => errorFields(m).M);
    expect(notices).toEqual(["mine"]);
    // after LISTEN and after each of the 4 transactions that followed it
    expect(payloads(c.history, "noise_ch")).toEqual(Array(5).fill("from pgbun"));
  });
});
