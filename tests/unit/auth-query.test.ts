// Unit: pgbun:auth's auth_query text (the user name as a literal PostgreSQL reads the same whatever
// standard_conforming_strings says) and the bound on lookups running at once.
import { expect, test } from "bun:test";
import { authQueryFor, LookupSlots, quoteLiteral } from "../../plugins/auth/auth-query.ts";

test("the user name becomes an E'' literal with quotes and backslashes doubled; $1 only, not $10", () => {
  expect(quoteLiteral("alice")).toBe("E'alice'");
  expect(quoteLiteral("o'neil")).toBe("E'o''neil'");
  expect(quoteLiteral("back\\slash")).toBe("E'back\\\\slash'");
  expect(quoteLiteral("x\\' OR true --")).toBe("E'x\\\\'' OR true --'");
  expect(authQueryFor("SELECT $1, $10, $1::text", "a'b")).toBe("SELECT E'a''b', $10, E'a''b'::text");
  // a replacement pattern in the name is taken literally
  expect(authQueryFor("SELECT $1", "$&$1$$")).toBe("SELECT E'$&$1$$'");
});

test("at most `limit` lookups run at once; the others start in arrival order as slots free", async () => {
  const slots = new LookupSlots();
  let running = 0;
  let most = 0;
  const started: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      await slots.acquire(3);
      running++;
      started.push(i);
      most = Math.max(most, running);
      await Bun.sleep(5);
      running--;
      slots.release();
    }),
  );
  expect(most).toBe(3);
  expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // all released: the next one runs at once
  let ran = false;
  await slots.acquire(1).then(() => (ran = true));
  expect(ran).toBe(true);
});
