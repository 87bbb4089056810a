// The console's tls columns: SHOW CLIENTS' and SOCKETS' (a client's TLS session) and SHOW SERVERS' (a server's), protocol/cipher as PgBouncer prints them; empty in plaintext.
import { beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { closeAfterEach, pgConnect, usePostgres } from "../harness/fixtures.ts";
import { enablePostgresSsl, makeTestCerts, type TestCerts } from "../harness/tls.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();
let certs: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts("console-tls");
});

async function pooler(): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: {
      admin_users: ["admin"],
      client_tls_sslmode: "allow",
      client_tls_cert_file: certs.serverCert,
      client_tls_key_file: certs.serverKey,
      server_tls_sslmode: "disable",
    },
  });
  return track(p, (p) => p.stop());
}

test("the tls column shows a TLS client's protocol/cipher (what its socket negotiated) and nothing for a plaintext one", async () => {
  const p = await pooler();
  const secure = track(await pgConnect(p, { application_name: "secure", ssl: { ca: readFileSync(certs.caCert) } as never }), (c) => c.end());
  const plain = track(await pgConnect(p, { application_name: "plain", ssl: false as never }), (c) => c.end());
  await secure.query("SELECT 1");
  await plain.query("SELECT 1");
  const socket = (secure as unknown as { connection: { stream: TLSSocket } }).connection.stream;
  const a = track(await pgConnect(p, { user: "admin", database: "pgbouncer", ssl: false as never }), (c) => c.end());
  for (const what of ["CLIENTS", "SOCKETS"]) {
    const rows = (await a.query(`SHOW ${what}`)).rows as Array<{ application_name: string; type: string; tls: string }>;
    const tlsOf = (name: string) => rows.find((r) => r.type === "C" && r.application_name === name)!.tls;
    expect([what, tlsOf("plain")]).toEqual([what, ""]);
    expect(tlsOf("secure")).toMatch(/^TLSv1\.[23]\//);
    // the cipher as OpenSSL or IANA names it: both sides name the same suite
    const [proto, cipher] = tlsOf("secure").split("/");
    expect(proto).toBe(socket.getProtocol()!);
    expect([socket.getCipher().name, socket.getCipher().standardName]).toContain(cipher!);
  }
});

test("SHOW SERVERS' tls column: the server_tls_sslmode session's protocol/cipher, as PostgreSQL saw it; empty for a plaintext server", async () => {
  await enablePostgresSsl(pg, certs);
  const serverPooler = (mode: string) =>
    startTestPooler({
      upstream: { host: pg.host, port: pg.port, password: pg.password },
      settings: { admin_users: ["admin"], server_tls_sslmode: mode, server_tls_ca_file: certs.caCert, pool_mode: "session" },
    }).then((p) => track(p, (p) => p.stop()));
  for (const mode of ["require", "disable"]) {
    const p = await serverPooler(mode);
    const c = track(await pgConnect(p, { application_name: `over-${mode}` }), (c) => c.end());
    // what PostgreSQL says of the backend serving this client
    const seen = (await c.query("SELECT ssl, version, cipher, pg_backend_pid() AS pid FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0] as {
      ssl: boolean;
      version: string | null;
      cipher: string | null;
      pid: number;
    };
    const a = track(await pgConnect(p, { user: "admin", database: "pgbouncer" }), (c) => c.end());
    const rows = (await a.query("SHOW SERVERS")).rows as Array<{ remote_pid: string; tls: string; application_name: string }>;
    const row = rows.find((r) => Number(r.remote_pid) === seen.pid)!;
    expect(row.application_name).toBe(`over-${mode}`);
    if (mode === "disable") {
      expect(seen.ssl).toBe(false);
      expect(row.tls).toBe("");
    } else {
      expect(seen.ssl).toBe(true);
      expect(row.tls).toBe(`${seen.version}/${seen.cipher}`);
    }
  }
});
