// The admin console's needServer and serverReleased taps: made at the first pause and wait, and then doing their work.
import { describe, expect, test } from "bun:test";
import type { Client } from "../../plugin-sdk/index.ts";
import { settle, testApi, type TestApi } from "../../plugin-sdk/testing.ts";
import { Control } from "../../plugins/admin/control.ts";
import type { AdminEnv } from "../../plugins/admin/env.ts";
import type { Extensions } from "../../plugins/admin/extensions.ts";
import { tapAdmin } from "../../plugins/admin/tap-admin.ts";

function world(): { t: TestApi; control: Control } {
  const t = testApi({ name: "pgbun:admin" });
  const control = new Control(t.api);
  const env: AdminEnv = { api: t.api, control, extensions: null as unknown as Extensions, peers: null, adminClients: () => [], stats: () => undefined };
  tapAdmin(t.api, env, new Set<Client>());
  return { t, control };
}

const names = (taps: ReadonlyArray<{ name: string }>) => taps.map((x) => x.name);

describe("needServer", () => {
  test("not tapped before a pause: a hand-out does not call the console", () => {
    const { t } = world();
    expect(names(t.hooks.needServer.taps)).toEqual([]);
  });

  test("PAUSE taps it before the pause is in force: a client of the paused database is parked, one of another is not", () => {
    const { t, control } = world();
    expect(control.pause("db")).toBeNull();
    expect(names(t.hooks.needServer.taps)).toEqual(["pgbun:admin"]);
    const parked = t.client({ database: "db", state: "active" });
    expect(t.hooks.needServer.call(parked)).toBeNull();
    expect(control.parkedCount).toBe(1);
    const other = t.client({ database: "other", state: "active" });
    expect(t.hooks.needServer.call(other)).toBeUndefined();
    // RESUME and PAUSE again: still one tap
    control.resume("db");
    control.pause(null);
    expect(names(t.hooks.needServer.taps)).toEqual(["pgbun:admin"]);
  });

  test("KILL taps it too: new clients of the killed database wait", () => {
    const { t, control } = world();
    expect(control.kill("db")).toBeNull();
    expect(t.hooks.needServer.call(t.client({ database: "db", state: "active" }))).toBeNull();
  });
});

describe("serverReleased", () => {
  test("not tapped before a wait; a wait that is done at once taps nothing", () => {
    const { t, control } = world();
    let finished = 0;
    control.whenDone({ closed: false }, () => true, () => finished++);
    expect(finished).toBe(1);
    expect(names(t.hooks.serverReleased.taps)).toEqual([]);
  });

  test("a wait taps it: a release completes the wait at once, without a janitor tick", async () => {
    const { t, control } = world();
    let done = false;
    let finished = 0;
    control.whenDone({ closed: false }, () => done, () => finished++);
    expect(names(t.hooks.serverReleased.taps)).toEqual(["pgbun:admin"]);
    done = true;
    t.hooks.serverReleased.call(t.server(), null, "transaction");
    await settle();
    expect(finished).toBe(1);
  });
});
