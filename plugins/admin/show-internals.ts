// SHOW MEM, FDS, STATE, TOTALS, PEERS, PEER_POOLS, SOCKETS, ACTIVE_SOCKETS, DNS_HOSTS, DNS_ZONES: PgBouncer 1.25's process tables, as pgbun can fill them.
import type { AdminEnv } from "./env.ts";
import { poolViews } from "./pool-view.ts";
import { clientCells, CONNECTION_COLUMNS, listedClients, listedServers, preparedCount, serverCells } from "./show-connections.ts";
import { showStats } from "./show-stats.ts";
import { columns, type Cell, type Table } from "./table.ts";

const MEM_COLUMNS = columns("name", "#size", "#used", "#free", "#memtotal");

/**
 * PgBouncer lists its slab caches. pgbun's objects are JavaScript objects with no fixed size and no free list:
 * `used` counts them and size, free and memtotal are 0; the process's own memory is in js_heap (the JavaScript
 * heap's bytes in use) and rss (the resident set), in bytes.
 */
export function showMem(env: AdminEnv): Table {
  const { api } = env;
  let clients = 0;
  let statements = 0;
  for (const c of api.clients()) {
    clients++;
    statements += preparedCount(c.data, "byName");
  }
  let servers = 0;
  let serverStatements = 0;
  for (const s of api.servers()) {
    servers++;
    serverStatements += preparedCount(s.data, "names");
  }
  const mem = process.memoryUsage();
  const rows: Cell[][] = [
    ["clients", 0, clients, 0, 0],
    ["servers", 0, servers, 0, 0],
    ["pools", 0, poolViews(api).length, 0, 0],
    ["client_prepared_statements", 0, statements, 0, 0],
    ["server_prepared_statements", 0, serverStatements, 0, 0],
    // Bun's heapTotal can be below heapUsed (it is not a reserved size): the bytes in use are what it can say
    ["js_heap", 1, mem.heapUsed, 0, mem.heapUsed],
    ["rss", 1, mem.rss, 0, mem.rss],
  ];
  return { columns: MEM_COLUMNS, rows };
}

/**
 * PgBouncer's FDS lists the sockets an online restart hands over (with their cancel keys and SCRAM keys). pgbun
 * hands over nothing (SUSPEND is refused; rolling restarts use so_reuseport): the table is empty, and never
 * carries a secret.
 */
export function showFds(_env: AdminEnv): Table {
  return {
    columns: columns(
      "#fd",
      "task",
      "user",
      "database",
      "addr",
      "#port",
      "#cancel",
      "#link",
      "client_encoding",
      "std_strings",
      "datestyle",
      "timezone",
      "password",
      "scram_client_key",
      "scram_server_key",
    ),
    rows: [],
  };
}

/** active, paused, suspended as yes/no: paused is a PAUSE (or KILL) of the whole pooler; pgbun never suspends. */
export function showState(env: AdminEnv): Table {
  const paused = env.control.pausedWhole;
  return {
    columns: columns("key", "value"),
    rows: [
      ["active", paused ? "no" : "yes"],
      ["paused", paused ? "yes" : "no"],
      ["suspended", "no"],
    ],
  };
}

const TOTALS_COLUMNS = columns("name", "#value");
/** Average times and the count each is an average over (SHOW STATS's avg_ columns). */
const TIMED: Readonly<Record<string, string>> = {
  avg_xact_time: "avg_xact_count",
  avg_query_time: "avg_query_count",
  avg_wait_time: "avg_server_assignment_count",
};

/**
 * SHOW TOTALS: SHOW STATS summed over the databases, one row per counter: totals and per-second averages add
 * up, average times are weighted by what each database timed. Built from a STATS table, so with workers > 1
 * it is built from the workers' merged STATS.
 */
export function totalsFromStats(stats: Table): Table {
  const names = stats.columns.map((c) => c.name);
  const at = (name: string) => names.indexOf(name);
  const sumOf = (i: number) => stats.rows.reduce((n, r) => n + (typeof r[i] === "number" ? (r[i] as number) : 0), 0);
  const rows: Cell[][] = [];
  for (let i = 1; i < names.length; i++) {
    const name = names[i]!;
    const by = TIMED[name];
    if (by === undefined) {
      rows.push([name, sumOf(i)]);
      continue;
    }
    const w = at(by);
    let total = 0;
    let weights = 0;
    for (const r of stats.rows) {
      const weight = typeof r[w] === "number" ? (r[w] as number) : 0;
      total += (typeof r[i] === "number" ? (r[i] as number) : 0) * weight;
      weights += weight;
    }
    rows.push([name, weights > 0 ? Math.round(total / weights) : 0]);
  }
  return { columns: TOTALS_COLUMNS, rows };
}

export function showTotals(env: AdminEnv): Table {
  return totalsFromStats(showStats(env));
}

/**
 * The workers are pgbun's peers: they forward CancelRequests to one another, as PgBouncer's [peers] do. One
 * row per worker (peer_id is the worker's id, host its private socket); none in one process.
 */
export function showPeers(env: AdminEnv): Table {
  const { worker } = env.api;
  const rows: Cell[][] = [];
  if (worker.count > 1) for (let id = 0; id < worker.count; id++) rows.push([id, worker.socketPath(id), env.api.port, 0]);
  return { columns: columns("#peer_id", "host", "#port", "#pool_size"), rows };
}

/** Cancel requests between workers are forwarded at once, one connection each, none kept: every count is 0. */
export function showPeerPools(env: AdminEnv): Table {
  const { worker } = env.api;
  const rows: Cell[][] = [];
  if (worker.count > 1) for (let id = 0; id < worker.count; id++) rows.push([id, 0, 0, 0, 0]);
  return { columns: columns("#peer_id", "#cl_active_cancel_req", "#cl_waiting_cancel_req", "#sv_active_cancel", "#sv_login"), rows };
}

/**
 * PgBouncer's buffer positions of each socket's sbuf. pgbun keeps no per-socket buffer (the runtime reads into
 * its own, partial writes wait in a queue): 0 in each.
 */
const SOCKET_COLUMNS = [...CONNECTION_COLUMNS, ...columns("#recv_pos", "#pkt_pos", "#pkt_remain", "#send_pos", "#send_remain", "#pkt_avail", "#send_avail")];
const NO_BUFFER: readonly Cell[] = [0, 0, 0, 0, 0, 0, 0];

/** Every client and server socket, clients first, by id. `activeOnly`: those linked to a peer (moving data), as ACTIVE_SOCKETS. */
function sockets(env: AdminEnv, activeOnly: boolean): Table {
  const rows: Cell[][] = [];
  for (const c of listedClients(env)) if (!activeOnly || c.server !== null) rows.push([...clientCells(env, c), ...NO_BUFFER]);
  for (const s of listedServers(env)) if (!activeOnly || s.client !== null) rows.push([...serverCells(s), ...NO_BUFFER]);
  return { columns: SOCKET_COLUMNS, rows };
}

export const showSockets = (env: AdminEnv): Table => sockets(env, false);
export const showActiveSockets = (env: AdminEnv): Table => sockets(env, true);

/** pgbun resolves host names with the system resolver when it connects and caches nothing: both tables are empty. */
export const showDnsHosts = (_env: AdminEnv): Table => ({ columns: columns("hostname", "#ttl", "addrs"), rows: [] });
export const showDnsZones = (_env: AdminEnv): Table => ({ columns: columns("zonename", "#serial", "#count"), rows: [] });
