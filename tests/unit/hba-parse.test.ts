// Unit: the auth_hba_file parser and matcher of pgbun:auth: line types, name lists, @file includes, addresses and masks,
// methods, first match wins, and every line pgbun cannot take refused with its file, line number and reason.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HbaError, matchHba, parseHba, type HbaConnection, type HbaRule } from "../../plugins/auth/hba.ts";
import { certDecision } from "../../plugins/auth/cert.ts";

const dir = mkdtempSync(join(tmpdir(), "pgbun-hba-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FILE = join(dir, "pg_hba.conf");
const read = (p: string) => readFileSync(p, "utf8");
const parse = (text: string) => parseHba(text, FILE, read);

/** The error a text gets, as "line: reason". */
function refusal(text: string): string {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof HbaError) {
      expect(err.file).toBe(FILE);
      expect(err.message).toBe(`${FILE}:${err.line}: ${err.reason}`);
      return `${err.line}: ${err.reason}`;
    }
    throw err;
  }
  return "parsed";
}

const tcp = (addr: string, database = "app", user = "alice", tls = false): HbaConnection => ({ unix: false, tls, addr, database, user });
const unix = (database = "app", user = "alice"): HbaConnection => ({ unix: true, tls: false, addr: "unix", database, user });
/** The line number of the first matching rule, or null. */
const lineOf = (rules: HbaRule[], c: HbaConnection) => matchHba(rules, c)?.line ?? null;

describe("parsing", () => {
  test("each line type, comments, blank lines, quoting, comma lists with spaces", () => {
    const rules = parse(
      [
        "# TYPE  DATABASE  USER  ADDRESS  METHOD",
        "",
        "local   all       all             trust",
        'host    app,"all" bob, "Carol ""C"""  10.0.0.0/8  md5   # a comment',
        "hostssl sameuser  all   ::1/128   scram-sha-256",
        "hostnossl all     all   192.168.1.0 255.255.255.0 password",
        "host    all       all   all       reject",
        "hostssl all       all   0.0.0.0/0 cert",
      ].join("\n"),
    );
    expect(rules.map((r) => [r.line, r.type, r.method])).toEqual([
      [3, "local", "trust"],
      [4, "host", "md5"],
      [5, "hostssl", "scram-sha-256"],
      [6, "hostnossl", "password"],
      [7, "host", "reject"],
      [8, "hostssl", "cert"],
    ]);
    expect(rules[1]!.databases).toEqual({ all: false, sameuser: false, names: new Set(["app", "all"]) });
    expect(rules[1]!.users.names).toEqual(new Set(["bob", 'Carol "C"']));
    expect(rules[2]!.databases.sameuser).toBe(true);
    expect(rules[4]!.address).toBeNull();
  });

  test("@file includes relative to the file, nested, names one per line or comma-separated", () => {
    writeFileSync(join(dir, "users.txt"), "alice, bob\n# comment\n@more.txt\n");
    writeFileSync(join(dir, "more.txt"), '"carol"\n');
    const rules = parse("host all @users.txt 127.0.0.1/32 md5");
    expect(rules[0]!.users.names).toEqual(new Set(["alice", "bob", "carol"]));
    expect(refusal("host all @missing.txt 127.0.0.1/32 md5")).toMatch(/^1: cannot read @missing\.txt: /);
    writeFileSync(join(dir, "loop.txt"), "@loop.txt\n");
    expect(refusal("host all @loop.txt 127.0.0.1/32 md5")).toBe("1: @file includes nested deeper than 10 (a loop?)");
  });

  test("lines pgbun cannot take are refused with line number and reason", () => {
    const cases: Array<[string, string]> = [
      ["hots all all 127.0.0.1/32 md5", 'invalid connection type "hots"'],
      ["hostgssenc all all 127.0.0.1/32 md5", "hostgssenc is not supported: pgbun has no GSSAPI encryption"],
      ["host all", "end of line before the user column"],
      ["host all all", "no address"],
      ["host all all 127.0.0.1/32", "end of line before the authentication method"],
      ["host all all samehost md5", "samehost is not supported: write the addresses out"],
      ["host all all samenet md5", "samenet is not supported: write the addresses out"],
      ["host all all db.example.com md5", 'invalid IP address "db.example.com" (host names are not supported: give an address)'],
      ["host all all 127.0.0.1/33 md5", 'invalid CIDR mask in address "127.0.0.1/33"'],
      ["host all all ::1/129 md5", 'invalid CIDR mask in address "::1/129"'],
      ["host all all 10.0.0.0 md5", 'invalid IP mask "md5"'],
      ["host all all 10.0.0.0 ffff:: md5", 'invalid IP mask "ffff::"'],
      ["host all all 127.0.0.1/32 md6", 'invalid authentication method "md6"'],
      ["local all all peer", "peer needs the Unix socket peer's credentials (SO_PEERCRED), which Bun cannot read; use another method on local lines"],
      ["host all all 127.0.0.1/32 ldap", "ldap is not supported"],
      ["host all all 127.0.0.1/32 cert", "cert authentication is only supported on hostssl connections"],
      ["host all all 127.0.0.1/32 md5 clientcert=verify-full", "authentication options are not supported (clientcert=verify-full)"],
      ["host all +admins 127.0.0.1/32 md5", "group membership (+admins) is not supported (as in PgBouncer): list the users, or use an @file"],
      ["host samerole all 127.0.0.1/32 md5", "samerole is not supported (as in PgBouncer)"],
      ["host replication all 127.0.0.1/32 md5", "replication is not supported: pgbun does not pool replication connections"],
      ['host "app all 127.0.0.1/32 md5', "unterminated quoted string"],
      ["host app, all bob 127.0.0.1/32 md5", "parsed"], // "app, all" is one column
      ["host app,,x all 127.0.0.1/32 md5", "an empty item in a comma list"],
      ['host a"b" all 127.0.0.1/32 md5', "a quote inside a word"],
    ];
    for (const [line, reason] of cases) expect(`${line} => ${refusal(`# first\n\n${line}`)}`).toBe(`${line} => ${reason === "parsed" ? "parsed" : `3: ${reason}`}`);
  });
});

describe("matching", () => {
  const rules = parse(
    [
      "local     all      all                       trust", // 1
      "host      admin    all      all              reject", // 2
      "hostssl   all      alice    127.0.0.1/32     cert", // 3
      "hostnossl all      alice    127.0.0.0/8      md5", // 4
      "host      sameuser all      10.1.0.0 255.255.0.0 password", // 5
      "host      all      bob,carol ::1/128         scram-sha-256", // 6
      "host      all      all      ::ffff:10.9.0.0/112 trust", // 7
      "host      all      dave     0.0.0.0/0        md5", // 8
    ].join("\n"),
  );

  test("first match wins; local lines for Unix-socket clients only; ssl and nossl by the client's TLS", () => {
    expect(lineOf(rules, unix())).toBe(1);
    expect(lineOf(rules, unix("admin"))).toBe(1);
    expect(lineOf(rules, tcp("127.0.0.1", "admin"))).toBe(2);
    expect(lineOf(rules, tcp("127.0.0.1", "app", "alice", true))).toBe(3);
    expect(lineOf(rules, tcp("127.0.0.1", "app", "alice", false))).toBe(4);
    expect(lineOf(rules, tcp("127.0.0.2", "app", "alice", true))).toBeNull();
    expect(lineOf(rules, tcp("127.200.0.2", "app", "alice"))).toBe(4);
  });

  test("sameuser, address + mask, IPv6, IPv4-mapped clients, user lists, no match", () => {
    expect(lineOf(rules, tcp("10.1.200.3", "erin", "erin"))).toBe(5);
    expect(lineOf(rules, tcp("10.1.200.3", "app", "erin"))).toBeNull();
    expect(lineOf(rules, tcp("10.2.0.1", "erin", "erin"))).toBeNull();
    expect(lineOf(rules, tcp("::ffff:10.1.0.1", "erin", "erin"))).toBe(5);
    expect(lineOf(rules, tcp("::1", "app", "carol"))).toBe(6);
    expect(lineOf(rules, tcp("::1", "app", "erin"))).toBeNull();
    expect(lineOf(rules, tcp("::2", "app", "bob"))).toBeNull();
    // an IPv6 rule over the IPv4-mapped range matches plain IPv4 clients, as PostgreSQL's
    expect(lineOf(rules, tcp("10.9.3.4", "app", "zed"))).toBe(7);
    expect(lineOf(rules, tcp("8.8.8.8", "app", "dave"))).toBe(8);
    // an IPv4 rule never matches a native IPv6 client
    expect(lineOf(rules, tcp("::8", "app", "dave"))).toBeNull();
    expect(lineOf(rules, tcp("not-an-address", "app", "dave"))).toBeNull();
  });

  test("names are compared exactly (no case folding), quoted all is a name", () => {
    const r = parse('host "all" "Alice" 127.0.0.1/32 md5');
    expect(lineOf(r, tcp("127.0.0.1", "all", "Alice"))).toBe(1);
    expect(lineOf(r, tcp("127.0.0.1", "app", "Alice"))).toBeNull();
    expect(lineOf(r, tcp("127.0.0.1", "all", "alice"))).toBeNull();
  });
});

describe("cert decision", () => {
  const tls = (cn: string | null, verified = true) => ({ protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", peerCommonName: cn, peerVerified: verified });
  test("a verified certificate whose CN is the user passes; anything else is 28000", () => {
    expect(certDecision(tls("alice"), "alice")).toBeUndefined();
    expect(certDecision(tls("alice"), "bob")?.code).toBe("28000");
    expect(certDecision(tls("alice"), "bob")?.message).toBe('certificate authentication failed for user "bob"');
    expect(certDecision(tls("Alice"), "alice")?.code).toBe("28000");
    expect(certDecision(tls("alice", false), "alice")?.message).toBe("connection requires a valid client certificate");
    expect(certDecision(tls(null), "alice")?.message).toBe("connection requires a valid client certificate");
    expect(certDecision(null, "alice")?.message).toBe("connection requires a valid client certificate");
  });
});
