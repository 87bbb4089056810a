// SHOW CLIENTS' and SHOW SOCKETS' tls column: protocol/cipher of a client's TLS session, as PgBouncer prints it; empty in plaintext.
import { beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { closeAfterEach, pgConnect, usePostgres } from "../harness/fixtures.ts";
import { makeTestCerts, type TestCerts } from "../harness/tls.ts";
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
