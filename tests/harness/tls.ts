// A throwaway certificate authority for TLS tests: CA, server cert (SAN 127.0.0.1/localhost), client cert, by openssl.
import { chmodSync, chownSync, copyFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { harnessTempDir, type TestPostgres } from "./postgres.ts";

const OPENSSL = "/usr/bin/openssl";

/** Files of one test CA (PEM), all in `dir`. */
export interface TestCerts {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** A client certificate with CN `clientCn`, signed by the CA. */
  clientCert: string;
  clientKey: string;
  clientCn: string;
}

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync([OPENSSL, ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

/**
 * Issues a certificate signed by the CA of `certs` into `dir`: `name`.crt and `name`.key; `san` as openssl's
 * subjectAltName value ("" for none).
 */
export function issueCert(certs: Pick<TestCerts, "dir" | "caCert" | "caKey">, name: string, cn: string, san: string, usage = "serverAuth"): { cert: string; key: string } {
  const dir = certs.dir;
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=${usage}\n${san ? `subjectAltName=${san}\n` : ""}`);
  openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", certs.caCert, "-CAkey", certs.caKey, "-CAcreateserial", "-days", "2", "-out", `${name}.crt`, "-extfile", ext], dir);
  chmodSync(join(dir, `${name}.key`), 0o600);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** A fresh CA with a server certificate for 127.0.0.1/localhost and a client certificate, in a harness temp dir. */
export async function makeTestCerts(prefix = "ca", clientCn = "postgres"): Promise<TestCerts> {
  const dir = await harnessTempDir(`tls-${prefix}`);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", `/CN=pgbun test CA ${prefix}`], dir);
  const base = { dir, caCert: join(dir, "ca.crt"), caKey: join(dir, "ca.key") };
  const server = issueCert(base, "server", "localhost", "IP:127.0.0.1,DNS:localhost");
  const client = issueCert(base, "client", clientCn, "", "clientAuth");
  return { ...base, serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key, clientCn };
}

/**
 * Turns TLS on in a running harness PostgreSQL with this CA's server certificate (the key owned by PostgreSQL's OS
 * user, mode 0600, as it insists), by ALTER SYSTEM and a reload: ssl can change without a restart.
 */
export async function enablePostgresSsl(pg: TestPostgres, certs: TestCerts, cert = certs.serverCert, key = certs.serverKey): Promise<void> {
  const { uid, gid } = statSync(pg.dataDir);
  for (const [from, to] of [
    [cert, "pgbun-server.crt"],
    [key, "pgbun-server.key"],
    [certs.caCert, "pgbun-ca.crt"],
  ] as const) {
    const dest = join(pg.dataDir, to);
    copyFileSync(from, dest);
    chownSync(dest, uid, gid);
    chmodSync(dest, 0o600);
  }
  // one statement per query: ALTER SYSTEM refuses the implicit transaction of a multi-statement one
  for (const sql of [`ssl_cert_file = 'pgbun-server.crt'`, `ssl_key_file = 'pgbun-server.key'`, `ssl_ca_file = 'pgbun-ca.crt'`, `ssl = on`]) {
    await pg.psql(`ALTER SYSTEM SET ${sql}`);
  }
  await pg.psql(`SELECT pg_reload_conf()`);
  // the reload is asynchronous: wait until the postmaster serves TLS
  for (let i = 0; i < 100; i++) {
    if ((await pg.psql(`SHOW ssl`)) === "on") return;
    await Bun.sleep(50);
  }
  throw new Error("PostgreSQL did not turn ssl on");
}

/** Turns TLS off again (ALTER SYSTEM RESET and a reload). */
export async function disablePostgresSsl(pg: TestPostgres): Promise<void> {
  await pg.psql(`ALTER SYSTEM RESET ssl`);
  await pg.psql(`SELECT pg_reload_conf()`);
  for (let i = 0; i < 100; i++) {
    if ((await pg.psql(`SHOW ssl`)) === "off") return;
    await Bun.sleep(50);
  }
  throw new Error("PostgreSQL did not turn ssl off");
}
