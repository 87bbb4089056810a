// SHOW CLIENTS and SHOW SERVERS: one row per connection, PgBouncer's columns (plus pin_reason for clients).
import type { Client, Server } from "../../plugin-sdk/index.ts";
import { waitedMs, type AdminEnv } from "./env.ts";
import { serverDatabase } from "./pool-view.ts";
import { columns, formatTime, ptr, secondsAndMicros, type Cell, type Table } from "./table.ts";

const COMMON = [
  "type",
  "user",
  "database",
  "replication",
  "state",
  "addr",
  "#port",
  "local_addr",
  "#local_port",
  "connect_time",
  "request_time",
  "#wait",
  "#wait_us",
  "#close_needed",
  "ptr",
  "link",
  "#remote_pid",
  "tls",
  "application_name",
  "#prepared_statements",
  "#id",
];
/** pin_reason is pgbun's: why a client keeps its server in transaction mode (session state), else empty. */
const CLIENT_COLUMNS = columns(...COMMON, "pin_reason");
/** The columns CLIENTS and SERVERS share in PgBouncer (SOCKETS adds buffer positions to them). */
export const CONNECTION_COLUMNS = columns(...COMMON);
const SERVER_COLUMNS = columns(...COMMON);

/** PgBouncer's replication column: pgbun refuses replication connections, so every connection is a normal one. */
const REPLICATION = "none";

/** Statements pgbun:prepared-statements tracks for a connection (0 when that plugin is not loaded). */
export function preparedCount(data: Record<string, unknown>, field: "byName" | "names"): number {
  const st = data["pgbun:prepared-statements"] as Record<string, unknown> | undefined;
  const m = st?.[field];
  return m instanceof Map ? m.size : 0;
}

function clientState(c: Client): string {
  if (c.state === "waiting") return "waiting";
  return c.server !== null || c.virtual ? "active" : "idle";
}

/** The clients SHOW CLIENTS lists (logged in), by id. */
export function listedClients(env: AdminEnv): Client[] {
  return [...env.api.clients()].filter((c) => c.state === "active" || c.state === "waiting").sort((a, b) => a.id - b.id);
}

/** A client's cells in the columns PgBouncer's CLIENTS, SOCKETS and ACTIVE_SOCKETS share. */
export function clientCells(env: AdminEnv, c: Client): Cell[] {
  const [wait, waitUs] = secondsAndMicros(waitedMs(env, c));
  return [
    "C",
    c.user,
    c.database,
    REPLICATION,
    clientState(c),
    c.addr,
    c.port,
    c.localAddr,
    c.localPort,
    formatTime(c.connectTime),
    formatTime(c.lastActivity),
    wait,
    waitUs,
    0,
    ptr(c.id),
    c.server ? ptr(c.server.id) : "",
    0,
    // as PgBouncer prints a TLS connection: protocol/cipher; empty for plaintext and Unix sockets
    c.tls ? `${c.tls.protocol}/${c.tls.cipher}` : "",
    c.param("application_name") ?? "",
    preparedCount(c.data, "byName"),
    c.id,
  ];
}

export function showClients(env: AdminEnv): Table {
  return { columns: CLIENT_COLUMNS, rows: listedClients(env).map((c) => [...clientCells(env, c), c.pinReason ?? ""]) };
}

function serverState(s: Server): string {
  return s.state === "login" ? "new" : s.state;
}

/** The servers SHOW SERVERS lists (not closed), by id. */
export function listedServers(env: AdminEnv): Server[] {
  return [...env.api.servers()].filter((s) => s.state !== "closed").sort((a, b) => a.id - b.id);
}

/** A server's cells in the columns PgBouncer's SERVERS, SOCKETS and ACTIVE_SOCKETS share. */
export function serverCells(s: Server): Cell[] {
  return [
    "S",
    s.target.user, // the user pgbun logs in as (a forced user shows here)
    serverDatabase(s),
    REPLICATION,
    serverState(s),
    s.target.host,
    s.target.port,
    s.localAddr,
    s.localPort,
    formatTime(s.connectTime),
    formatTime(s.lastUsed),
    0,
    0,
    s.closeNeeded ? 1 : 0,
    ptr(s.id),
    s.client ? ptr(s.client.id) : "",
    s.backendPid,
    // as for clients: protocol/cipher of the server_tls_sslmode session, empty for plaintext
    s.tls ? `${s.tls.protocol}/${s.tls.cipher}` : "",
    s.client?.param("application_name") ?? "",
    preparedCount(s.data, "names"),
    s.id,
  ];
}

export function showServers(env: AdminEnv): Table {
  return { columns: SERVER_COLUMNS, rows: listedServers(env).map(serverCells) };
}
