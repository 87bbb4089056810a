// Integration: TLS between clients and pgbun (client_tls_*): each sslmode with pg, postgres.js and psql, client
// certificates, Client.tls as plugins see it, the plaintext-after-SSLRequest attack, the Unix socket, cert reload.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tls from "node:tls";
import postgres from "postgres";
import type { TLSSocket } from "node:tls";
import { closeAfterEach, findBinary, firstValue, pgConnect, rejection, runClientProgram, usePostgres } from "../harness/fixtures.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { clientTlsSessions, clientTlsSettings, copyServerCert, issueCert, makeTestCerts, replaceCert, type TestCerts } from "../harness/tls.ts";
import { errorFields, msg, WireClient } from "../harness/wire.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();
let certs: TestCerts;
/** A second CA: its certificates must not pass for the first's. */
let other: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts("client-side");
  other = await makeTestCerts("stranger");
});

async function pooler(mode: string, settings: Record<string, unknown> = {}): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: {
      ...clientTlsSettings(certs, mode),
      ...settings,
    },
  });
  return track(p, (p) => p.stop());
}

const ca = () => readFileSync(certs.caCert);
const clientCert = (c: TestCerts = certs) => ({ cert: readFileSync(c.clientCert), key: readFileSync(c.clientKey) });

/** A pg client through the pooler; `ssl` as pg takes it (false: plaintext). */
async function pgThrough(p: TestPooler, ssl: object | false) {
  const c = await pgConnect({ host: p.host, port: p.port }, { ssl: ssl as never }, { ignoreErrors: false });
  return track(c, (c) => c.end());
}

/** The pooler's logged-in clients' TLS sessions. */
const sessions = clientTlsSessions;

/** The socket pg talks over: a TLSSocket once it negotiated TLS. */
const streamOf = (c: unknown) => (c as { connection: { stream: TLSSocket & { encrypted?: boolean } } }).connection.stream;

describe("client_tls_sslmode", () => {
  test("disable: SSLRequest is answered N; a pg client asking for TLS is told the server has none", async () => {
    const p = await pooler("disable");
    const w = track(await WireClient.connect({ host: p.host, port: p.port }), (w) => w.destroy());
    w.send(msg.sslRequest());
    expect(await w.readByte()).toBe("N");
    const err = await rejection(pgConnect({ host: p.host, port: p.port }, { ssl: { ca: ca() } }, { ignoreErrors: false }));
    expect(err.message).toContain("does not support SSL");
  });

  test("prefer: pg with a verified TLS session and pg in plaintext are both served; Client.tls tells them apart", async () => {
    const p = await pooler("prefer");
    const secure = await pgThrough(p, { ca: ca(), servername: "localhost", rejectUnauthorized: true });
    expect(await firstValue(secure, "SELECT 1")).toBe(1);
    expect(streamOf(secure).encrypted).toBe(true);
    expect(streamOf(secure).getProtocol()).toMatch(/^TLSv1\.[23]$/);
    expect(sessions(p)).toEqual([{ protocol: streamOf(secure).getProtocol()!, cipher: streamOf(secure).getCipher().name, peerCommonName: null, peerVerified: false }]);

    const plain = await pgThrough(p, false);
    expect(await firstValue(plain, "SELECT 2")).toBe(2);
    expect(sessions(p).filter((t) => t === null).length).toBe(1);
  });

  test("prefer: a client certificate is asked for, verified and shown to plugins (peerCommonName, peerVerified)", async () => {
    const p = await pooler("prefer");
    const c = await pgThrough(p, { ca: ca(), servername: "localhost", ...clientCert() });
    expect(await firstValue(c, "SELECT 1")).toBe(1);
    expect(sessions(p)).toEqual([expect.objectContaining({ peerCommonName: certs.clientCn, peerVerified: true })]);
    // a certificate of another CA is no verified one: under prefer the client is served, and plugins see the difference
    const stranger = await pgThrough(p, { ca: ca(), servername: "localhost", ...clientCert(other) });
    expect(await firstValue(stranger, "SELECT 1")).toBe(1);
    expect(sessions(p)).toContainEqual(expect.objectContaining({ peerCommonName: other.clientCn, peerVerified: false }));
  });

  test("require: a plaintext StartupMessage is refused with 28000; TLS clients (pg, postgres.js) are served", async () => {
    const p = await pooler("require");
    const err = await rejection(pgConnect({ host: p.host, port: p.port }, { ssl: false }, { ignoreErrors: false }));
    expect(err.code).toBe("28000");
    expect(err.message).toBe("SSL required");
    // after a refused SSLRequest too: the plaintext client gets the same answer
    const w = track(await WireClient.connect({ host: p.host, port: p.port }), (w) => w.destroy());
    w.send(msg.startup({ user: "postgres", database: "app" }));
    const { messages, closed } = await w.readUntilClosed();
    expect(messages.map((m) => errorFields(m).C)).toEqual(["28000"]);
    expect(closed).toBe(true);

    const c = await pgThrough(p, { ca: ca(), servername: "localhost" });
    expect(await firstValue(c, "SELECT 1")).toBe(1);
    const sql = track(postgres({ host: p.host, port: p.port, user: pg.superuser, password: pg.password, database: "app", ssl: { ca: ca(), servername: "localhost" }, max: 1 }), (s) => s.end());
    expect((await sql`SELECT 3 AS n`)[0]!.n).toBe(3);
    expect(sessions(p).every((t) => t !== null && t.protocol.startsWith("TLSv1."))).toBe(true);
  });

  test("require: psql sslmode=require and sslmode=verify-full (by name and by IP) are served; a Unix-socket psql is not asked for TLS", async () => {
    const dir = await harnessTempDir("tls-unix");
    const p = await pooler("require", { unix_socket_dir: dir });
    const psql = findBinary("psql");
    const run = (conninfo: string) => runClientProgram(pg, [psql, "-X", "-At", "-d", conninfo, "-c", "SELECT 'in'"], { killAfterMs: 20_000 });
    const base = `port=${p.port} user=${pg.superuser} dbname=app`;
    for (const conninfo of [
      `host=127.0.0.1 ${base} sslmode=require`,
      `host=localhost ${base} sslmode=verify-full sslrootcert=${certs.caCert}`,
      `host=127.0.0.1 ${base} sslmode=verify-full sslrootcert=${certs.caCert}`,
    ]) {
      const r = await run(conninfo);
      expect({ conninfo, out: r.stdout.trim(), err: r.stderr }).toEqual({ conninfo, out: "in", err: "" });
    }
    // verify-full against a CA that did not sign pgbun's certificate fails in psql, as it must
    const wrong = await run(`host=localhost ${base} sslmode=verify-full sslrootcert=${other.caCert}`);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("certificate verify failed");
    // plaintext psql is refused over TCP, and served over the Unix socket (PgBouncer never asks those for TLS)
    const plain = await run(`host=127.0.0.1 ${base} sslmode=disable`);
    expect(plain.stderr).toContain("SSL required");
    const unix = await run(`host=${dir} ${base} sslmode=prefer`);
    expect({ out: unix.stdout.trim(), err: unix.stderr }).toEqual({ out: "in", err: "" });
  });

  for (const mode of ["verify-ca", "verify-full"]) {
    test(`${mode}: only a client certificate signed by client_tls_ca_file gets in`, async () => {
      const p = await pooler(mode);
      const ok = await pgThrough(p, { ca: ca(), servername: "localhost", ...clientCert() });
      expect(await firstValue(ok, "SELECT 1")).toBe(1);
      expect(sessions(p)).toEqual([expect.objectContaining({ peerCommonName: certs.clientCn, peerVerified: true })]);

      const none = await rejection(pgConnect({ host: p.host, port: p.port }, { ssl: { ca: ca(), servername: "localhost" } }, { ignoreErrors: false }));
      expect([none.code, none.message]).toEqual(["28000", "connection requires a valid client certificate"]);
      const stranger = await rejection(pgConnect({ host: p.host, port: p.port }, { ssl: { ca: ca(), servername: "localhost", ...clientCert(other) } }, { ignoreErrors: false }));
      expect([stranger.code, stranger.message]).toEqual(["28000", "connection requires a valid client certificate"]);
      const plain = await rejection(pgConnect({ host: p.host, port: p.port }, { ssl: false }, { ignoreErrors: false }));
      expect([plain.code, plain.message]).toEqual(["28000", "SSL required"]);
    });
  }
});

describe("a TLS client's read held while it waits for a server", () => {
  test("is relayed as it was sent, after other TLS clients' reads went through meanwhile (pgbun keeps it uncopied)", async () => {
    const p = await pooler("require", { pool_mode: "transaction", default_pool_size: 1 });
    const a = await pgThrough(p, { rejectUnauthorized: false });
    const b = await pgThrough(p, { rejectUnauthorized: false });
    const others = await Promise.all([1, 2, 3].map(() => pgThrough(p, { rejectUnauthorized: false })));
    await a.query("BEGIN"); // the pool's one server is a's until COMMIT
    const mine = `b-${"x".repeat(3000)}-b`;
    const held = b.query("SELECT $1::text AS v, length($1) AS n", [mine]);
    const queued = others.map((c, i) => c.query("SELECT $1::text AS v", [`other-${i}-${"y".repeat(2000 + i)}`]));
    // while b and the others wait, a's own TLS reads keep coming
    for (let i = 0; i < 50; i++) expect((await a.query("SELECT $1::text AS v", [`a-${i}-${"z".repeat(1000)}`])).rows[0].v).toBe(`a-${i}-${"z".repeat(1000)}`);
    await a.query("COMMIT");
    const r = await held;
    expect(r.rows[0]).toEqual({ v: mine, n: mine.length });
    const got = await Promise.all(queued);
    got.forEach((x, i) => expect(x.rows[0].v).toBe(`other-${i}-${"y".repeat(2000 + i)}`));
  });
});

describe("plaintext behind an SSLRequest (CVE-2021-23214, PgBouncer CVE-2021-3935)", () => {
  for (const mode of ["prefer", "disable"]) {
    test(`${mode}: a StartupMessage in the same write as the SSLRequest is refused with 08P01, nothing logs in`, async () => {
      const p = await pooler(mode);
      const w = track(await WireClient.connect({ host: p.host, port: p.port }), (w) => w.destroy());
      w.send(Buffer.concat([msg.sslRequest(), msg.startup({ user: "postgres", database: "app" })]));
      // refusing TLS, PostgreSQL answers 'N' and then refuses (checked against PostgreSQL 15); offering it, pgbun
      // refuses before its 'S', so no handshake starts over the injected bytes
      if (mode === "disable") expect(await w.readByte()).toBe("N");
      const { messages, closed } = await w.readUntilClosed();
      expect(messages.map((m) => [m.type, errorFields(m).C, errorFields(m).M])).toEqual([["E", "08P01", "received unencrypted data after SSL request"]]);
      expect(closed).toBe(true);
      expect(sessions(p)).toEqual([]);
    });

    test(`${mode}: the same with GSSENCRequest`, async () => {
      const p = await pooler(mode);
      const w = track(await WireClient.connect({ host: p.host, port: p.port }), (w) => w.destroy());
      w.send(Buffer.concat([msg.gssencRequest(), msg.startup({ user: "postgres", database: "app" })]));
      // GSS encryption is never offered: its 'N', then the refusal, as PostgreSQL
      expect(await w.readByte()).toBe("N");
      const { messages, closed } = await w.readUntilClosed();
      expect(messages.map((m) => [m.type, errorFields(m).C])).toEqual([["E", "08P01"]]);
      expect(closed).toBe(true);
      expect(sessions(p)).toEqual([]);
    });
  }

  test("prefer: a plaintext StartupMessage after the S, before the handshake, fails the TLS session and logs nobody in", async () => {
    const p = await pooler("prefer");
    const w = track(await WireClient.connect({ host: p.host, port: p.port }), (w) => w.destroy());
    w.send(msg.sslRequest());
    expect(await w.readByte()).toBe("S");
    w.send(msg.startup({ user: "postgres", database: "app" }));
    expect(await w.waitClosed()).toBe(true);
    expect(sessions(p)).toEqual([]);
  });
});

describe("certificate reload", () => {
  test("RELOAD re-reads client_tls_cert_file and client_tls_key_file: new connections get the new certificate", async () => {
    const { cert, key } = await copyServerCert(certs, "tls-reload");
    const p = await pooler("require", { client_tls_cert_file: cert, client_tls_key_file: key });
    const before = await pgThrough(p, { ca: ca(), servername: "localhost" });
    expect(await firstValue(before, "SELECT 1")).toBe(1);

    // the other CA's server certificate replaces the file; until the reload, pgbun serves the one it read
    const next = issueCert(other, "pgbun-next", "localhost", "IP:127.0.0.1,DNS:localhost");
    replaceCert({ cert, key }, next);
    const stillOld = await pgThrough(p, { ca: ca(), servername: "localhost" });
    expect(await firstValue(stillOld, "SELECT 1")).toBe(1);

    await p.core.reloadConfig();
    const oldCa = await rejection(pgConnect({ host: p.host, port: p.port }, { ssl: { ca: ca(), servername: "localhost" } }, { ignoreErrors: false }));
    expect(oldCa.message).toMatch(/certificate|verify/i);
    const newCa = await pgThrough(p, { ca: readFileSync(other.caCert), servername: "localhost" });
    expect(await firstValue(newCa, "SELECT 1")).toBe(1);
    // the session that started before the reload goes on
    expect(await firstValue(before, "SELECT 2")).toBe(2);
  });

  test("a reload with an unreadable key fails and keeps the running certificate", async () => {
    const { dir, key } = await copyServerCert(certs, "tls-reload-bad");
    const p = await pooler("require", { client_tls_key_file: key });
    const next = { ...p.core.config, settings: { ...p.core.config.settings, client_tls_key_file: join(dir, "missing.key") } };
    expect(() => p.core.reload(next)).toThrow(/client_tls_key_file/);
    const c = await pgThrough(p, { ca: ca(), servername: "localhost" });
    expect(await firstValue(c, "SELECT 1")).toBe(1);
  });
});

// keep node:tls referenced for direct-TLS tests below
void tls;
