// Integration: pgbun:parameter-tracking's in-step shortcut never skips a link the server's session changed under:
// two clients of the same parameters on one server, where one changes it, and the other must get its own values.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { tx, usePostgres, withPgbun, queryOk as ok, queryValue as value } from "../harness/fixtures.ts";

setDefaultTimeout(30_000);

const pg = usePostgres();

describe("parameter tracking: the in-step shortcut", () => {
  test("A and C of the same startup parameters share one server; C's SET TimeZone does not reach A, and A's relinks keep its value", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const c = await f.login();
      const pid = await value(a, "SELECT pg_backend_pid()");
      const tz = await value(a, "SHOW TimeZone");
      expect(tz).not.toBe("Asia/Tokyo");
      expect(await value(a, "SHOW TimeZone")).toBe(tz!); // relinked in step: nothing run, nothing changed
      await ok(c, "SET TimeZone = 'Asia/Tokyo'");
      expect(await value(c, "SELECT pg_backend_pid()")).toBe(pid!);
      expect(await value(c, "SHOW TimeZone")).toBe("Asia/Tokyo");
      // the server's TimeZone changed, A's lists did not: A must be compared again, and get its value back
      expect(await value(a, "SELECT pg_backend_pid()::text || ' ' || current_setting('TimeZone')")).toBe(`${pid} ${tz}`);
      expect(await value(a, "SHOW TimeZone")).toBe(tz!);
      expect(await value(c, "SHOW TimeZone")).toBe("Asia/Tokyo");
      expect(await value(a, "SHOW TimeZone")).toBe(tz!);
    });
  });

  test("a custom setting C carries is reset for A, who was in step with that server before C set it", async () => {
    await withPgbun(pg, { pgbun: tx(1) }, async (f) => {
      const a = await f.login();
      const c = await f.login();
      expect(await value(a, "SELECT coalesce(current_setting('app.tenant', true), '')")).toBe("");
      expect(await value(a, "SELECT coalesce(current_setting('app.tenant', true), '')")).toBe("");
      await ok(c, "SET app.tenant = '7'");
      expect(await value(c, "SELECT current_setting('app.tenant', true)")).toBe("7");
      expect(await value(a, "SELECT coalesce(current_setting('app.tenant', true), '')")).toBe("");
      expect(await value(c, "SELECT current_setting('app.tenant', true)")).toBe("7");
    });
  });

  test("server_reset_query after every transaction: the client's startup setting is SET again on the same server each time", async () => {
    await withPgbun(pg, { pgbun: tx(1, { server_reset_query_always: 1 }) }, async (f) => {
      // a setting PostgreSQL does not report: after DISCARD ALL no ParameterStatus tells pgbun it is gone
      const a = await f.login({ options: "-c app.tenant=7" });
      const pid = await value(a, "SELECT pg_backend_pid()");
      // each transaction's DISCARD ALL undid the SET the previous link made: in step before, not after
      for (let i = 0; i < 4; i++) {
        expect(await value(a, "SELECT pg_backend_pid()::text || ' ' || coalesce(current_setting('app.tenant', true), 'unset')")).toBe(`${pid} 7`);
      }
    });
  });
});
