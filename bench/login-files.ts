// The files the login and TLS benchmark rows give both poolers: an auth_file with the user's SCRAM secret, a TLS cert.
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { harnessTempDir, type TestPostgres } from "../tests/harness/postgres.ts";

export interface LoginFiles {
  /** userlist.txt with the superuser's SCRAM secret as PostgreSQL stores it (pg_authid.rolpassword). */
  authFile: string;
  /** A throwaway self-signed certificate (CN localhost, SAN 127.0.0.1) and its key, for client_tls_*. */
  certFile: string;
  keyFile: string;
}

const cache = new WeakMap<TestPostgres, Promise<LoginFiles>>();

async function make(pg: TestPostgres): Promise<LoginFiles> {
  // forPostgres: readable by the unprivileged OS user PgBouncer runs as
  const dir = await harnessTempDir("bench-login", { forPostgres: true });
  const secret = (await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${pg.superuser}'`)).trim();
  if (!secret.startsWith("SCRAM-SHA-256$")) throw new Error(`the bench's superuser has no SCRAM secret (got ${secret.slice(0, 14)}…)`);
  const authFile = join(dir, "userlist-scram.txt");
  writeFileSync(authFile, `"${pg.superuser}" "${secret}"\n`);
  const certFile = join(dir, "server.crt");
  const keyFile = join(dir, "server.key");
  const proc = Bun.spawn(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", keyFile, "-out", certFile],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`openssl could not make the bench's TLS certificate: ${err.trim()}`);
  for (const f of [authFile, certFile, keyFile]) chmodSync(f, 0o644);
  return { authFile, certFile, keyFile };
}

/** The files for `pg`, made once per PostgreSQL instance. */
export function loginFiles(pg: TestPostgres): Promise<LoginFiles> {
  let p = cache.get(pg);
  if (!p) cache.set(pg, (p = make(pg)));
  return p;
}
