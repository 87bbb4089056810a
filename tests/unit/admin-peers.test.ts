// Unit tests for the admin console across workers: how SHOW tables merge, and what the peer channel accepts from a sibling.
import { afterAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mergeTables } from "../../plugins/admin/merge.ts";
import { listenForPeers, PeerCall, peerAnswer, peerCommand, type PeerReply } from "../../plugins/admin/peers.ts";
import { columns, type Table } from "../../plugins/admin/table.ts";

test("POOLS: counts add up per (database, user); maxwait and maxwait_us come from the longest wait", () => {
  const cols = columns("database", "user", "#cl_active", "#maxwait", "#maxwait_us", "pool_mode");
  const w0: Table = { columns: cols, rows: [["app", "u", 5, 2, 10, "transaction"], ["other", "u", 1, 0, 0, "session"]] };
  const w1: Table = { columns: cols, rows: [["app", "u", 7, 1, 999_999, "transaction"], ["app", "v", 3, 0, 0, "transaction"]] };
  expect(mergeTables("pools", [w0, w1]).rows).toEqual([
    ["app", "u", 12, 2, 10, "transaction"],
    ["app", "v", 3, 0, 0, "transaction"],
    ["other", "u", 1, 0, 0, "session"],
  ]);
});

test("STATS_AVERAGES: rates add up; average times are weighted by each worker's count", () => {
  const cols = columns("database", "#server_assignment_count", "#xact_count", "#query_count", "#xact_time", "#query_time", "#wait_time");
  const w0: Table = { columns: cols, rows: [["app", 10, 30, 90, 100, 10, 50]] };
  const w1: Table = { columns: cols, rows: [["app", 30, 10, 10, 500, 70, 10]] };
  // xact_time (100*30 + 500*10) / 40 = 200; query_time (10*90 + 70*10) / 100 = 16; wait_time (50*10 + 10*30) / 40 = 20
  expect(mergeTables("stats_averages", [w0, w1]).rows).toEqual([["app", 40, 40, 100, 200, 16, 20]]);
  // below one per second the rates round to 0: the workers that timed anything count alike
  const idle: Table = { columns: cols, rows: [["app", 0, 0, 0, 300, 0, 0]] };
  const none: Table = { columns: cols, rows: [["app", 0, 0, 0, 0, 0, 0]] };
  expect(mergeTables("stats_averages", [idle, none]).rows[0]![4]).toBe(300);
});

test("LISTS: connections add up, configured objects do not; CLIENTS are listed together by id", () => {
  const lists = columns("list", "#items");
  const w0: Table = { columns: lists, rows: [["databases", 3], ["pools", 2], ["used_clients", 5], ["used_servers", 4]] };
  const w1: Table = { columns: lists, rows: [["databases", 3], ["pools", 3], ["used_clients", 7], ["used_servers", 2]] };
  expect(mergeTables("lists", [w0, w1]).rows).toEqual([["databases", 3], ["pools", 3], ["used_clients", 12], ["used_servers", 6]]);
  const clients = columns("type", "#id");
  const c0: Table = { columns: clients, rows: [["C", 1], ["C", 5]] };
  const c1: Table = { columns: clients, rows: [["C", 2], ["C", 4]] };
  expect(mergeTables("clients", [c0, c1]).rows.map((r) => r[1])).toEqual([1, 2, 4, 5]);
});

test("DATABASES: per-worker limits and current counts add up; paused is any worker's", () => {
  const cols = columns("name", "#port", "#pool_size", "#current_connections", "#paused");
  const w0: Table = { columns: cols, rows: [["app", 6432, 10, 4, 0]] };
  const w1: Table = { columns: cols, rows: [["app", 6432, 10, 3, 1]] };
  expect(mergeTables("databases", [w0, w1]).rows).toEqual([["app", 6432, 20, 7, 1]]);
});

test("a sibling's request is rebuilt field by field; anything else is refused", () => {
  expect(peerCommand({ kind: "pause", db: "app", extra: 1 })).toEqual({ kind: "pause", db: "app" });
  expect(peerCommand({ kind: "pause", db: null })).toEqual({ kind: "pause", db: null });
  expect(peerCommand({ kind: "show", target: "pools" })).toEqual({ kind: "show", target: "pools" });
  expect(peerCommand({ kind: "kill_client", id: 7 })).toEqual({ kind: "kill_client", id: 7 });
  // KILL without a database kills all (1.25); RELOAD and SET are applied by every worker
  expect(peerCommand({ kind: "kill", db: null })).toEqual({ kind: "kill", db: null });
  expect(peerCommand({ kind: "reload", extra: 1 })).toEqual({ kind: "reload" });
  expect(peerCommand({ kind: "set", key: "default_pool_size", value: "3" })).toEqual({ kind: "set", key: "default_pool_size", value: "3" });
  for (const bad of [null, [], "pause", { kind: "shutdown" }, { kind: "suspend" }, { kind: "set", key: "a", value: 1 }, { kind: "set", key: null, value: "1" }, { kind: "show", target: "secrets" }, { kind: "disable", db: null }, { kind: "kill_client", id: -1 }, { kind: "kill_client", id: "7" }, { kind: "pause", db: 3 }]) {
    expect(peerCommand(bad)).toBeNull();
  }
  expect(peerAnswer({ kind: "table", table: { columns: [{ name: "a", type: "int" }], rows: [[1], [null]] } })).not.toBeNull();
  expect(peerAnswer({ kind: "table", table: { columns: [{ name: "a", type: "int" }], rows: [[1, 2]] } })).toBeNull();
  expect(peerAnswer({ kind: "table", table: { columns: [{ name: "a", type: "int" }], rows: [[{}]] } })).toBeNull();
  expect(peerAnswer({ kind: "error" })).toBeNull();
});

const path = join(tmpdir(), `pgbun-unit-${process.pid}.admin`);
const served: unknown[] = [];
const listener = listenForPeers(path, (command, reply: PeerReply) => {
  served.push(command);
  reply.send({ kind: "ok" });
  reply.end();
});
afterAll(() => listener.stop(true));

/** Sends raw bytes to the peer socket; resolves with what came back once it closed. */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(path);
    let got = "";
    s.on("data", (d) => (got += d.toString()));
    s.on("close", () => resolve(got));
    s.on("error", () => resolve(got));
    s.write(bytes);
  });
}

test("the peer socket is its user's only (0600)", () => {
  expect(statSync(path).mode & 0o777).toBe(0o600);
});

test("a large answer (every connection of a busy worker) arrives whole, past the socket's buffer", async () => {
  const bigPath = `${path}.big`;
  const rows = Array.from({ length: 100_000 }, (_, i) => ["C", `client number ${i} with a longish name`, i]);
  const big = listenForPeers(bigPath, (_cmd, reply) => {
    reply.send({ kind: "table", table: { columns: columns("type", "application_name", "#id"), rows } });
    reply.end();
  });
  try {
    const answer = await new PeerCall(1, bigPath, { kind: "show", target: "clients" }).next(5_000);
    expect(answer?.kind).toBe("table");
    expect(answer?.kind === "table" && answer.table.rows).toEqual(rows);
  } finally {
    big.stop(true);
  }
});

test("the peer socket closes on garbage, on an oversized request and on unknown commands, and serves the next one", async () => {
  expect(await raw("not json\n")).toBe("");
  expect(await raw(`${JSON.stringify({ command: { kind: "shutdown" } })}\n`)).toBe("");
  expect(await raw("x".repeat(10_000))).toBe("");
  expect(await raw(`${JSON.stringify({ command: { kind: "resume", db: "app" } })}\n`)).toBe(""); // no deadline
  const late = { command: { kind: "resume", db: "app" }, deadline: Date.now() - 1 }; // a stuck worker woke up too late
  expect(await raw(`${JSON.stringify(late)}\n`)).toBe("");
  expect(served).toEqual([]);
  const call = new PeerCall(1, path, { kind: "resume", db: "app" });
  expect(await call.next(1_000)).toEqual({ kind: "ok" });
  expect(await call.next(1_000)).toBeNull(); // then the connection ends
  expect(served).toEqual([{ kind: "resume", db: "app" }]);
});

test("a worker that is not there answers null at once; one that says nothing, null after the timeout", async () => {
  const gone = new PeerCall(1, `${path}.missing`, { kind: "show", target: "pools" });
  expect(await gone.next(5_000)).toBeNull();
  const silentPath = `${path}.silent`;
  const silent = listenForPeers(silentPath, () => undefined);
  try {
    const t0 = Date.now();
    expect(await new PeerCall(1, silentPath, { kind: "show", target: "pools" }).next(300)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  } finally {
    silent.stop(true);
  }
});
