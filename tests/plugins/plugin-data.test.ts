// Client.data and Server.data: one shape for every connection, whichever plugin stores first (core/plugin/data-record.ts).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { jscDescribe } from "bun:jsc";
import { harnessTempDir } from "../harness/postgres.ts";
import { pluginTestKit, usePostgres, writePlugin } from "../harness/fixtures.ts";
import { pluginDataFactory } from "../../core/plugin/data-record.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();
const { pooler, connect } = pluginTestKit(pg);

/** JSC's structure (hidden class) of an object: equal ids, one shape for the engine's inline caches. */
const structureOf = (o: object): string => /StructureID: (\d+)/.exec(jscDescribe(o))?.[1] ?? "none";

describe("plugin data records", () => {
  test("the factory declares every name once, in order, undefined; records filled in different orders keep one structure", () => {
    const make = pluginDataFactory(["a", 'quo"te', "a", "__proto__", "b"]);
    const x = make();
    const y = make();
    expect(Object.keys(x)).toEqual(["a", 'quo"te', "b"]);
    expect(x.a).toBeUndefined();
    expect(Object.getPrototypeOf(x)).toBe(Object.getPrototypeOf({}));
    x.a = 1;
    x.b = 2;
    y.b = 2;
    y.a = 1;
    expect(structureOf(x)).not.toBe("none");
    expect(structureOf(x)).toBe(structureOf(y));
    // what a plain object did: the order of the stores made two shapes
    const p: Record<string, unknown> = {};
    const q: Record<string, unknown> = {};
    p.a = 1;
    p.b = 2;
    q.b = 2;
    q.a = 1;
    expect(structureOf(p)).not.toBe(structureOf(q));
  });

  test("two clients whose plugins store in opposite orders have records of one structure, with every plugin's key", async () => {
    const dir = await harnessTempDir("plugin-data");
    const storer = (name: string, type: string) => `
      import { definePlugin } from "\${SDK}";
      export default definePlugin((o) => ({
        name: ${JSON.stringify(name)},
        apply(api) {
          api.onClientMessage(${JSON.stringify(type)}, (ctx) => {
            if (ctx.client.data[${JSON.stringify(name)}] === undefined) ctx.client.data[${JSON.stringify(name)}] = { n: 1 };
            o.record(ctx.client.data);
            return undefined;
          });
        },
      }));
    `;
    writePlugin(dir, "on-query.ts", storer("on-query", "Query"));
    writePlugin(dir, "on-parse.ts", storer("on-parse", "Parse"));
    const records = new Set<Record<string, unknown>>();
    const record = (d: Record<string, unknown>) => records.add(d);
    const p = await pooler([["./on-query.ts", { record }], ["./on-parse.ts", { record }]], { dir });
    const a = await connect(p);
    const b = await connect(p);
    // a: a simple Query first (on-query stores first); b: an extended one first (on-parse stores first)
    await a.query("SELECT 1");
    await a.query({ text: "SELECT $1::int", values: [1] });
    await b.query({ text: "SELECT $1::int", values: [1] });
    await b.query("SELECT 1");
    expect(records.size).toBe(2);
    const [da, db] = [...records];
    expect(Object.keys(da!)).toEqual(Object.keys(db!));
    for (const name of ["on-query", "on-parse", "pgbun:pool", "pgbun:stats", "pgbun:prepared-statements"]) expect(Object.keys(da!)).toContain(name);
    expect(structureOf(da!)).toBe(structureOf(db!));
  });
});
