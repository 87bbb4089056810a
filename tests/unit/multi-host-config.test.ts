// Unit tests for multi-host [databases] entries: per-host ports, port lists, target_session_attrs, load_balance_hosts.
import { expect, test } from "bun:test";
import { ConfigError, validateConfig } from "../../core/config/load.ts";
import { formatEntry } from "../../core/config/databases.ts";

const entry = (raw: unknown) => validateConfig({ databases: { app: raw } }, null, "/").databases.app!;

function configError(raw: unknown): ConfigError {
  try {
    entry(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("no ConfigError");
}

test("host:port gives each host its own port; the rest take `port`", () => {
  expect(entry("host=db1:5433,db2 port=6000")).toMatchObject({ host: ["db1", "db2"], port: 5433, ports: [5433, 6000] });
  expect(entry({ host: ["[::1]:5433", "/tmp", "::1"] })).toMatchObject({ host: ["::1", "/tmp", "::1"], port: 5433, ports: [5433, 5432, 5432] });
});

test("a port list gives one port per host, in order, as libpq's", () => {
  expect(entry("host=a,b port=5432,5433")).toMatchObject({ host: ["a", "b"], port: 5432, ports: [5432, 5433] });
  expect(entry({ host: "a,b", port: [5434, 5435] })).toMatchObject({ port: 5434, ports: [5434, 5435] });
});

test("an entry whose hosts share one port has no `ports`: plain entries are as before", () => {
  expect(entry("host=a,b port=6543")).toEqual({ name: "app", host: ["a", "b"], port: 6543, dbname: "app" });
  expect(entry("host=a:6543,b:6543")).toEqual({ name: "app", host: ["a", "b"], port: 6543, dbname: "app" });
});

test("target_session_attrs and load_balance_hosts take libpq's values and nothing else", () => {
  expect(entry("host=a,b target_session_attrs=read-write load_balance_hosts=disable")).toMatchObject({
    target_session_attrs: "read-write",
    load_balance_hosts: "disable",
  });
  expect(configError("host=a target_session_attrs=master").message).toContain("target_session_attrs");
  expect(configError("host=a load_balance_hosts=random").message).toContain("load_balance_hosts");
});

test("a port list of the wrong length, or a bad host port, is refused with the key named", () => {
  expect(configError("host=a,b,c port=1,2").message).toContain("databases.app.port");
  expect(configError("host=a:99999").message).toContain("databases.app.host");
  expect(configError("host=:5432").message).toContain("databases.app.host");
});

test("an entry with per-host ports is described as a port list, which reads back the same", () => {
  const e = entry("host=a:5433,b port=6000 target_session_attrs=primary");
  const text = formatEntry(e);
  expect(text).toBe("host=a,b port=5433,6000 target_session_attrs=primary dbname=app");
  expect(entry(text)).toEqual(e);
});
