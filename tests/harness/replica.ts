// A primary and a streaming replica for tests: startPostgres() for the primary, pg_basebackup -R for the standby.
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "pg";
import { execAsPg, freePort, harnessTempDir, startPostgres, TEST_ROLES, type TestPostgres } from "./postgres.ts";

/** A hot standby of a TestPostgres: its own data dir, port and log; promote() makes it a primary. */
export interface TestStandby {
  host: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** Run SQL as the superuser (as TestPostgres.psql: `psql -At`-like text). */
  psql(sql: string, db?: string): Promise<string>;
  /** pg_promote(), waiting until it has left recovery. */
  promote(): Promise<void>;
  /** Immediate shutdown; the data is kept. */
  stopServer(): Promise<void>;
  /** Immediate shutdown and removal. Idempotent. */
  stop(): Promise<void>;
}

export interface TestReplicaSet {
  primary: TestPostgres;
  standby: TestStandby;
  /** Resolves once the standby has replayed everything the primary has written so far. */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";

async function query(port: number, sql: string, db = "postgres"): Promise<string> {
  const { user, password } = TEST_ROLES.superuser;
  const client = new Client({ host: HOST, port, user, password, database: db, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const r = await client.query<unknown[]>({ text: sql, rowMode: "array" });
    return r.rows.map((row) => row.map((v) => (v === null ? "" : String(v))).join("|")).join("\n");
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

async function run(cmd: string[], cwd: string, what: string): Promise<void> {
  const res = await execAsPg(cmd, cwd);
  if (res.code !== 0) throw new Error(`${what} failed (exit ${res.code}): ${cmd.join(" ")}\n${res.output}`);
}

/**
 * A primary (a fresh startPostgres(), wal_level replica as PostgreSQL's default, replication trusted from loopback)
 * and a hot standby streaming from it: pg_basebackup -R into a second data dir, started on another free port.
 */
export async function startReplicaSet(): Promise<TestReplicaSet> {
  const primary = await startPostgres();
  const level = await primary.psql("SHOW wal_level");
  if (level !== "replica" && level !== "logical") throw new Error(`the primary's wal_level is ${level}: a standby needs replica`);
  await appendFile(join(primary.dataDir, "pg_hba.conf"), `host replication all ${HOST}/32 trust\n`);
  await primary.psql("SELECT pg_reload_conf()");

  const dir = await harnessTempDir("standby", { forPostgres: true });
  const dataDir = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const bin = (p: string) => join(primary.binDir, p);
  const basebackup = [bin("pg_basebackup"), "-h", HOST, "-p", String(primary.port), "-U", TEST_ROLES.superuser.user, "-D", dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync"];
  await run(basebackup, dir, "pg_basebackup");
  const port = await freePort();
  let running = false;
  let removed = false;
  const start = ["pg_ctl", "start", "-w", "-t", "30", "-s", "-D", dataDir, "-l", logFile, "-o", `-p ${port} -k '${dir}'`];
  await run([bin(start[0]!), ...start.slice(1)], dir, "starting the standby").catch(async (err: Error) => {
    throw new Error(`${err.message}\n--- ${logFile} ---\n${await readFile(logFile, "utf8").catch(() => "")}`);
  });
  running = true;
  const stopServer = async () => {
    if (!running) return;
    running = false;
    await execAsPg([bin("pg_ctl"), "stop", "-w", "-s", "-m", "immediate", "-D", dataDir], dir);
  };
  const standby: TestStandby = {
    host: HOST,
    port,
    dataDir,
    logFile,
    psql: (sql, db) => query(port, sql, db),
    async promote() {
      await query(port, "SELECT pg_promote(true, 30)");
      await until("the standby to leave recovery", 30_000, async () => (await query(port, "SELECT pg_is_in_recovery()")) === "false");
    },
    stopServer,
    async stop() {
      if (removed) return;
      removed = true;
      await stopServer();
      await execAsPg(["rm", "-rf", dataDir], dir);
    },
  };
  await until("the standby to accept connections in recovery", 30_000, async () => (await standby.psql("SELECT pg_is_in_recovery()")) === "true");
  return {
    primary,
    standby,
    async caughtUp() {
      const lsn = await primary.psql("SELECT pg_current_wal_insert_lsn()");
      await until("the standby to replay the primary's WAL", 30_000, async () => (await standby.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) === "true");
    },
    async stop() {
      await standby.stop();
      await primary.stop();
    },
  };
}
