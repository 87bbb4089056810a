// pgbun:routing on the SDK's fakes: host order, what a failed login returns, and servers that report no role.
import { expect, test } from "bun:test";
import { answerInternal, fakeServer, testApi, type FakeServer } from "../../plugin-sdk/testing.ts";
import type { DatabaseEntry, LoginFailure, Server, ServerTarget } from "../../plugin-sdk/index.ts";
import routingPlugin from "../../plugins/routing/index.ts";

const PRIMARY = { in_hot_standby: "off", default_transaction_read_only: "off" };
const STANDBY = { in_hot_standby: "on", default_transaction_read_only: "off" };

/** A world with pgbun:routing and logins answered per port: a role's ParameterStatus, "old" (none), or refused. */
async function world(entry: Partial<DatabaseEntry> & { host: string[]; ports: number[] }, hosts: Record<number, "primary" | "standby" | "down" | "old">) {
  const t = testApi();
  await t.apply(routingPlugin());
  const full: DatabaseEntry = { name: "app", port: entry.ports[0]!, dbname: "app", ...entry };
  const tried: number[] = [];
  const servers: FakeServer[] = [];
  const login = async (target: ServerTarget): Promise<Server> => {
    tried.push(target.port);
    const kind = hosts[target.port]!;
    if (kind === "down") throw Object.assign(new Error("connect failed"), { failure: { message: "connect failed" } });
    const s = fakeServer({ target, state: "login", params: kind === "primary" ? PRIMARY : kind === "standby" ? STANDBY : {} });
    servers.push(s);
    return s;
  };
  const connect = () => t.hooks.connectServer.promise({ host: full.host[0]!, port: full.port, database: "app", user: "u", entry: full }, login);
  return { t, tried, servers, connect };
}

test("an entry with one host and no target_session_attrs is not the plugin's: the core logs in as before", async () => {
  const w = await world({ host: ["a"], ports: [1] }, { 1: "primary" });
  expect(await w.connect()).toBeUndefined();
  expect(w.tried).toEqual([]);
});

test("read-write skips a standby and closes it; the next login goes straight to the primary it found", async () => {
  const w = await world({ host: ["a", "b"], ports: [1, 2], target_session_attrs: "read-write" }, { 1: "standby", 2: "primary" });
  const first = (await w.connect()) as Server;
  expect(first.target.port).toBe(2);
  expect(w.servers[0]!.state).toBe("closed");
  w.tried.length = 0;
  // round-robin would start at b now, then a: a known standby is tried after the host known to fit, either way
  for (let i = 0; i < 3; i++) expect(((await w.connect()) as Server).target.port).toBe(2);
  expect(w.tried).toEqual([2, 2, 2]);
});

test("a server that reports no role (PostgreSQL before 14) is asked with one query", async () => {
  const w = await world({ host: ["a"], ports: [1], target_session_attrs: "standby" }, { 1: "old" });
  const pending = w.connect();
  await Bun.sleep(0);
  const s = w.servers[0]!;
  expect(s.ran).toEqual(["SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')"]);
  answerInternal(s, [["t", "on"]]);
  expect(await pending).toBe(s);
});

test("no host fits: the login fails with 57P03 as a result, not as a fault of the plugin", async () => {
  const w = await world({ host: ["a", "b"], ports: [1, 2], target_session_attrs: "standby" }, { 1: "primary", 2: "down" });
  const r = (await w.connect()) as { failure: LoginFailure };
  expect(r.failure.code).toBe("57P03");
  expect(r.failure.message).toBe('no host of database "app" fits target_session_attrs=standby: a:1: a read-write primary; b:2: connect failed');
});

test("a host whose login failed is tried last until server_login_retry has passed", async () => {
  const w = await world({ host: ["a", "b"], ports: [1, 2], load_balance_hosts: "round-robin" }, { 1: "down", 2: "primary" });
  await w.connect();
  w.tried.length = 0;
  await w.connect();
  await w.connect();
  expect(w.tried).toEqual([2, 2]);
  // server_login_retry (15 s by default) later it takes its turn again
  w.t.now += 15_001;
  w.tried.length = 0;
  await w.connect();
  await w.connect();
  expect(w.tried).toContain(1);
});
