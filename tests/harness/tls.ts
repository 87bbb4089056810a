// A throwaway certificate authority for TLS tests: CA, server cert (SAN 127.0.0.1/localhost), client cert, by openssl.
import { chmodSync, chownSync, copyFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { harnessTempDir, type TestPostgres } from "./postgres.ts";
import type { TestPooler } from "../../bin/testing.ts";
import type { ClientConnection } from "../../core/client.ts";
import type { ClientTls } from "../../plugin-sdk/connections.ts";

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

/** pgbun's client-side TLS settings (client_tls_*) with this CA's server certificate, none for `disable`; servers plaintext. */
export function clientTlsSettings(certs: TestCerts, mode: string): Record<string, unknown> {
  return {
    client_tls_sslmode: mode,
    ...(mode === "disable" ? {} : { client_tls_cert_file: certs.serverCert, client_tls_key_file: certs.serverKey, client_tls_ca_file: certs.caCert }),
    // the client side is under test: the server side stays plaintext (tls-server.test.ts covers it)
    server_tls_sslmode: "disable",
  };
}

/** The CA's server certificate and key copied into a fresh folder, for a test that replaces them and reloads. */
export async function copyServerCert(certs: TestCerts, prefix: string): Promise<{ dir: string; cert: string; key: string }> {
  const dir = await harnessTempDir(prefix);
  const cert = join(dir, "pgbun.crt");
  const key = join(dir, "pgbun.key");
  copyFileSync(certs.serverCert, cert);
  copyFileSync(certs.serverKey, key);
  return { dir, cert, key };
}

/** Overwrites the files of `at` with another certificate and key (what a reload should then read). */
export function replaceCert(at: { cert: string; key: string }, next: { cert: string; key: string }): void {
  copyFileSync(next.cert, at.cert);
  copyFileSync(next.key, at.key);
}

/** The TLS sessions of a test pooler's logged-in clients (Client.tls), null for a plaintext one. */
export function clientTlsSessions(p: TestPooler): Array<ClientTls | null> {
  return [...(p.core.clients as Iterable<ClientConnection>)].filter((c) => c.state === "active").map((c) => c.tls);
}
