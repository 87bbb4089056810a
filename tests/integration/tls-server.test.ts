// Integration: TLS between pgbun and PostgreSQL (server_tls_*): each sslmode against a PostgreSQL with ssl on and
// off, verify-ca/verify-full against a wrong CA and a wrong host name, the client certificate pgbun presents.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { closeAfterEach, firstValue, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { disablePostgresSsl, enablePostgresSsl, issueCert, makeTestCerts, type TestCerts } from "../harness/tls.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const track = closeAfterEach();
let certs: TestCerts;
let other: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts("server-side");
  other = await makeTestCerts("server-stranger");
});

async function pooler(mode: string, settings: Record<string, unknown> = {}, host = pg.host): Promise<TestPooler> {
  const p = await startTestPooler({
    upstream: { host, port: pg.port, password: pg.password },
    // a failed login is retried (pgbun:backoff) and the waiting client gets its error by query_wait_timeout
    settings: { server_tls_sslmode: mode, pool_mode: "transaction", query_wait_timeout: 2, ...settings },
  });
  return track(p, (p) => p.stop());
}

const client = async (p: TestPooler) => track(await pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }), (c) => c.end());
/** Whether the server session the client is given runs over TLS, as PostgreSQL sees it. */
const serverSsl = (c: Awaited<ReturnType<typeof client>>) => firstValue(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");

describe("against a PostgreSQL with ssl off", () => {
  for (const mode of ["disable", "allow", "prefer"]) {
    test(`${mode}: logs in in plaintext`, async () => {
      const p = await pooler(mode);
      const c = await client(p);
      expect(await serverSsl(c)).toBe(false);
    });
  }

  for (const mode of ["require", "verify-ca", "verify-full"]) {
    test(`${mode}: the login fails and the waiting client is told why (08006)`, async () => {
      const p = await pooler(mode, mode === "require" ? {} : { server_tls_ca_file: certs.caCert });
      const err = await rejection(pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }));
      expect(err.code).toBe("08006");
      expect(err.message).toContain(`server does not support TLS (server_tls_sslmode ${mode})`);
    });
  }
});

test("a TLS refusal is permanent for pgbun:backoff: with the default query_wait_timeout the client is told at once", async () => {
  // require against a server without TLS: nothing changes until the config or the server does
  const p = await pooler("require", { query_wait_timeout: 120 });
  const started = Date.now();
  const err = await rejection(pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }));
  expect(err.code).toBe("08006");
  expect(err.message).toContain("server does not support TLS (server_tls_sslmode require)");
  expect(Date.now() - started).toBeLessThan(5_000);
});

describe("against a PostgreSQL with ssl on", () => {
  beforeAll(() => enablePostgresSsl(pg, certs));
  afterAll(() => disablePostgresSsl(pg));

  for (const mode of ["allow", "prefer", "require"]) {
    test(`${mode}: logs in over TLS, without checking the certificate`, async () => {
      // the CA given is not the one that signed PostgreSQL's certificate: these modes do not look
      const p = await pooler(mode, { server_tls_ca_file: other.caCert });
      const c = await client(p);
      expect(await serverSsl(c)).toBe(true);
    });
  }

  test("disable: logs in in plaintext though the server offers TLS", async () => {
    const p = await pooler("disable");
    expect(await serverSsl(await client(p))).toBe(false);
  });

  for (const mode of ["verify-ca", "verify-full"]) {
    test(`${mode}: the right CA logs in over TLS; a wrong CA fails the login with 08006`, async () => {
      const ok = await pooler(mode, { server_tls_ca_file: certs.caCert });
      expect(await serverSsl(await client(ok))).toBe(true);

      // with the default query_wait_timeout: a certificate that does not verify is told at once (permanent)
      const wrong = await pooler(mode, { server_tls_ca_file: other.caCert, query_wait_timeout: 120 });
      const err = await rejection(pgConnect({ host: wrong.host, port: wrong.port }, {}, { ignoreErrors: false }));
      expect(err.code).toBe("08006");
      expect(err.message).toContain(`server certificate verification failed (server_tls_sslmode ${mode})`);
    });
  }

  test("verify-full checks the host name (by name and by IP); verify-ca does not", async () => {
    // PostgreSQL's certificate names 127.0.0.1 and localhost: both pass verify-full
    for (const host of ["127.0.0.1", "localhost"]) {
      const p = await pooler("verify-full", { server_tls_ca_file: certs.caCert }, host);
      expect(await serverSsl(await client(p))).toBe(true);
    }
    // a certificate of the right CA for another name
    const elsewhere = issueCert(certs, "elsewhere", "db.elsewhere.example", "DNS:db.elsewhere.example");
    await enablePostgresSsl(pg, certs, elsewhere.cert, elsewhere.key);
    try {
      const full = await pooler("verify-full", { server_tls_ca_file: certs.caCert });
      const err = await rejection(pgConnect({ host: full.host, port: full.port }, {}, { ignoreErrors: false }));
      expect(err.code).toBe("08006");
      expect(err.message).toContain("server certificate verification failed (server_tls_sslmode verify-full)");
      expect(err.message).toContain("127.0.0.1");
      const ca = await pooler("verify-ca", { server_tls_ca_file: certs.caCert });
      expect(await serverSsl(await client(ca))).toBe(true);
      // a wrong name and a wrong CA: verify-ca fails on the CA
      const both = await pooler("verify-ca", { server_tls_ca_file: other.caCert });
      const err2 = await rejection(pgConnect({ host: both.host, port: both.port }, {}, { ignoreErrors: false }));
      expect(err2.message).toContain("server certificate verification failed (server_tls_sslmode verify-ca)");
      // require looks at neither
      const req = await pooler("require", { server_tls_ca_file: other.caCert });
      expect(await serverSsl(await client(req))).toBe(true);
    } finally {
      await enablePostgresSsl(pg, certs);
    }
  });

  test("server_tls_cert_file and server_tls_key_file: PostgreSQL sees pgbun's client certificate", async () => {
    const p = await pooler("verify-full", { server_tls_ca_file: certs.caCert, server_tls_cert_file: certs.clientCert, server_tls_key_file: certs.clientKey });
    const c = await client(p);
    expect(await firstValue(c, "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).toBe(`/CN=${certs.clientCn}`);
    const none = await pooler("verify-full", { server_tls_ca_file: certs.caCert });
    expect(await firstValue(await client(none), "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).toBe(null);
  });

  test("servers opened over TLS serve the next client too (the pool reuses them)", async () => {
    const p = await pooler("require", { default_pool_size: 1 });
    const a = await client(p);
    const pid = await firstValue(a, "SELECT pg_backend_pid()");
    await a.end();
    const b = await client(p);
    expect(await firstValue(b, "SELECT pg_backend_pid()")).toBe(pid);
    expect(await serverSsl(b)).toBe(true);
    // a big result crosses many TLS records intact
    expect(await firstValue(b, "SELECT length(string_agg(md5(i::text), '')) FROM generate_series(1, 20000) i")).toBe(640000);
  });
});

describe("a hostile server", () => {
  test("bytes after its S, before the handshake (CVE-2021-23222 class), end the login: the client gets 08006", async () => {
    // answers SSLRequest with S and, in the same write, an AuthenticationOk that no TLS protected
    const fake = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data(s) { s.write(Buffer.from([0x53, 0x52, 0, 0, 0, 8, 0, 0, 0, 0])); } },
    });
    try {
      const p = await startTestPooler({ upstream: { host: "127.0.0.1", port: fake.port, password: "x" }, settings: { server_tls_sslmode: "prefer", query_wait_timeout: 2 } });
      track(p, (p) => p.stop());
      const err = await rejection(pgConnect({ host: p.host, port: p.port }, {}, { ignoreErrors: false }));
      expect(err.code).toBe("08006");
      expect(err.message).toContain("server sent unencrypted data after its SSL response");
    } finally {
      fake.stop(true);
    }
  });
});
