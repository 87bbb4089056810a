// A [databases] host that is a directory is PostgreSQL's Unix socket there (as in libpq and PgBouncer): servers log in over it.
import { expect, setDefaultTimeout, test } from "bun:test";
import { queryValue, tx, usePostgres, withPgbun } from "../harness/fixtures.ts";
import { msg, only, sendCancel, sqlState } from "../harness/wire.ts";

setDefaultTimeout(60_000);
const pg = usePostgres();

test("host = the socket directory: a client's queries run on a server reached over the Unix socket", async () => {
  const databases = { app: { host: pg.socketDir, port: pg.port, password: pg.password } };
  // TLS towards servers is not used on a Unix socket (libpq's rule), so prefer must not stand in the way
  await withPgbun(pg, { pgbun: tx(1, { server_tls_sslmode: "prefer" }), databases }, async (f) => {
    const c = await f.login();
    expect(await queryValue(c, "SELECT 1")).toBe("1");
    // PostgreSQL sees the session as local: no client address
    expect(await queryValue(c, "SELECT inet_client_addr() IS NULL")).toBe("t");
    expect(f.pb.logs()).not.toContain("ENOTFOUND");
  });
});

test("a CancelRequest reaches a server on the Unix socket: the running query ends with 57014, promptly", async () => {
  const databases = { app: { host: pg.socketDir, port: pg.port, password: pg.password } };
  await withPgbun(pg, { pgbun: tx(1), databases }, async (f) => {
    const c = await f.login();
    const { pid, secret } = c.key!;
    c.send(msg.query("SELECT pg_sleep(10)"));
    await Bun.sleep(300);
    const t0 = Date.now();
    await sendCancel(f.pb.host, f.pb.port, pid, secret);
    const got = await c.readUntilReady(8_000);
    expect(only(got, "E").map((m) => sqlState(m))).toEqual(["57014"]);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
