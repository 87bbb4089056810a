// Integration: certificate authentication (auth_type cert, and the HBA method cert on hostssl lines) with pg and psql
// over TLS: a verified client certificate whose CN is the user gets in without a password; another user's name, no
// certificate, or one from a CA pgbun does not trust is 28000; hostssl and hostnossl lines follow the client's TLS.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { usePostgres, withPgbun, type PgbunFixture } from "../harness/fixtures.ts";
import { authDir, pgLogin as pgLoginTo, psqlLogin as psqlLoginTo } from "../harness/auth.ts";
import { clientTlsSettings, issueCert, makeTestCerts, type TestCerts } from "../harness/tls.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = authDir("cert");
const authFile = join(dir, "userlist.txt");
const hbaFile = join(dir, "pg_hba.conf");

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
      ...clientTlsSettings(certs, "prefer"),
    },
    databases: { "*": { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password } },
  };
}

type Key = { cert: string; key: string } | null;
/** The client certificate with CN alice. */
const alice = () => ({ cert: certs.clientCert, key: certs.clientKey });

/** pg over TLS (or plaintext with `ssl` false), with a client certificate or none: "ok" or SQLSTATE and message. */
function pgLogin(f: PgbunFixture, user: string, key: Key, ssl = true, password = ""): Promise<string> {
  const tls = ssl ? { ca: readFileSync(certs.caCert), servername: "localhost", ...(key ? { cert: readFileSync(key.cert), key: readFileSync(key.key) } : {}) } : false;
  return pgLoginTo(f.pb, { user, password, database: "app", ssl: tls as never }, undefined, { ignoreErrors: false });
}

function psqlLogin(f: PgbunFixture, user: string, key: { cert: string; key: string }): Promise<string> {
  const conn = `host=127.0.0.1 port=${f.pb.port} user=${user} dbname=app sslmode=verify-ca sslrootcert=${certs.caCert} sslcert=${key.cert} sslkey=${key.key}`;
  return psqlLoginTo(["-Atc", "SELECT 1", conn], "");
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
