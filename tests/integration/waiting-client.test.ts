// A client that waits for a server keeps its read in one piece: what it sent runs once, in order, or not at all.
import { expect, setDefaultTimeout, test } from "bun:test";
import { queryOk, tx, usePostgres, waitFor, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { extendedQuery, msg, rows, types, type WireClient } from "../harness/wire.ts";

setDefaultTimeout(30_000);

const pg = usePostgres((db) => db.psql("DROP TABLE IF EXISTS waiting_log; CREATE TABLE waiting_log (who text)", "app"));

/** A first client holding the pool's only server inside a transaction block. */
async function holdServer(f: PgbunFixture): Promise<WireClient> {
  const a = await f.login();
  expect((await a.query("BEGIN")).status).toBe("T");
  return a;
}

test("a waiting client's pipeline (two Syncs in one read, more sent while it waits) runs once, in order, once linked", async () => {
  await withPgbun(pg, { pgbun: tx(1, { log_level: "warn" }) }, async (f) => {
    const a = await holdServer(f);
    const b = await f.login();
    b.send(Buffer.concat([extendedQuery("select $1::text", ["first"]), extendedQuery("select 2")]));
    expect(await b.readFor(200)).toEqual([]); // no server free: nothing answered yet
    b.send(msg.query("select 'third'"));
    expect(await b.readFor(100)).toEqual([]);
    await queryOk(a, "COMMIT");
    const got = await b.readReadyN(3);
    expect(types(got)).toBe("12DCZ12DCZTDCZ");
    expect(rows(got)).toEqual([["first"], ["2"], ["third"]]);
  });
});

test("a waiting client whose first message came in two reads: the message is sent once, whole, then the rest", async () => {
  await withPgbun(pg, { pgbun: tx(1, { log_level: "warn" }) }, async (f) => {
    const a = await holdServer(f);
    const b = await f.login();
    const bytes = extendedQuery("select $1::text || $2::text", ["split ", "parse"]);
    const cut = 9; // inside the Parse's text
    b.send(bytes.subarray(0, cut));
    expect(await b.readFor(100)).toEqual([]);
    b.send(bytes.subarray(cut));
    expect(await b.readFor(100)).toEqual([]);
    await queryOk(a, "COMMIT");
    const got = await b.readUntilReady();
    expect(types(got)).toBe("12DCZ");
    expect(rows(got)).toEqual([["split parse"]]);
  });
});

test("a client that leaves while waiting: nothing it sent reaches a server, and the next client gets a clean one", async () => {
  await withPgbun(pg, { pgbun: tx(1, { log_level: "warn" }) }, async (f) => {
    const a = await holdServer(f);
    const b = await f.login();
    // its whole transaction waits in pgbun: Parse (its hooks have run), Bind, Execute, Sync
    b.send(Buffer.concat([msg.parse("", "insert into waiting_log values ($1)"), msg.bind("", "", ["left while waiting"]), msg.execute(), msg.sync()]));
    expect(await b.readFor(150)).toEqual([]);
    b.destroy();
    await waitFor("pgbun to see the client go", async () => b.isClosed);
    await queryOk(a, "COMMIT");
    const c = await f.login();
    expect(await queryOk(c, "select count(*) from waiting_log")).toEqual([["0"]]);
    // the server is the one the leaver waited for, and it is in no transaction and has no unnamed statement left
    c.send(Buffer.concat([msg.bind("", "", []), msg.execute(), msg.sync()]));
    const got = await c.readUntilReady();
    expect(types(got)).toBe("EZ");
    expect(await queryOk(c, "select count(*) from waiting_log")).toEqual([["0"]]);
  });
});
