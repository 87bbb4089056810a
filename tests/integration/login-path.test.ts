// Integration: the login path's shortcuts keep what a client sees: AuthenticationOk batched with the welcome (and
// still ahead of a refusal), a login of sync taps only (welcomed inside the read that brought its StartupMessage,
// bytes behind it served), and pgbun:auth's at-once admission following auth_type and auth_file across a reload.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { usePostgres, waitFor, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { authDir, passwordFailed as failed, pgLogin } from "../harness/auth.ts";
import { freePort } from "../harness/postgres.ts";
import { startTestPooler } from "../../bin/testing.ts";
import { errorFields, msg, WireClient, type BackendMessage } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("login-path");
const authFile = join(dir, "userlist.txt");
writeFileSync(authFile, `"listed_user" "listed-pw"\n`);

const types = (ms: BackendMessage[]) => ms.map((m) => m.type).join("");

/** Logs in as `user` with node-postgres and runs SELECT 1: "ok", or SQLSTATE and message. */
const login = (f: PgbunFixture, user: string) => pgLogin(f.pb, { user, password: "whatever", database: "app" }, async (c) => void (await c.query("SELECT 1")));

/** Rewrites the running pgbun's config file with `pgbun` settings changed, and reloads it. */
function reloadWith(f: PgbunFixture, settings: Record<string, unknown>): void {
  const config = JSON.parse(readFileSync(f.pb.configFile, "utf8")) as { pgbun: Record<string, unknown> };
  Object.assign(config.pgbun, settings);
  writeFileSync(f.pb.configFile, JSON.stringify(config, null, 2));
  f.pb.proc.kill("SIGHUP");
}

describe("the welcome", () => {
  test("AuthenticationOk, one ParameterStatus per parameter (the client's own value for what it set), BackendKeyData, ReadyForQuery, in that order", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction" }, databases: { "*": { host: pg.host, port: pg.port, password: pg.password } } }, async (f) => {
      for (const app of ["first", "second"]) {
        const c = await f.connect();
        c.send(msg.startup({ user: pg.superuser, database: "app", application_name: app }));
        const got = await c.readUntil((m) => m.type === "Z", 10_000);
        expect(got[0]!.type).toBe("R");
        expect(got[0]!.body.readInt32BE(0)).toBe(0); // AuthenticationOk
        expect(types(got)).toMatch(/^RS+KZ$/);
        const names = got.filter((m) => m.type === "S").map((m) => m.body.toString("latin1").split("\0")[0]);
        expect(new Set(names).size).toBe(names.length);
        expect(names).toContain("server_version");
        expect(c.params.get("application_name")).toBe(app);
        // the key is this client's: a second client gets another
        expect(got.find((m) => m.type === "K")!.body.length).toBe(8);
      }
    });
  });

  test("a parameter the client overrides is reported once, with its value; the next client without it gets the pool's (the shared blocks are per set of overridden names)", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction" }, databases: { "*": { host: pg.host, port: pg.port, password: pg.password } } }, async (f) => {
      const statuses = async (params: Record<string, string>) => {
        const c = await f.connect();
        c.send(msg.startup({ user: pg.superuser, database: "app", ...params }));
        const got = await c.readUntil((m) => m.type === "Z", 10_000);
        return got.filter((m) => m.type === "S").map((m) => m.body.toString("latin1").split("\0").slice(0, 2));
      };
      const plain = await statuses({});
      const serverZone = plain.find(([n]) => n === "TimeZone")![1];
      for (const [params, zone, style] of [
        [{ TimeZone: "Asia/Tokyo" }, "Asia/Tokyo", undefined],
        [{}, serverZone, undefined],
        [{ DateStyle: "SQL, DMY" }, serverZone, "SQL, DMY"],
        [{ TimeZone: "Europe/Paris", DateStyle: "German, DMY" }, "Europe/Paris", "German, DMY"],
        [{ TimeZone: "Asia/Tokyo" }, "Asia/Tokyo", undefined],
        [{}, serverZone, undefined],
      ] as Array<[Record<string, string>, string, string | undefined]>) {
        const got = await statuses(params);
        expect(got.filter(([n]) => n === "TimeZone")).toEqual([["TimeZone", zone]]);
        const styles = got.filter(([n]) => n === "DateStyle");
        expect(styles.length).toBe(1);
        if (style !== undefined) expect(styles[0]![1]).toBe(style);
        expect(got.length).toBe(plain.length);
      }
    });
  });

  test("application_name_add_host: each client is told its own application_name (address and port), not the one before's", async () => {
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", application_name_add_host: true }, databases: { "*": { host: pg.host, port: pg.port, password: pg.password } } }, async (f) => {
      const seen = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const c = await f.connect();
        c.send(msg.startup({ user: pg.superuser, database: "app", application_name: "tool" }));
        await c.readUntil((m) => m.type === "Z", 10_000);
        const app = c.params.get("application_name")!;
        expect(app).toMatch(/^tool - 127\.0\.0\.1:\d+$/);
        seen.add(app);
      }
      expect(seen.size).toBe(3);
    });
  });

  test("a client refused after authentication (its pool's server cannot be reached) reads AuthenticationOk, then the error", async () => {
    const closed = await freePort();
    await withPgbun(pg, { pgbun: { pool_mode: "transaction", query_wait_timeout: 5 }, databases: { "*": { host: "127.0.0.1", port: closed, password: pg.password } } }, async (f) => {
      const c = await f.connect();
      c.send(msg.startup({ user: pg.superuser, database: "app" }));
      const got = await c.readUntil((m) => m.type === "E", 15_000);
      expect(types(got)).toBe("RE");
      expect(got[0]!.body.readInt32BE(0)).toBe(0);
      expect(errorFields(got[1]!).S).toBe("FATAL");
    });
  });
});

/** A PasswordMessage ('p', the password and its terminator). */
function passwordMessage(password: string): Buffer {
  const body = Buffer.from(password + "\0");
  const m = Buffer.alloc(5 + body.length);
  m[0] = 0x70;
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return m;
}

describe("login messages (taken as read when they are the whole read, copied when bytes follow)", () => {
  const plainConfig = () => ({ pgbun: { auth_type: "plain", auth_file: authFile }, databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } } });

  test("a PasswordMessage split over two writes, and one with a Query behind it in the same write: both logged in, the Query answered", async () => {
    await withPgbun(pg, plainConfig(), async (f) => {
      const split = await f.connect();
      split.send(msg.startup({ user: "listed_user", database: "app" }));
      expect((await split.readUntil((m) => m.type === "R", 5_000)).at(-1)!.body.readInt32BE(0)).toBe(3); // cleartext
      const pw = passwordMessage("listed-pw");
      split.send(pw.subarray(0, 7));
      await Bun.sleep(50);
      split.send(pw.subarray(7));
      expect(types(await split.readUntil((m) => m.type === "Z", 5_000))).toMatch(/^RS+KZ$/);

      const piped = await f.connect();
      piped.send(msg.startup({ user: "listed_user", database: "app" }));
      await piped.readUntil((m) => m.type === "R", 5_000);
      piped.send(Buffer.concat([passwordMessage("listed-pw"), msg.query("SELECT 'behind the password'")]));
      expect(types(await piped.readUntil((m) => m.type === "Z", 5_000))).toMatch(/^RS+KZ$/);
      const answer = await piped.readUntil((m) => m.type === "Z", 5_000);
      expect(types(answer)).toBe("TDCZ");
      expect(answer[1]!.body.toString("latin1")).toContain("behind the password");

      const wrong = await f.connect();
      wrong.send(msg.startup({ user: "listed_user", database: "app" }));
      await wrong.readUntil((m) => m.type === "R", 5_000);
      wrong.send(passwordMessage("not-the-pw"));
      const refused = await wrong.readUntil((m) => m.type === "E", 5_000);
      expect(errorFields(refused.at(-1)!).C).toBe("28P01");
    });
  });
});

describe("a login of sync taps only", () => {
  test("is welcomed inside the read of its StartupMessage, and a query sent in the same write is answered", async () => {
    const p = await startTestPooler({ upstream: { host: pg.host, port: pg.port, password: pg.password }, settings: { admin_users: [pg.superuser] } });
    try {
      // pgbun:auth's and pgbun:pool's taps are promise taps: without them (plugins of sync taps in their place) a
      // console login runs start to welcome in the one call that parsed its StartupMessage
      const hooks = p.core.hooks;
      hooks.authenticate.taps.length = 0;
      (hooks.authenticated as { taps: Array<{ type: string }> }).taps = hooks.authenticated.taps.filter((t) => t.type !== "promise");
      expect(hooks.startup.taps.every((t) => t.type === "sync")).toBe(true);
      const c = await WireClient.connect({ host: p.host, port: p.port });
      try {
        c.send(Buffer.concat([msg.startup({ user: pg.superuser, database: "pgbouncer" }), msg.query("SHOW VERSION")]));
        const welcome = await c.readUntil((m) => m.type === "Z", 5_000);
        expect(types(welcome)).toMatch(/^RS+KZ$/);
        const answer = await c.readUntil((m) => m.type === "Z", 5_000);
        expect(types(answer)).toBe("TDCZ");
        expect(answer[1]!.body.toString("latin1")).toContain("pgbun");
      } finally {
        c.destroy();
      }
    } finally {
      await p.stop();
    }
  });
});

describe("pgbun:auth's at-once admission", () => {
  test("trust without auth_file lets anyone in; a reload adding auth_file lets only its users in, and auth_type any anyone again", async () => {
    await withPgbun(pg, { pgbun: { auth_type: "trust" }, databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } } }, async (f) => {
      expect(await login(f, "nobody")).toBe("ok");
      reloadWith(f, { auth_file: authFile });
      await waitFor("auth_file in force", async () => (await login(f, "nobody")) === failed("nobody"), 10_000, 200);
      expect(await login(f, "listed_user")).toBe("ok");
      reloadWith(f, { auth_type: "any" });
      await waitFor("auth_type any in force", async () => (await login(f, "nobody")) === "ok", 10_000, 200);
    });
  });

  test("trust with auth_user set looks an unknown user up (no at-once admission): a user PostgreSQL does not know is refused", async () => {
    await withPgbun(pg, { pgbun: { auth_type: "trust", auth_user: pg.superuser }, databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } } }, async (f) => {
      expect(await login(f, "nobody")).toBe(failed("nobody"));
      expect(await login(f, pg.superuser)).toBe("ok");
    });
  });
});
