// Unit tests of pgbun:parameter-tracking's in-step shortcut: a link skips the comparison only while nothing it compares has changed.
import { describe, expect, test } from "bun:test";
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

/** A server whose params and applied count their changes (paramsVersion), as the core's do. */
function coreServer(t: TestApi): FakeServer {
  const s = t.server();
  const params = new VersionedMap();
  for (const [k, v] of WELCOME) params.set(k, v);
  const applied = new VersionedMap();
  s.params = params;
  Object.defineProperty(s, "applied", { value: applied });
  Object.defineProperty(s, "paramsVersion", { get: () => params.version + applied.version });
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
    expect(a.params.identity).toBe(b.params.identity!);
    const s = coreServer(t);
    s.params.set("application_name", app);
    expect(link(a, s)).toEqual([]);
    expect(link(b, s)).toEqual([]);
    expect(link(other, s)[0]).toContain(`'application_name', '${app}_other'`);
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

describe("ParamList.identity and VersionedMap.version", () => {
  test("identity changes with every change of content, and not with a no-op", () => {
    const l = new ParamList();
    expect(l.identity).toBeNull();
    l.set("a", "1");
    const first = l.identity;
    l.set("a", "1");
    expect(l.identity).toBe(first!);
    l.set("a", "2");
    expect(l.identity).not.toBe(first);
    const second = l.identity;
    l.delete("a");
    expect(l.identity).not.toBe(second);
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
