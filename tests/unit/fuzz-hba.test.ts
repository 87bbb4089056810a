// Property-based fuzz of the auth_hba_file parser and matcher: arbitrary text only ever parses or fails with a
// file:line reason; generated rules written with any spacing and quoting read back as written; address matching
// agrees with node:net's BlockList; the first matching rule is the one a plain reading of the rules picks.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BlockList } from "node:net";
import { HbaError, matchHba, parseHba, type HbaConnection } from "../../plugins/auth/hba.ts";

/** Runs per property; PGBUN_FUZZ_RUNS=100000 for a long run on demand. */
const RUNS = Number(process.env.PGBUN_FUZZ_RUNS) || 500;
const FILE = "/nonexistent/pg_hba.conf";
const noIncludes = (p: string): string => {
  throw new Error(`no such file ${p}`);
};

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(":"));
const name = fc.oneof(fc.constantFrom("app", "alice", "bob", "all", "sameuser", "x,y", 'q"q', "with space", "#hash"), fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !s.includes("\n") && !s.includes("\r")));

interface RuleModel {
  type: "local" | "host" | "hostssl" | "hostnossl";
  dbAll: boolean;
  dbs: string[];
  userAll: boolean;
  users: string[];
  addr: { family: 4 | 6; ip: string; bits: number } | null;
  method: "trust" | "reject" | "password" | "md5" | "scram-sha-256" | "cert";
}

const ruleModel: fc.Arbitrary<RuleModel> = fc
  .record({
    type: fc.constantFrom("local", "host", "hostssl", "hostnossl") as fc.Arbitrary<RuleModel["type"]>,
    dbAll: fc.boolean(),
    dbs: fc.array(name, { minLength: 1, maxLength: 3 }),
    userAll: fc.boolean(),
    users: fc.array(name, { minLength: 1, maxLength: 3 }),
    addr: fc.option(fc.oneof(fc.record({ family: fc.constant(4 as const), ip: ipv4, bits: fc.nat(32) }), fc.record({ family: fc.constant(6 as const), ip: ipv6, bits: fc.nat(128) }))),
    method: fc.constantFrom("trust", "reject", "password", "md5", "scram-sha-256", "cert") as fc.Arbitrary<RuleModel["method"]>,
  })
  .map((r) => ({ ...r, addr: r.type === "local" ? null : r.addr, method: r.method === "cert" && r.type !== "hostssl" ? "md5" : r.method }));

/** A name as a pg_hba.conf word: always quoted when it could be read otherwise (and sometimes anyway). */
function word(n: string, quote: boolean): string {
  const plain = /^[A-Za-z0-9_.-]+$/.test(n) && n !== "all" && n !== "sameuser";
  return plain && !quote ? n : `"${n.replace(/"/g, '""')}"`;
}

const space = fc.constantFrom(" ", "  ", "\t", " \t ");

function render(r: RuleModel, sp: string, quote: boolean, commaSpace: boolean): string {
  const list = (all: boolean, names: string[]) => (all ? ["all", ...names.map((n) => word(n, quote))] : names.map((n) => word(n, quote))).join(commaSpace ? ", " : ",");
  const cols = [r.type, list(r.dbAll, r.dbs), list(r.userAll, r.users)];
  if (r.type !== "local") cols.push(r.addr === null ? "all" : `${r.addr.ip}/${r.addr.bits}`);
  cols.push(r.method);
  return cols.join(sp) + (quote ? `${sp}# comment "with quotes"` : "");
}

/** node:net's BlockList holding just this rule's subnet. */
function oracle(addr: NonNullable<RuleModel["addr"]>): BlockList {
  const b = new BlockList();
  b.addSubnet(addr.ip, addr.bits, addr.family === 4 ? "ipv4" : "ipv6");
  return b;
}

/** The rule a plain reading picks: the first whose type, address, database and user all match. */
function reference(rules: RuleModel[], c: HbaConnection & { family: 4 | 6 }): number | null {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (c.unix !== (r.type === "local")) continue;
    if (r.type === "hostssl" && !c.tls) continue;
    if (r.type === "hostnossl" && c.tls) continue;
    if (!c.unix && r.addr !== null) {
      // an IPv6 rule sees an IPv4 client as ::ffff:a.b.c.d, as PostgreSQL does (BlockList maps the other way itself)
      const inside = r.addr.family === 6 && c.family === 4 ? oracle(r.addr).check(`::ffff:${c.addr}`, "ipv6") : oracle(r.addr).check(c.addr, c.family === 4 ? "ipv4" : "ipv6");
      if (!inside) continue;
    }
    if (!(r.dbAll || r.dbs.includes(c.database))) continue;
    if (!(r.userAll || r.users.includes(c.user))) continue;
    return i + 1;
  }
  return null;
}

describe("fuzz: HBA parser", () => {
  test("arbitrary text parses or fails with an HbaError naming a line of it, never anything else", () => {
    const line = fc.array(fc.oneof(fc.constantFrom("host", "local", "hostssl", "all", "md5", "trust", "127.0.0.1/32", "::1/128", "255.0.0.0", ",", '"', "#", " ", "\t", "@", "+", "/"), fc.string({ maxLength: 4 })), { maxLength: 10 }).map((p) => p.join(""));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), (lines) => {
        try {
          parseHba(lines.join("\n"), FILE, noIncludes);
        } catch (err) {
          expect(err).toBeInstanceOf(HbaError);
          const e = err as HbaError;
          expect(e.line).toBeGreaterThanOrEqual(1);
          expect(e.line).toBeLessThanOrEqual(Math.max(1, lines.length));
          expect(e.message.startsWith(`${FILE}:${e.line}: `)).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test("generated rules, written with any spacing and quoting, read back as written", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(ruleModel, space, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 6 }), fc.boolean(), (specs, blankLines) => {
        const text = specs.map(([r, sp, q, cs]) => render(r, sp, q, cs)).join(blankLines ? "\n\n# between\n" : "\n");
        const rules = parseHba(text, FILE, noIncludes);
        expect(rules.length).toBe(specs.length);
        rules.forEach((got, i) => {
          const want = specs[i]![0];
          expect(got.type).toBe(want.type);
          expect(got.method).toBe(want.method);
          expect(got.databases.all).toBe(want.dbAll);
          expect(got.databases.sameuser).toBe(false);
          expect([...got.databases.names].sort()).toEqual([...new Set(want.dbs)].sort());
          expect(got.users.all).toBe(want.userAll);
          expect([...got.users.names].sort()).toEqual([...new Set(want.users)].sort());
          expect(got.address === null).toBe(want.addr === null);
          expect(got.line).toBe(blankLines ? 1 + 3 * i : 1 + i);
        });
      }),
      { numRuns: RUNS },
    );
  });

  test("matching picks the first rule a plain reading picks; addresses agree with node:net's BlockList", () => {
    const client = fc.record({
      unix: fc.boolean(),
      tls: fc.boolean(),
      family: fc.constantFrom(4 as const, 6 as const),
      v4: ipv4,
      v6: ipv6,
      database: fc.constantFrom("app", "alice", "bob", "other"),
      user: fc.constantFrom("alice", "bob", "carol"),
    });
    fc.assert(
      fc.property(fc.array(ruleModel, { minLength: 1, maxLength: 8 }), fc.array(client, { minLength: 1, maxLength: 8 }), fc.nat(), (models, clients, pick) => {
        const rules = parseHba(models.map((r) => render(r, " ", false, false)).join("\n"), FILE, noIncludes);
        for (const c of clients) {
          // sometimes a client inside a rule's subnet, so matches are not all by chance
          const near = models[pick % models.length]!.addr;
          const addr = near !== null && pick % 2 === 0 ? near.ip : c.family === 4 ? c.v4 : c.v6;
          const family = near !== null && pick % 2 === 0 ? near.family : c.family;
          const conn = { unix: c.unix, tls: c.tls, addr: c.unix ? "unix" : addr, database: c.database, user: c.user, family };
          expect(matchHba(rules, conn)?.line ?? null).toBe(reference(models, conn));
        }
      }),
      { numRuns: RUNS },
    );
  });
});
