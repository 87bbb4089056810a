// A plugin's api.now and api.config are plain fields the core keeps current: each accept and tick, each reload and SET.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import type { PluginApi } from "../../plugin-sdk/index.ts";

const dir = mkdtempSync(join(tmpdir(), "pgbun-api-fields-"));
const seen = globalThis as { pgbunApiFieldsTest?: PluginApi[] };
let pooler: TestPooler;

beforeAll(async () => {
  // two plugins: every api is kept current, not only the first one made
  for (const n of ["a", "b"]) {
    writeFileSync(
      join(dir, `${n}.ts`),
      `export default () => ({ name: "api-fields-${n}", apply(api) { (globalThis.pgbunApiFieldsTest ??= []).push(api); } });\n`,
    );
  }
  // nothing here logs in to a server: the upstream is never dialled
  pooler = await startTestPooler({ upstream: { host: "127.0.0.1", port: 1 }, plugins: [join(dir, "a.ts"), join(dir, "b.ts")] });
});

afterAll(async () => {
  await pooler?.stop();
  delete seen.pgbunApiFieldsTest;
  rmSync(dir, { recursive: true, force: true });
});

test("api.now and api.config are data properties, not getters", () => {
  const apis = seen.pgbunApiFieldsTest!;
  expect(apis.length).toBe(2);
  for (const api of apis) {
    for (const key of ["now", "config"]) {
      const d = Object.getOwnPropertyDescriptor(api, key)!;
      expect(d.get).toBeUndefined();
      expect("value" in d).toBe(true);
    }
  }
});

test("api.now follows the core's clock: at an accept and at the janitor's tick", async () => {
  const apis = seen.pgbunApiFieldsTest!;
  const before = pooler.core.now;
  await Bun.sleep(20);
  const socket = await Bun.connect({ hostname: pooler.host, port: pooler.port, socket: { data() {} } });
  for (let i = 0; i < 50 && pooler.core.now === before; i++) await Bun.sleep(10);
  socket.end();
  expect(pooler.core.now).toBeGreaterThan(before);
  for (const api of apis) expect(api.now).toBe(pooler.core.now);
  const accepted = pooler.core.now;
  await Bun.sleep(400); // longer than a tick (333 ms)
  expect(pooler.core.now).toBeGreaterThan(accepted);
  for (const api of apis) expect(api.now).toBe(pooler.core.now);
});

test("api.config is the configuration in force after a SET and after a reload", async () => {
  const apis = seen.pgbunApiFieldsTest!;
  const old = pooler.core.config;
  pooler.core.setSetting("default_pool_size", "7");
  expect(pooler.core.config).not.toBe(old);
  for (const api of apis) {
    expect(api.config).toBe(pooler.core.config);
    expect(api.config.settings.default_pool_size).toBe(7);
  }
  pooler.core.setSetting("default_pool_size", "9");
  for (const api of apis) expect(api.config.settings.default_pool_size).toBe(9);
});
