// Integration: the per-process memory of long texts that cannot change session state never hides one that does:
// a setting text of exactly a remembered text's length, after that text was remembered and hit, from the same
// client or from another client of the same server, by Parse (unnamed statement) and by simple Query.
import { expect, setDefaultTimeout, test } from "bun:test";
import { tx, usePostgres, withPgbun, queryValue as value } from "../harness/fixtures.ts";
import { extendedQuery, WireClient } from "../harness/wire.ts";
import { MIN_REMEMBERED } from "../../plugins/session-state/verdicts.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();

const LENGTH = MIN_REMEMBERED + 72;
/** `sql` padded with a comment to exactly LENGTH bytes. */
function padded(sql: string): string {
  const text = (sql + " /*" + "x".repeat(LENGTH)).slice(0, LENGTH - 2) + "*/";
  expect(text.length).toBe(LENGTH);
  return text;
}
const CLEAN = padded("SELECT 1 AS one, 2 AS two");
const SETS = (v: string) => padded(`SELECT set_config('myapp.tenant', '${v}', false)`);
const READ = "SELECT current_setting('myapp.tenant', true)";

type Way = "Parse" | "Query";
async function run(c: WireClient, way: Way, sql: string): Promise<void> {
  if (way === "Parse") {
    c.send(extendedQuery(sql));
    const got = await c.readUntilReady();
    expect(got.filter((m) => m.type === "E")).toEqual([]);
    expect(got[got.length - 1]!.body[0]).toBe("I".charCodeAt(0));
  } else {
    const r = await c.query(sql);
    expect(r.errors).toEqual([]);
    expect(r.status).toBe("I");
  }
}

for (const way of ["Parse", "Query"] as const) {
  test(`${way}: a setting text of a remembered clean text's length, after hits, is seen: A keeps its value on the one server, B never gets it`, async () => {
    // the texts are the lengths the memory keeps (and of one slot)
    expect(CLEAN.length).toBe(SETS("a").length);
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      for (let k = 0; k < 3; k++) await run(a, way, CLEAN); // remembered, then hit
      await run(a, way, SETS("a"));
      for (let round = 0; round < 3; round++) {
        expect([null, ""]).toContain(await value(b, READ));
        expect(await value(a, READ)).toBe("a");
        await run(a, way, CLEAN);
        await run(b, way, CLEAN);
      }
    });
  });

  test(`${way}: another client of the same server sends the setting text after A's clean one was remembered: A never gets B's value`, async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const b = await f.login();
      await run(a, way, CLEAN);
      await run(a, way, CLEAN);
      await run(b, way, SETS("b"));
      for (let round = 0; round < 3; round++) {
        expect([null, ""]).toContain(await value(a, READ));
        expect(await value(b, READ)).toBe("b");
        await run(b, way, CLEAN);
      }
    });
  });
}
