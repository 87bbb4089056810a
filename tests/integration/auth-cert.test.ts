// Integration: certificate authentication (auth_type cert, and the HBA method cert on hostssl lines) with pg and psql
// over TLS: a verified client certificate whose CN is the user gets in without a password; another user's name, no
// certificate, or one from a CA pgbun does not trust is 28000; hostssl and hostnossl lines follow the client's TLS.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary, firstValue, pgConnect, usePostgres, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { issueCert, makeTestCerts, type TestCerts } from "../harness/tls.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = mkdtempSync(join(tmpdir(), "pgbun-cert-"));
const authFile = join(dir, "userlist.txt");
const hbaFile = join(dir, "pg_hba.conf");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let certs: TestCerts;
let stranger: TestCerts;
let bob: { cert: string; key: string };
beforeAll(async () => {
  certs = await makeTestCerts("auth-cert", "alice");
  stranger = await makeTestCerts("auth-cert-stranger", "alice");
  bob = issueCert(certs, "bob", "bob", "", "clientAuth");
  writeFileSync(authFile, `"alice" "alice-pw"\n"carol" "carol-pw"\n`);
  writeFileSync(
    hbaFile,
    ["hostssl   all all   127.0.0.1/32 cert", "hostnossl all carol 127.0.0.1/32 password", "host      all all   127.0.0.1/32 md5"].join("\n"),
  );
});

function config(authType: string): Record<string, unknown> {
  return {
    pgbun: {
      auth_type: authType,
      auth_file: authFile,
      auth_hba_file: hbaFile,
      // TLS offered, a client certificate asked for but not required by TLS itself: the auth method decides
      client_tls_sslmode: "prefer",
      client_tls_cert_file: certs.serverCert,
      client_tls_key_file: certs.serverKey,
      client_tls_ca_file: certs.caCert,
      server_tls_sslmode: "disable",
    },
    databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } },
  };
}

type Key = { cert: string; key: string } | null;
/** The client certificate with CN alice. */
const alice = () => ({ cert: certs.clientCert, key: certs.clientKey });

/** pg over TLS (or plaintext with `ssl` false), with a client certificate or none: "ok" or SQLSTATE and message. */
async function pgLogin(f: PgbunFixture, user: string, key: Key, ssl = true, password = ""): Promise<string> {
  const tls = ssl ? { ca: readFileSync(certs.caCert), servername: "localhost", ...(key ? { cert: readFileSync(key.cert), key: readFileSync(key.key) } : {}) } : false;
  try {
    const c = await pgConnect(f.pb, { user, password, database: "app", ssl: tls as never }, { ignoreErrors: false });
    try {
      expect(await firstValue(c, "SELECT 1")).toBe(1);
    } finally {
      await c.end();
    }
    return "ok";
  } catch (err) {
    const e = err as { code?: string; message: string };
    return `${e.code} ${e.message}`;
  }
}

async function psqlLogin(f: PgbunFixture, user: string, key: { cert: string; key: string }): Promise<string> {
  const conn = `host=127.0.0.1 port=${f.pb.port} user=${user} dbname=app sslmode=verify-ca sslrootcert=${certs.caCert} sslcert=${key.cert} sslkey=${key.key}`;
  const proc = Bun.spawn([findBinary("psql"), "-X", "-Atc", "SELECT 1", conn], { env: { ...process.env, PGPASSWORD: "", LANG: "C", LC_ALL: "C" }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return code === 0 ? "ok" : `${out}${err}`.trim();
}

const noCert = "28000 connection requires a valid client certificate";

describe("auth_type cert", () => {
  test("the certificate's CN is the user: no password asked; another name, no certificate, an untrusted CA, plaintext: 28000", async () => {
    await withPgbun(pg, config("cert"), async (f) => {
      expect(await pgLogin(f, "alice", alice())).toBe("ok");
      expect(await psqlLogin(f, "alice", alice())).toBe("ok");
      expect(await pgLogin(f, "bob", bob)).toBe("ok");
      expect(await pgLogin(f, "alice", bob)).toBe('28000 certificate authentication failed for user "alice"');
      expect(await psqlLogin(f, "alice", bob)).toContain('certificate authentication failed for user "alice"');
      expect(await pgLogin(f, "alice", null)).toBe(noCert);
      // a certificate with the right CN from a CA pgbun does not trust is no certificate at all
      expect(await pgLogin(f, "alice", { cert: stranger.clientCert, key: stranger.clientKey })).toBe(noCert);
      expect(await pgLogin(f, "alice", null, false, "alice-pw")).toBe(noCert);
    });
  });
});

describe("HBA method cert and hostssl / hostnossl", () => {
  test("TLS clients take the hostssl cert line; plaintext ones the lines after it; the no-entry message says SSL encryption", async () => {
    await withPgbun(pg, config("hba"), async (f) => {
      expect(await pgLogin(f, "alice", alice())).toBe("ok");
      expect(await pgLogin(f, "alice", null)).toBe(noCert);
      expect(await pgLogin(f, "carol", bob)).toBe('28000 certificate authentication failed for user "carol"');
      // plaintext: hostssl is skipped; carol's hostnossl line asks a cleartext password, alice's host line md5
      expect(await pgLogin(f, "carol", null, false, "carol-pw")).toBe("ok");
      expect(await pgLogin(f, "alice", null, false, "alice-pw")).toBe("ok");
      expect(await pgLogin(f, "alice", null, false, "wrong")).toBe('28P01 password authentication failed for user "alice"');
    });
    writeFileSync(join(dir, "nossl-only.conf"), "hostnossl all all 127.0.0.1/32 md5\n");
    await withPgbun(pg, { ...config("hba"), pgbun: { ...(config("hba").pgbun as object), auth_hba_file: join(dir, "nossl-only.conf") } }, async (f) => {
      expect(await pgLogin(f, "alice", alice())).toBe('28000 no pg_hba.conf entry for host "127.0.0.1", user "alice", database "app", SSL encryption');
      expect(await pgLogin(f, "alice", null, false, "alice-pw")).toBe("ok");
    });
  });
});
