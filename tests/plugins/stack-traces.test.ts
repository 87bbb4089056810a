// A compiled path plugin's fault is logged with a stack that points at the plugin's TypeScript source, not the cached bundle.
import { expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { harnessTempDir } from "../harness/postgres.ts";
import { queryOk, usePostgres, waitFor, withPgbun, writePlugin } from "../harness/fixtures.ts";

// PostgreSQL and pgbun processes start here: generous limits for a loaded machine
setDefaultTimeout(30_000);

const pg = usePostgres();

/** The 1-based line of the first line of `source` containing `marker`. */
const lineOf = (source: string, marker: string) => source.split("\n").findIndex((l) => l.includes(marker)) + 1;

// types and blank lines before the throw: esbuild drops them, so the bundle's line numbers differ from these
const helper = `// A helper of the thrower plugin.

export interface Verdict {
  sql: string;
  refused: boolean;
}

export function check(sql: string): Verdict {
  if (sql === "SELECT 'boom'") throw new Error("kaboom from the helper"); // THROW
  return { sql, refused: false };
}
`;

const entry = `import { definePlugin, decodeQuery, type MessageContext } from "\${SDK}";
import { check, type Verdict } from "./helper.ts";

type Seen = Map<string, Verdict>;

export default definePlugin(() => ({
  name: "thrower",
  apply(api) {
    const seen: Seen = new Map();
    api.onClientMessage("Query", (ctx: MessageContext) => {
      const verdict: Verdict = check(decodeQuery(ctx)); // CALL
      seen.set(verdict.sql, verdict);
      return undefined;
    });
  },
}));
`;

test("the logged stack of a plugin fault names the plugin's .ts files and lines", async () => {
  const dir = await harnessTempDir("stack");
  const file = writePlugin(dir, "thrower.ts", entry);
  const helperFile = join(dir, "helper.ts");
  writeFileSync(helperFile, helper);

  await withPgbun(pg, { pgbun: { plugins: [file] } }, async (f) => {
    const c = await f.login();
    const r = await c.query("SELECT 'boom'");
    expect(r.errors.map((e) => e.M)).toEqual(['plugin "thrower" failed: kaboom from the helper']);
    expect(await queryOk(c, "SELECT 'after'")).toEqual([["after"]]);

    let logged: { err?: { stack?: string } } | undefined;
    await waitFor("the fault's log line", () => {
      for (const line of f.pb.logs().split("\n")) {
        if (!line.startsWith("{")) continue;
        const record = JSON.parse(line);
        if (record.plugin === "thrower" && record.err) logged = record;
      }
      return logged !== undefined;
    });
    const stack = logged!.err!.stack!;
    expect(stack).toContain("kaboom from the helper");
    expect(stack).toContain(`${helperFile}:${lineOf(helper, "// THROW")}:`);
    expect(stack).toContain(`${file}:${lineOf(entry, "// CALL")}:`);
    expect(stack).not.toContain(".pgbun-cache");
  });
});

test("a plugin throwing an error whose stack is read-only is still the one named (the stack is left as it is)", async () => {
  const dir = await harnessTempDir("stack");
  const file = writePlugin(
    dir,
    "fixed-stack.ts",
    `import { definePlugin, decodeQuery } from "\${SDK}";
     const FIXED = Object.defineProperty(new Error("fixed kaboom"), "stack", { value: "Error: fixed kaboom", writable: false });
     export default definePlugin(() => ({
       name: "fixed-stack",
       apply(api) {
         api.onClientMessage("Query", (ctx) => {
           if (decodeQuery(ctx) === "SELECT 'boom'") throw FIXED;
           return undefined;
         });
       },
     }));`,
  );
  await withPgbun(pg, { pgbun: { plugins: [file] } }, async (f) => {
    const c = await f.login();
    const r = await c.query("SELECT 'boom'");
    expect(r.errors.map((e) => e.M)).toEqual(['plugin "fixed-stack" failed: fixed kaboom']);
    expect(await queryOk(c, "SELECT 'after'")).toEqual([["after"]]);
  });
});
