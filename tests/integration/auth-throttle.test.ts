// Integration: failed logins are logged without secrets, and an address's repeated password failures are slowed
// (auth_failure_delay): a burst of 5 is answered at once, then one failure per delay, wrong passwords and unknown
// users alike, parallel attempts queued; another address, a right password and HBA refusals are not slowed.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { expectLog, pgConnect, usePostgres, withPgbun } from "../harness/fixtures.ts";
import { authDir } from "../harness/auth.ts";
import { msg } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("throttle");
const authFile = join(dir, "userlist.txt");
const hbaFile = join(dir, "pg_hba.conf");
beforeAll(() => {
  writeFileSync(authFile, `"alice" "alice-pw"\n`);
  writeFileSync(hbaFile, "host all rejected 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 password\n");
});

function config(delay: number): Record<string, unknown> {
  return {
    pgbun: { auth_type: "hba", auth_hba_file: hbaFile, auth_file: authFile, auth_failure_delay: delay },
    databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } },
  };
}

/**
 * One cleartext login from `localAddress` with a raw socket: how long (ms) from the password (or the startup packet,
 * for refusals without a password request) to pgbun's answer, and the answer's SQLSTATE ("ok" for a login).
 */
async function attempt(port: number, user: string, password: string, localAddress = "127.0.0.1"): Promise<{ ms: number; code: string }> {
  const socket: Socket = connect({ host: "127.0.0.1", port, localAddress });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let buf = Buffer.alloc(0);
  const next = () =>
    new Promise<{ type: string; body: Buffer }>((resolve, reject) => {
      const tryParse = () => {
        if (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
          const len = buf.readInt32BE(1);
          const m = { type: String.fromCharCode(buf[0]!), body: buf.subarray(5, 1 + len) };
          buf = buf.subarray(1 + len);
          socket.off("data", onData);
          socket.off("close", onClose);
          resolve(m);
        }
      };
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        tryParse();
      };
      const onClose = () => reject(new Error("closed"));
      socket.on("data", onData).on("close", onClose);
      tryParse();
    });
  try {
    let start = performance.now();
    socket.write(msg.startup({ user, database: "app" }));
    let m = await next();
    if (m.type === "R" && m.body.readInt32BE(0) === 3) {
      const pw = Buffer.from(`${password}\0`);
      const p = Buffer.alloc(5);
      p[0] = 0x70;
      p.writeInt32BE(4 + pw.length, 1);
      start = performance.now();
      socket.write(Buffer.concat([p, pw]));
      m = await next();
    }
    const ms = performance.now() - start;
    if (m.type === "E") {
      const fields = m.body.toString("utf8").split("\0");
      return { ms, code: fields.find((f) => f.startsWith("C"))!.slice(1) };
    }
    return { ms, code: m.type === "R" && m.body.readInt32BE(0) === 0 ? "ok" : `unexpected ${m.type}` };
  } finally {
    socket.destroy();
  }
}

describe("auth_failure_delay", () => {
  test("5 failures at once, then one per delay from that address; unknown users count the same; others unaffected", async () => {
    await withPgbun(pg, config(0.5), async (f) => {
      const port = f.pb.port;
      // the burst: answered at once (wrong password and unknown user mixed)
      for (let i = 0; i < 5; i++) {
        const r = await attempt(port, i % 2 === 0 ? "alice" : "nobody", "guess");
        expect(r.code).toBe("28P01");
        expect(r.ms).toBeLessThan(300);
      }
      // then each waits for the next token: wrong password and unknown user the same
      const wrong = await attempt(port, "alice", "guess");
      expect(wrong.code).toBe("28P01");
      expect(wrong.ms).toBeGreaterThan(300);
      const unknown = await attempt(port, "nobody", "guess");
      expect(unknown.code).toBe("28P01");
      expect(unknown.ms).toBeGreaterThan(300);
      // parallel attempts do not get around it: they are answered one per delay
      const t0 = performance.now();
      const parallel = await Promise.all([0, 1, 2, 3].map(() => attempt(port, "alice", "guess")));
      expect(parallel.every((r) => r.code === "28P01")).toBe(true);
      expect(performance.now() - t0).toBeGreaterThan(1_700);
      // a right password is not slowed, nor is another address, nor an HBA refusal (no password was tried)
      expect(await attempt(port, "alice", "alice-pw")).toMatchObject({ code: "ok" });
      expect((await attempt(port, "alice", "alice-pw")).ms).toBeLessThan(300);
      const other = await attempt(port, "alice", "guess", "127.0.0.2");
      expect(other.code).toBe("28P01");
      expect(other.ms).toBeLessThan(300);
      const rejected = await attempt(port, "rejected", "x");
      expect(rejected.code).toBe("28000");
      expect(rejected.ms).toBeLessThan(300);
      // every failure logged with who, where and why, never the password tried
      await expectLog(f.pb, '"code":"28000","reason":"pg_hba.conf rejects connection for host \\"127.0.0.1\\", user \\"rejected\\", database \\"app\\", no encryption"');
      const logs = f.pb.logs();
      expect(logs).toContain('"user":"nobody","database":"app","addr":"127.0.0.1"');
      expect(logs).toContain('"reason":"password authentication failed for user \\"alice\\""');
      expect(logs).toContain('"addr":"127.0.0.2"');
      expect(logs).not.toContain("guess");
      expect(logs).not.toContain("alice-pw");
    });
  });

  test("auth_failure_delay = 0 slows nothing", async () => {
    await withPgbun(pg, config(0), async (f) => {
      for (let i = 0; i < 10; i++) expect((await attempt(f.pb.port, "alice", "guess")).ms).toBeLessThan(300);
      const c = await pgConnect(f.pb, { user: "alice", password: "alice-pw", database: "app" });
      await c.end();
    });
  });
});
