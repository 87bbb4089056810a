// Multi-host [databases] entries through pgbun:routing: hosts tried in order, per-host ports, target_session_attrs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "pg";
import { freePort, harnessTempDir } from "../harness/postgres.ts";
import { startReplicaSet, type TestReplicaSet } from "../harness/replica.ts";
import { closeAfterEach, firstValue, pgConnect, rejection, waitFor } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";

setDefaultTimeout(60_000);

let set: TestReplicaSet;
/** A loopback port nobody listens on: a host that refuses every connection. */
let deadPort: number;
beforeAll(async () => {
  set = await startReplicaSet();
  deadPort = await freePort();
}, 60_000);
afterAll(() => set?.stop());
const track = closeAfterEach();

const primary = () => `127.0.0.1:${set.primary.port}`;
const standby = () => `127.0.0.1:${set.standby.port}`;
const dead = () => `127.0.0.1:${deadPort}`;

/** One entry `app` (libpq-style string, as a user writes it) in transaction mode, pool of `size`. */
async function pooler(entry: string, size = 4): Promise<TestPooler> {
  // a pool that cannot log in anywhere gives its waiters the last failure just before query_wait_timeout
  const p = await startTestPooler({
    upstream: { host: "127.0.0.1", port: set.primary.port, password: set.primary.password },
    settings: { pool_mode: "transaction", default_pool_size: size, query_wait_timeout: 2 },
    databases: { app: `${entry} dbname=app password=${set.primary.password}` },
    dir: await harnessTempDir("multi-host"),
  });
  return track(p, (p) => p.stop());
}

const connect = async (p: TestPooler): Promise<Client> => track(await pgConnect(p), (c) => c.end());

/** The error a client gets from a pool that cannot log in: the last failure, at query_wait_timeout. */
const loginError = (p: TestPooler) => rejection(pgConnect(p, {}, { ignoreErrors: false }));

/**
 * `n` clients each in a transaction at once, so each needs a server of its own (n new server logins): where each
 * landed, as "port standby?" (inet_server_port(), pg_is_in_recovery()).
 */
async function whereLogins(p: TestPooler, n: number): Promise<string[]> {
  const clients = await Promise.all(Array.from({ length: n }, () => connect(p)));
  await Promise.all(clients.map((c) => c.query("BEGIN")));
  const seen = await Promise.all(
    clients.map(async (c) => {
      const r = await c.query<{ port: number; standby: boolean }>("SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby");
      return `${r.rows[0]!.port} ${r.rows[0]!.standby}`;
    }),
  );
  await Promise.all(clients.map((c) => c.query("COMMIT")));
  return seen.sort();
}

describe("host lists", () => {
  test("with load_balance_hosts=disable logins stay on the first host that works; a dead one is tried once, not per login", async () => {
    // a "host" that accepts TCP connections and closes them at once: a login there fails, and is counted
    let attempts = 0;
    const refuser = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void (attempts++, s.end()), data() {} } });
    track(refuser, (r) => r.stop(true));
    const p = await pooler(`host=127.0.0.1:${refuser.port},${primary()},${standby()} load_balance_hosts=disable`);
    expect(await whereLogins(p, 4)).toEqual(Array(4).fill(`${set.primary.port} false`));
    expect(await whereLogins(p, 4)).toEqual(Array(4).fill(`${set.primary.port} false`));
    expect(attempts).toBe(1);
  });

  test("a port list gives each host its port, as libpq's port=a,b", async () => {
    const p = await pooler(`host=127.0.0.1,127.0.0.1 port=${set.standby.port},${set.primary.port} target_session_attrs=read-write`);
    expect(await whereLogins(p, 3)).toEqual(Array(3).fill(`${set.primary.port} false`));
  });

  test("round-robin (the default) spreads logins over the hosts that accept them", async () => {
    const p = await pooler(`host=${primary()},${standby()}`);
    const seen = await whereLogins(p, 4);
    expect(seen.filter((s) => s === `${set.primary.port} false`).length).toBe(2);
    expect(seen.filter((s) => s === `${set.standby.port} true`).length).toBe(2);
  });

  test("when no host accepts the login the client gets the last host's error", async () => {
    const p = await pooler(`host=${dead()},127.0.0.1:${await freePort()}`);
    const err = await loginError(p);
    expect(err.message).toContain("no host of database \"app\" accepted the login");
    expect(err.message).toContain(dead());
  });
});

describe("target_session_attrs", () => {
  test("read-write and primary log in only to the primary, wherever it is in the list", async () => {
    for (const attrs of ["read-write", "primary"]) {
      const p = await pooler(`host=${standby()},${primary()} target_session_attrs=${attrs}`);
      expect(await whereLogins(p, 3)).toEqual(Array(3).fill(`${set.primary.port} false`));
      await p.stop();
    }
  });

  test("read-only and standby log in only to the standby", async () => {
    for (const attrs of ["read-only", "standby"]) {
      const p = await pooler(`host=${primary()},${standby()} target_session_attrs=${attrs}`);
      expect(await whereLogins(p, 3)).toEqual(Array(3).fill(`${set.standby.port} true`));
      await p.stop();
    }
  });

  test("prefer-standby takes the standby when there is one, else the primary", async () => {
    const both = await pooler(`host=${primary()},${standby()} target_session_attrs=prefer-standby`);
    expect(await whereLogins(both, 2)).toEqual(Array(2).fill(`${set.standby.port} true`));
    const noStandby = await pooler(`host=${dead()},${primary()} target_session_attrs=prefer-standby`);
    expect(await whereLogins(noStandby, 2)).toEqual(Array(2).fill(`${set.primary.port} false`));
  });

  test("with no host that fits, the client gets 57P03 saying what each host was", async () => {
    const p = await pooler(`host=${primary()},${dead()} target_session_attrs=standby`);
    const err = await loginError(p);
    expect(err.code).toBe("57P03");
    expect(err.message).toContain(`${primary()}: a read-write primary`);
    expect(err.message).toContain(dead());
  });

  test("a single host is checked too: target_session_attrs=read-write on a standby is refused", async () => {
    const p = await pooler(`host=${standby()} target_session_attrs=read-write`);
    const err = await loginError(p);
    expect(err.code).toBe("57P03");
    expect(err.message).toContain("a standby");
  });

  test("a read-write server whose host turns read-only (default_transaction_read_only on) is closed, not reused", async () => {
    const p = await pooler(`host=${primary()},${standby()} target_session_attrs=read-write`, 1);
    const c = await connect(p);
    const pid = await firstValue(c, "SELECT pg_backend_pid()");
    await set.primary.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    await set.primary.psql("SELECT pg_reload_conf()");
    try {
      // the session takes the new value at its next statement and reports it (ParameterStatus) with its ReadyForQuery
      await Bun.sleep(300);
      expect(await firstValue(c, "SHOW default_transaction_read_only")).toBe("on");
      await waitFor("the read-only server to be closed", async () => (await set.primary.psql(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`)) === "0", 5_000);
      // and no host is read-write now: the next transaction cannot get a server
      const err = await rejection(c.query("SELECT 1"));
      expect(err.message).toContain('fits target_session_attrs=read-write');
    } finally {
      await set.primary.psql("ALTER SYSTEM RESET default_transaction_read_only");
      await set.primary.psql("SELECT pg_reload_conf()");
    }
  });
});
