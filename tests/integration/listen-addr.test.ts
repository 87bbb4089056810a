// listen_addr as PgBouncer reads it: a comma-separated list of TCP addresses, or empty for the Unix socket alone.
import { expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAfterEach, firstValue, pgConnect, rejection, usePostgres } from "../harness/fixtures.ts";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { ConfigError, validateConfig } from "../../core/config/load.ts";

setDefaultTimeout(60_000);
const pg = usePostgres();
const track = closeAfterEach();

async function pooler(settings: Record<string, unknown>): Promise<TestPooler> {
  const p = await startTestPooler({ upstream: { host: pg.host, port: pg.port, password: pg.password }, settings: { pool_mode: "transaction", ...settings } });
  return track(p, (p) => p.stop());
}

const select1 = async (to: { host: string; port: number }) => {
  const c = await pgConnect(to);
  try {
    return await firstValue(c, "SELECT 1");
  } finally {
    await c.end();
  }
};

test("listen_addr = '127.0.0.1, ::1': clients are served on each address, on the one port", async () => {
  const p = await pooler({ listen_addr: "127.0.0.1, ::1" });
  expect(await select1({ host: "127.0.0.1", port: p.port })).toBe(1);
  expect(await select1({ host: "::1", port: p.port })).toBe(1);
  // an address not in the list is not listened on
  expect((await rejection(select1({ host: "127.0.0.2", port: p.port }))).message).toMatch(/ECONNREFUSED|connect/);
});

test("listen_addr = '': no TCP listener, the Unix socket alone serves", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgbun-listen-"));
  try {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const p = await pooler({ listen_addr: "", listen_port: port, unix_socket_dir: dir });
    expect(await select1({ host: dir, port })).toBe(1);
    expect((await rejection(select1({ host: "127.0.0.1", port }))).message).toMatch(/ECONNREFUSED|connect/);
    expect(p.port).toBe(port);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("nothing to listen on (listen_addr and unix_socket_dir both empty) is refused, naming the key", () => {
  let err: unknown;
  try {
    validateConfig({ pgbun: { listen_addr: "", unix_socket_dir: "" } }, "f.toml", "/");
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).key).toBe("pgbun.listen_addr");
  expect((err as ConfigError).message).toContain("unix_socket_dir");
});
