// tcp_keepalive is acted on: pgbun's client and server TCP sockets carry a keepalive timer when it is on (the default), none when off.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { eventually, queryValue, tx, usePostgres, withPgbun } from "../harness/fixtures.ts";

setDefaultTimeout(60_000);
const pg = usePostgres();

/**
 * The timers `ss` shows on the established TCP sockets whose local port is `localPort` (pgbun's accepted client
 * sockets) or whose remote port is `remotePort` (pgbun's server sockets to PostgreSQL), owned by process `pid`.
 */
async function timers(pid: number, filter: string): Promise<string[]> {
  const p = Bun.spawn(["ss", "-tnoHp", "state", "established", filter], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return out
    .split("\n")
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => /timer:\((\w+)/.exec(l)?.[1] ?? "none");
}

describe("tcp_keepalive", () => {
  for (const on of [true, false]) {
    test(`tcp_keepalive = ${on}: the client's and the server's sockets ${on ? "have" : "have no"} keepalive timer`, async () => {
      await withPgbun(pg, { pgbun: tx(1, { tcp_keepalive: on }) }, async (f) => {
        const c = await f.login();
        expect(await queryValue(c, "SELECT 1")).toBe("1");
        const pid = f.pb.proc.pid;
        // a socket shows its keepalive timer once no retransmission timer ("on") runs: the last reply's ACK came
        let client: string[] = [];
        let server: string[] = [];
        await eventually(async () => {
          client = await timers(pid, `( sport = :${f.pb.port} )`);
          server = await timers(pid, `( dport = :${pg.port} )`);
          return ![...client, ...server].includes("on");
        }, 3_000);
        expect(client.length).toBeGreaterThan(0);
        expect(server.length).toBeGreaterThan(0);
        for (const t of [...client, ...server]) expect(t === "keepalive").toBe(on);
        // and start-up says nothing about it being ignored: it is acted on
        expect(f.pb.logs()).not.toContain("tcp_keepalive is accepted for PgBouncer compatibility and not acted on");
      });
    });
  }
});
