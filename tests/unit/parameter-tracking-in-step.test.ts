// Unit tests of pgbun:parameter-tracking's in-step shortcut: a link skips the comparison only while nothing it compares has changed.
import { describe, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import { ParamList, VersionedMap } from "../../core/params.ts";
import parameterTracking from "../../plugins/parameter-tracking/index.ts";
import { applyPlugin, type FakeClient, type FakeServer, type TestApi } from "../../plugin-sdk/testing.ts";
import { unlink } from "../../plugin-sdk/testing/fakes.ts";

const WELCOME: ReadonlyMap<string, string> = new Map([
  ["client_encoding", "UTF8"],
  ["DateStyle", "ISO, MDY"],
  ["TimeZone", "UTC"],
  ["standard_conforming_strings", "on"],
  ["application_name", ""],
  ["IntervalStyle", "postgres"],
  ["search_path", '"$user", public'],
]);

/** A client whose lists are the core's (they have an identity), as a logged-in client's are. */
function coreClient(t: TestApi, params: Array<[string, string]> = []): FakeClient {
  const list = new ParamList();
  for (const [k, v] of params) list.set(k, v);
  list.share();
  const c = t.client({ params: list, settings: new ParamList(), poolMode: "transaction" });
  c.welcomeParams = WELCOME;
  return c;
}

/** A server whose params and applied count their changes (version), as the core's do. */
function coreServer(t: TestApi): FakeServer {
  const s = t.server();
  const params = new VersionedMap();
  for (const [k, v] of WELCOME) params.set(k, v);
  s.params = params;
  Object.defineProperty(s, "applied", { value: new VersionedMap() });
  return s;
}

/** Links, and returns the SQL of the internal queries the link ran (answered as a success). */
function link(client: FakeClient, server: FakeServer): string[] {
  const before = server.internal.length;
  client.linkServer(server);
  const runs = server.internal.splice(before);
  for (const r of runs) r.done?.(null, []);
  unlink(client, server, null);
  return runs.map((r) => r.sql);
}

describe("pgbun:parameter-tracking in step", () => {
  test("the same client back on the same server, nothing changed: no batch (and the comparison found nothing the first time)", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    expect(link(c, s)).toEqual([]);
    expect(link(c, s)).toEqual([]);
  });

  test("the server's reported value changed since (another session's SET): the same client gets its value back", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    expect(link(c, s)).toEqual([]);
    s.params.set("TimeZone", "Asia/Tokyo");
    const sql = link(c, s);
    expect(sql.length).toBe(1);
    expect(sql[0]).toContain("'TimeZone', 'UTC'");
  });

  test("a setting applied on the server since, that the client does not carry, is reset", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    expect(link(c, s)).toEqual([]);
    s.applied.set("app.tenant", "42");
    expect(link(c, s)).toEqual(['RESET "app"."tenant";']);
    expect(s.applied.size).toBe(0);
  });

  test("the client's own parameter or setting changed since: it is applied", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    expect(link(c, s)).toEqual([]);
    c.params.set("DateStyle", "German, DMY");
    expect(link(c, s)[0]).toContain("'DateStyle', 'German, DMY'");
    s.params.set("DateStyle", "German, DMY"); // the batch's ParameterStatus
    expect(link(c, s)).toEqual([]);
    expect(link(c, s)).toEqual([]);
    c.settings.set("app.tenant", "7");
    expect(link(c, s)[0]).toContain("'app.tenant', '7'");
  });

  test("another client of the same shared parameters is in step; one of other parameters is not", async () => {
    const t = await applyPlugin(parameterTracking());
    const app = `in_step_${process.pid}`;
    const a = coreClient(t, [["application_name", app]]);
    const b = coreClient(t, [["application_name", app]]);
    const other = coreClient(t, [["application_name", `${app}_other`]]);
    expect(a.params.identity?.()).toBe(b.params.identity!()!);
    const s = coreServer(t);
    s.params.set("application_name", app);
    expect(link(a, s)).toEqual([]);
    expect(link(b, s)).toEqual([]);
    expect(link(other, s)[0]).toContain(`'application_name', '${app}_other'`);
  });

  test("the client's SET, then its RESET back to the welcome value: applied each time, in step after each", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    expect(link(c, s)).toEqual([]);
    c.setParam("TimeZone", "Asia/Tokyo"); // the client's SET TimeZone, reported back by its server
    s.params.set("TimeZone", "Asia/Tokyo");
    expect(link(c, s)).toEqual([]); // its own server has its value
    const other = coreServer(t);
    expect(link(c, other)[0]).toContain("'TimeZone', 'Asia/Tokyo'");
    other.params.set("TimeZone", "Asia/Tokyo"); // the batch's ParameterStatus
    expect(link(c, other)).toEqual([]);
    c.params.delete("TimeZone"); // RESET TimeZone: back to the welcome value, which the core's setParam keeps out of params
    expect(link(c, s)[0]).toContain("'TimeZone', 'UTC'");
    s.params.set("TimeZone", "UTC");
    expect(link(c, s)).toEqual([]);
    expect(link(c, other)[0]).toContain("'TimeZone', 'UTC'"); // other still has Asia/Tokyo
  });

  test("a second client of the same shared parameters, after the first SET something on the server: compared, and put back", async () => {
    const t = await applyPlugin(parameterTracking());
    const a = coreClient(t);
    const b = coreClient(t);
    const s = coreServer(t);
    expect(link(a, s)).toEqual([]);
    expect(link(b, s)).toEqual([]);
    b.settings.set("app.tenant", "7");
    expect(link(b, s)[0]).toContain("'app.tenant', '7'");
    expect(link(b, s)).toEqual([]); // b in step now
    expect(link(a, s)).toEqual(['RESET "app"."tenant";']);
    expect(link(a, s)).toEqual([]);
  });

  test("a server reset (serverReset) makes the next link compare again, even where no count changed", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    expect(link(c, s)).toEqual([]);
    // what a reset undid but no ParameterStatus reported (a count can only see what pgbun was told)
    Map.prototype.set.call(s.params, "TimeZone", "Europe/Paris"); // bypasses the count, as an unseen change would
    expect(link(c, s)).toEqual([]); // in step as far as pgbun can tell: the shortcut is taken
    t.hooks.serverReset.call(s);
    expect(link(c, s)[0]).toContain("'TimeZone', 'UTC'");
  });

  test("a server reset that clears the applied settings: the client's setting is SET again", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    c.settings.set("app.tenant", "7");
    const s = coreServer(t);
    expect(link(c, s)[0]).toContain("'app.tenant', '7'");
    expect(link(c, s)).toEqual([]);
    s.applied.clear(); // the pool's reset (server_reset_query) forgets what was applied
    t.hooks.serverReset.call(s);
    expect(link(c, s)[0]).toContain("'app.tenant', '7'");
    expect(link(c, s)).toEqual([]);
  });

  test("a reload that tracks one more parameter compares again", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = coreClient(t);
    const s = coreServer(t);
    s.params.delete("search_path"); // not reported by this server: only a tracked name would be SET
    expect(link(c, s)).toEqual([]);
    t.reload({ settings: { track_extra_parameters: ["search_path"] } });
    expect(link(c, s)[0]).toContain(`'search_path', '"$user", public'`);
  });

  test("lists and servers that give no identity or version are compared on every link", async () => {
    const t = await applyPlugin(parameterTracking());
    const c = t.client({ poolMode: "transaction", welcomeParams: Object.fromEntries(WELCOME) });
    const s = t.server({ params: Object.fromEntries(WELCOME) });
    expect(link(c, s)).toEqual([]);
    s.params.set("TimeZone", "Asia/Tokyo");
    expect(link(c, s)[0]).toContain("'TimeZone', 'UTC'");
  });
});

describe("ParamList.identity() and VersionedMap.version", () => {
  test("a ParamList stays a 32-byte cell: no accessor on its prototype but size (JSC sizes instances by them)", () => {
    // each client holds four ParamLists: an accessor (an identity getter) made each one 16 bytes larger
    const own = Object.getOwnPropertyNames(ParamList.prototype).filter((n) => Object.getOwnPropertyDescriptor(ParamList.prototype, n)!.get !== undefined);
    expect(own).toEqual(["size"]);
    const n = 100_000;
    const keep: ParamList[] = [];
    Bun.gc(true);
    const before = heapStats().heapSize;
    for (let i = 0; i < n; i++) keep.push(new ParamList());
    Bun.gc(true);
    const perList = (heapStats().heapSize - before) / n;
    expect(keep.length).toBe(n);
    expect(perList).toBeLessThan(44); // 32 B cell + the keep array's 8 B slot; 56 with a getter
  });

  test("identity changes with every change of content, and not with a no-op", () => {
    const l = new ParamList();
    expect(l.identity()).toBeNull();
    l.set("a", "1");
    const first = l.identity();
    l.set("a", "1");
    expect(l.identity()).toBe(first!);
    l.set("a", "2");
    expect(l.identity()).not.toBe(first);
    const second = l.identity();
    l.delete("a");
    expect(l.identity()).not.toBe(second);
    expect(l.delete("a")).toBe(false);
  });

  test("version counts changes only", () => {
    const m = new VersionedMap();
    m.set("a", "1");
    expect(m.version).toBe(1);
    m.set("a", "1");
    expect(m.version).toBe(1);
    m.set("a", "2");
    m.delete("a");
    m.delete("a");
    m.clear();
    expect(m.version).toBe(3);
  });
});
