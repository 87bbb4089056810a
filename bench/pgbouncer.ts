// Finds or installs Debian's PgBouncer and runs throwaway instances of it, unprivileged, on free ports.
import type { Subprocess } from "bun";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitForPort } from "../tests/harness/pgbun.ts";
import { freePort, harnessTempDir, trackChildProcess, type TestPostgres } from "../tests/harness/postgres.ts";
import { killProcess, onCleanup, trackProcess } from "./processes.ts";

/** OS user the harness runs PostgreSQL as; PgBouncer refuses root too. */
const OS_USER = "pgbun";

export interface PgbouncerInstance {
  host: string;
  port: number;
  pid: number;
  proc: Subprocess;
  logFile: string;
  /** Its log file and stderr so far. */
  logs(): string;
  stop(): Promise<void>;
}

async function sh(cmd: string[]): Promise<{ code: number; output: string }> {
  try {
    const proc = trackProcess(Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }));
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, output: out + err };
  } catch (err) {
    return { code: 127, output: String(err) };
  }
}

/** The pgbouncer binary; installs Debian's package (apt-get update first if needed) when missing and we are root. */
export async function ensurePgbouncer(): Promise<string> {
  const found = Bun.which("pgbouncer") ?? Bun.which("pgbouncer", { PATH: "/usr/sbin:/usr/local/sbin:/sbin" });
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error("pgbouncer is not installed (apt-get install -y pgbouncer as root)");
  console.error("bench: installing pgbouncer (apt-get install -y pgbouncer)");
  let res = await sh(["apt-get", "install", "-y", "pgbouncer"]);
  if (res.code !== 0) {
    await sh(["apt-get", "update"]);
    res = await sh(["apt-get", "install", "-y", "pgbouncer"]);
  }
  if (res.code !== 0) throw new Error(`apt-get install -y pgbouncer failed:\n${res.output.slice(-2000)}`);
  // the package may start its own service on port 6432: stop it, it is not ours to measure
  if ((await sh(["service", "pgbouncer", "status"])).code === 0) await sh(["service", "pgbouncer", "stop"]);
  const installed = Bun.which("pgbouncer", { PATH: "/usr/sbin:/usr/bin:/usr/local/sbin" });
  if (!installed) throw new Error("pgbouncer installed but not found on /usr/sbin");
  return installed;
}

/** PgBouncer tracks protocol-level named statements in transaction mode (max_prepared_statements) from 1.21 on. */
export function hasMaxPreparedStatements(version: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m !== null && (Number(m[1]) > 1 || (Number(m[1]) === 1 && Number(m[2]) >= 21));
}

export async function pgbouncerVersion(binary: string): Promise<string> {
  const res = await sh([binary, "--version"]);
  return /PgBouncer\s+(\S+)/.exec(res.output)?.[1] ?? "unknown";
}

async function osUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = await sh(["id", "-u", OS_USER]);
  const gid = await sh(["id", "-g", OS_USER]);
  if (uid.code !== 0 || gid.code !== 0) throw new Error(`OS user ${OS_USER} missing (the PostgreSQL harness creates it)`);
  return { uid: Number(uid.output.trim()), gid: Number(gid.output.trim()) };
}

function readFileOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

export interface PgbouncerOptions {
  poolMode: "session" | "transaction" | "statement";
  poolSize: number;
  maxClientConn: number;
  /** server_idle_timeout in seconds (0: never close an idle server); PgBouncer's default (600) when absent. */
  serverIdleTimeout?: number;
  /** max_prepared_statements (PgBouncer 1.21+ only: see hasMaxPreparedStatements); not written when absent. */
  maxPreparedStatements?: number;
  /** auth_type = scram-sha-256 with this auth_file (bench/login-files.ts) instead of trust. */
  scramAuthFile?: string;
  /** client_tls_sslmode = require with this certificate and key. */
  clientTls?: { certFile: string; keyFile: string };
  /** A command PgBouncer runs under (valgrind for bench/instructions.ts), after the change of OS user. */
  wrap?: string[];
}

function iniText(pg: TestPostgres, port: number, dir: string, o: PgbouncerOptions): string {
  return `;; pgbun benchmark: throwaway PgBouncer
[databases]
* = host=${pg.host} port=${pg.port} user=${pg.superuser} password=${pg.password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = ${o.scramAuthFile ? "scram-sha-256" : "trust"}
auth_file = ${o.scramAuthFile ?? join(dir, "userlist.txt")}
${o.clientTls ? `client_tls_sslmode = require\nclient_tls_cert_file = ${o.clientTls.certFile}\nclient_tls_key_file = ${o.clientTls.keyFile}\n` : ""}admin_users = ${pg.superuser}
pool_mode = ${o.poolMode}
default_pool_size = ${o.poolSize}
max_client_conn = ${o.maxClientConn}
${o.serverIdleTimeout === undefined ? "" : `server_idle_timeout = ${o.serverIdleTimeout}\n`}${o.maxPreparedStatements === undefined ? "" : `max_prepared_statements = ${o.maxPreparedStatements}\n`}ignore_startup_parameters = extra_float_digits
logfile = ${join(dir, "pgbouncer.log")}
log_connections = 0
log_disconnections = 0
`;
}

/** Starts PgBouncer as the unprivileged OS user (setpriv keeps the pid: it is PgBouncer's own) and waits for its port. */
export async function startPgbouncer(binary: string, pg: TestPostgres, o: PgbouncerOptions): Promise<PgbouncerInstance> {
  const dir = await harnessTempDir("pgbouncer", { forPostgres: true });
  const user = await osUser();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const ini = join(dir, "pgbouncer.ini");
    writeFileSync(ini, iniText(pg, port, dir, o));
    writeFileSync(join(dir, "userlist.txt"), `"${pg.superuser}" "${pg.password}"\n`);
    if (user) for (const f of ["pgbouncer.ini", "userlist.txt"]) chownSync(join(dir, f), user.uid, user.gid);
    const run = [...(o.wrap ?? []), binary, ini];
    const cmd = user ? ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", ...run] : run;
    const proc = trackProcess(Bun.spawn(cmd, { cwd: dir, stdin: "ignore", stdout: "ignore", stderr: "pipe" }));
    const stderrChunks: string[] = [];
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) stderrChunks.push(decoder.decode(chunk, { stream: true }));
    })().catch(() => undefined);
    trackChildProcess(dir, proc);
    const ready = await Promise.race([
      waitForPort("127.0.0.1", port, o.wrap ? 120_000 : 10_000).then(
        () => "up" as const,
        () => "timeout" as const,
      ),
      proc.exited.then(() => "exited" as const),
    ]);
    if (ready === "up") {
      const instance: PgbouncerInstance = {
        host: "127.0.0.1",
        port,
        pid: proc.pid,
        proc,
        logFile: join(dir, "pgbouncer.log"),
        logs: () => `${readFileOr(join(dir, "pgbouncer.log"))}${stderrChunks.join("")}`,
        stop: () => killProcess(proc, "SIGTERM"),
      };
      onCleanup(instance.stop);
      return instance;
    }
    await killProcess(proc, "SIGKILL");
    await Bun.sleep(100);
    const log = readFileOr(join(dir, "pgbouncer.log"));
    const stderr = stderrChunks.join("");
    if (attempt < 3 && /address already in use/i.test(log + stderr)) continue;
    throw new Error(`pgbouncer did not start (${ready}):\n${stderr}\n${log.slice(-2000)}`);
  }
}
