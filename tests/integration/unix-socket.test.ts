// Integration: the client Unix socket (unix_socket_dir, _mode, _group) as PgBouncer makes it: psql, pg and the admin
// console over it, addr "unix" in SHOW CLIENTS, the file removed at exit, a stale file replaced, a live one or a
// non-socket refused, "" makes none, and workers > 1 (worker 0 alone listens there).
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startPgbun, type TestPgbun } from "../harness/pgbun.ts";
import { expectLog, findBinary, pgConnect, runClientProgram, usePostgres, waitFor } from "../harness/fixtures.ts";
import { freePort, harnessTempDir } from "../harness/postgres.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();

const running: Array<{ stop(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const p of running.splice(0)) await p.stop().catch(() => undefined);
});

/** A pgbun process whose socket goes to a fresh directory; resolves once the socket file is there. */
async function pgbunIn(settings: Record<string, unknown> = {}): Promise<{ pb: TestPgbun; dir: string; path: string }> {
  const dir = await harnessTempDir("unix");
  const pb = await startPgbun({ config: { pgbun: { log_level: "debug", admin_users: ["postgres"], unix_socket_dir: dir, ...settings } }, pg });
  running.push(pb);
  const path = join(dir, `.s.PGSQL.${pb.port}`);
  // the TCP port answers before the socket is made, and a signal before start-up's end would find no handler yet;
  // with workers, the first "listening" may be worker 1's, which makes no socket
  await expectLog(pb, "pgbun listening");
  await waitFor(`${path} exists`, () => existsSync(path));
  return { pb, dir, path };
}

/** psql over the socket directory: exit code and the unaligned output. */
async function psql(dir: string, port: number, db: string, sql: string) {
  return runClientProgram(pg, [findBinary("psql"), "-X", "-At", "-h", dir, "-p", String(port), "-U", "postgres", "-d", db, "-c", sql], { killAfterMs: 20_000 });
}

/** A socket file a SIGKILLed process left behind (nothing listens on it any more). */
async function staleSocket(path: string): Promise<void> {
  const child = Bun.spawn([process.execPath, "-e", `Bun.listen({ unix: ${JSON.stringify(path)}, socket: { data() {} } }); console.log("up"); setInterval(() => {}, 1000);`], { stdout: "pipe" });
  const reader = child.stdout.getReader();
  await reader.read();
  child.kill("SIGKILL");
  await child.exited;
  expect(statSync(path).isSocket()).toBe(true);
}

/** The name of the group with this gid in /etc/group. */
function groupName(gid: number): string {
  const line = readFileSync("/etc/group", "utf8").split("\n").find((l) => l.split(":")[2] === String(gid));
  if (!line) throw new Error(`no group ${gid} in /etc/group`);
  return line.split(":")[0]!;
}

describe("Unix socket", () => {
  test("psql and pg log in over <unix_socket_dir>/.s.PGSQL.<port> and reach PostgreSQL", async () => {
    const { pb, dir, path } = await pgbunIn();
    expect(statSync(path).isSocket()).toBe(true);
    const r = await psql(dir, pb.port, "app", "SELECT current_database() || ':' || current_user");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("app:postgres");

    const c = await pgConnect({ host: dir, port: pb.port });
    try {
      expect((await c.query("SELECT 40 + 2 AS n")).rows[0].n).toBe(42);
    } finally {
      await c.end();
    }
    // the default mode is PgBouncer's 0777
    expect(statSync(path).mode & 0o777).toBe(0o777);
  });

  test("the admin console over the socket; SHOW CLIENTS shows addr unix (and the listen port) beside a TCP client", async () => {
    const { pb, dir } = await pgbunIn();
    const overUnix = await pgConnect({ host: dir, port: pb.port }, { application_name: "via-unix" });
    const overTcp = await pgConnect(pb, { application_name: "via-tcp" });
    const admin = await pgConnect({ host: dir, port: pb.port }, { database: "pgbouncer" });
    try {
      await overUnix.query("SELECT 1");
      await overTcp.query("SELECT 1");
      const rows = (await admin.query("SHOW CLIENTS")).rows as Array<Record<string, string>>;
      const unix = rows.find((r) => r.application_name === "via-unix");
      const tcp = rows.find((r) => r.application_name === "via-tcp");
      expect(unix?.addr).toBe("unix");
      expect(Number(unix?.port)).toBe(pb.port);
      expect(tcp?.addr).toBe("127.0.0.1");
      // the console's own connection came over the socket too
      expect(rows.filter((r) => r.database === "pgbouncer").map((r) => r.addr)).toEqual(["unix"]);
    } finally {
      await Promise.all([overUnix.end(), overTcp.end(), admin.end()]);
    }
    // the logins and disconnections of unix clients were logged without a fault
    expect(pb.logs()).not.toMatch(/uncaught|unhandled|TypeError/);
    expect(pb.proc.exitCode).toBeNull();
  });

  test("the socket file is removed when pgbun exits (SIGTERM, SIGINT, SIGQUIT)", async () => {
    for (const signal of ["SIGTERM", "SIGINT", "SIGQUIT"] as const) {
      const { pb, path } = await pgbunIn();
      expect(await pb.stop(signal)).toBe(0);
      expect(existsSync(path)).toBe(false);
    }
  });

  test("unix_socket_mode and unix_socket_group are applied to the file", async () => {
    const gid = process.getgid!();
    const { pb, dir, path } = await pgbunIn({ unix_socket_mode: "0770", unix_socket_group: groupName(gid) });
    const st = statSync(path);
    expect((st.mode & 0o777).toString(8)).toBe("770");
    expect(st.gid).toBe(gid);
    expect((await psql(dir, pb.port, "app", "SELECT 1")).stdout.trim()).toBe("1");
  });

  test("an unknown unix_socket_group refuses the start with the reason", async () => {
    const dir = await harnessTempDir("unix");
    const err = await startPgbun({ config: { pgbun: { unix_socket_dir: dir, unix_socket_group: "no-such-group-pgbun" } }, pg }).then(
      (pb) => (running.push(pb), null),
      (e: Error) => e,
    );
    expect(err?.message).toContain('unix_socket_group "no-such-group-pgbun": no such group');
  });

  test('unix_socket_dir = "" makes no socket (the TCP listener serves alone)', async () => {
    const pb = await startPgbun({ config: { pgbun: { unix_socket_dir: "" } }, pg });
    running.push(pb);
    const c = await pgConnect(pb);
    await c.end();
    // the default directory is /tmp: looked at, never written to, by this test
    expect(existsSync(`/tmp/.s.PGSQL.${pb.port}`)).toBe(false);
    expect(pb.logs()).not.toContain(".s.PGSQL.");
  });
});

describe("what is found at the socket's path at start", () => {
  /** An in-process pgbun on a port known in advance, so the path is known before it starts. */
  async function pooler(dir: string, port: number, settings: Record<string, unknown> = {}): Promise<TestPooler> {
    const p = await startTestPooler({ upstream: { host: pg.host, port: pg.port, password: pg.password }, settings: { listen_port: port, unix_socket_dir: dir, ...settings } });
    running.push(p);
    return p;
  }

  test("a stale socket file (a killed pooler's) is replaced", async () => {
    const dir = await harnessTempDir("unix");
    const port = await freePort();
    const path = join(dir, `.s.PGSQL.${port}`);
    await staleSocket(path);
    await pooler(dir, port);
    const c = await pgConnect({ host: dir, port });
    try {
      expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await c.end();
    }
  });

  test("a socket another process listens on is left alone and the start refused", async () => {
    const { pb, dir, path } = await pgbunIn({ so_reuseport: true });
    const err = await pooler(dir, pb.port, { so_reuseport: true }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain(`another process is listening on ${path}`);
    // the first pgbun still serves its socket
    expect(statSync(path).isSocket()).toBe(true);
    expect((await psql(dir, pb.port, "app", "SELECT 1")).stdout.trim()).toBe("1");
  });

  test("a file that is not a socket is not removed and the start refused", async () => {
    const dir = await harnessTempDir("unix");
    const port = await freePort();
    const path = join(dir, `.s.PGSQL.${port}`);
    writeFileSync(path, "not a socket");
    const err = await pooler(dir, port).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain(`${path} exists and is not a socket`);
    expect(readFileSync(path, "utf8")).toBe("not a socket");
  });
});

describe("workers > 1", () => {
  test("worker 0 alone listens on the socket; every login over it works; the file goes at exit", async () => {
    const { pb, dir, path } = await pgbunIn({ workers: 2 });
    for (let i = 0; i < 4; i++) {
      const r = await psql(dir, pb.port, "app", "SELECT 1");
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("1");
    }
    await waitFor("both workers listening", () => (pb.logs().match(/pgbun listening/g) ?? []).length === 2);
    const listening = pb.logs().split("\n").filter((l) => l.includes("pgbun listening"));
    expect(listening.filter((l) => l.includes(".s.PGSQL.")).length).toBe(1);
    // no worker failed on the socket and was restarted
    expect(pb.logs()).not.toMatch(/another process is listening|worker exited/);
    expect(await pb.stop("SIGTERM")).toBe(0);
    expect(existsSync(path)).toBe(false);
  });
});
