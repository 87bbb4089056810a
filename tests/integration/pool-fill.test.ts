// Integration: a pool asked for many servers at once logs in at most a few at a time, and still serves every client.
import { expect, setDefaultTimeout, test } from "bun:test";
import { startTestPooler } from "../../bin/testing.ts";
import { closeAfterEach, usePostgres } from "../harness/fixtures.ts";
import { loginApp, type WireClient } from "../harness/wire.ts";

setDefaultTimeout(90_000);

const pg = usePostgres();
const track = closeAfterEach();

test("40 session-mode clients arriving at once: every one gets a server, with at most 8 server logins in flight", async () => {
  const p = track(
    await startTestPooler({
      upstream: { host: pg.host, port: pg.port, password: pg.password },
      settings: { pool_mode: "session", default_pool_size: 40, max_client_conn: 100 },
    }),
    (p) => p.stop(),
  );
  // count logins in flight where the pool plugin starts them: the core's openServer
  const core = p.core;
  const openServer = core.openServer.bind(core);
  let inFlight = 0;
  let most = 0;
  let opened = 0;
  core.openServer = ((...args: Parameters<typeof openServer>) => {
    inFlight++;
    opened++;
    most = Math.max(most, inFlight);
    const done = openServer(...args);
    done.then(
      () => inFlight--,
      () => inFlight--,
    );
    return done;
  }) as typeof core.openServer;

  const clients: WireClient[] = await Promise.all(Array.from({ length: 40 }, () => loginApp(p).then((c) => track(c, (c) => c.destroy()))));
  // session mode: each client keeps its server, so all 40 queries at once need 40 servers
  const answers = await Promise.all(clients.map((c, i) => c.query(`SELECT ${i} AS n, pg_backend_pid() AS pid`)));
  answers.forEach((a, i) => expect(a.rows[0]![0]).toBe(String(i)));
  const pids = new Set(answers.map((a) => a.rows[0]![1]));
  expect(pids.size).toBe(40);
  expect(opened).toBeGreaterThanOrEqual(40);
  expect(most).toBeGreaterThan(1);
  expect(most).toBeLessThanOrEqual(8);
});
