// Property-based fuzz of the startup phase through a real in-process pgbun: hostile startup packets never crash or hang it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type Socket } from "node:net";
import fc from "fast-check";
import { startTestPooler, type TestPooler } from "../../bin/testing.ts";
import { usePostgres, waitFor } from "../harness/fixtures.ts";
import { loginApp } from "../harness/wire.ts";

setDefaultTimeout(120_000);

/** Runs per property; PGBUN_FUZZ_RUNS=5000 for a long run on demand (each run is one or two connections). */
const RUNS = Number(process.env.PGBUN_FUZZ_RUNS) || 80;
/** How long a connection the pooler rightly keeps waiting on (incomplete input) is watched for a stray answer. */
const QUIET_MS = 120;

const CODES = { v30: 196608, v32: 196610, v20: 131072, cancel: 80877102, ssl: 80877103, gss: 80877104 } as const;

const pg = usePostgres();
let p: TestPooler;
beforeAll(async () => {
  p = await startTestPooler({
    upstream: { host: pg.host, port: pg.port, password: pg.password },
    settings: { pool_mode: "transaction", default_pool_size: 2, max_client_conn: 500, client_login_timeout: 5 },
  });
});
afterAll(async () => {
  await p?.stop();
});

// ---------------------------------------------------------------------------------------------------------------
// Packets

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return b;
}

/** A length-prefixed startup-phase packet: `len` overrides the true length (hostile lengths). */
function packet(code: number, body: Uint8Array, len?: number): Buffer {
  return Buffer.concat([int32(len ?? body.length + 8), int32(code), body]);
}

const keyArb = fc.oneof(
  fc.constantFrom("user", "database", "options", "application_name", "replication", "client_encoding", "DateStyle", "_pq_.x", ""),
  fc.string({ maxLength: 12 }),
);
const valueArb = fc.oneof(
  fc.constantFrom("postgres", "app", "-c work_mem=64kB", "-c", "--search_path=x", "true", "database", "UTF8", "\\", ""),
  fc.string({ maxLength: 40, unit: "binary" }),
);
/** StartupMessage bodies: key/value cstrings, sometimes unterminated or with stray NULs. */
const paramsArb = fc
  .tuple(fc.array(fc.tuple(keyArb, valueArb), { maxLength: 6 }), fc.boolean(), fc.boolean(), fc.boolean())
  .map(([pairs, withUser, terminated, strayNul]) => {
    const all: Array<[string, string]> = withUser ? [["user", "postgres"], ...pairs] : pairs;
    let s = all.map(([k, v]) => `${k}\0${v}\0`).join("") + (terminated ? "\0" : "");
    if (strayNul) s = s.replace("\0", "\0\0");
    return new Uint8Array(Buffer.from(s, "utf8"));
  });
const codeArb = fc.oneof(fc.constantFrom(...Object.values(CODES)), fc.integer());
const lenArb = fc.option(fc.oneof(fc.integer({ min: -10, max: 20 }), fc.integer({ min: 9990, max: 10010 }), fc.integer()), { freq: 3 });
/** A StartupMessage a real client could send (user postgres, database app) with odd but well-formed extras. */
const loginArb = fc
  .tuple(
    fc.constantFrom(CODES.v30, CODES.v32, 196609),
    fc.array(fc.tuple(fc.constantFrom("application_name", "options", "client_encoding", "_pq_.x", "extra_float_digits"), valueArb), { maxLength: 3 }),
  )
  .map(([code, extras]) => {
    const pairs: Array<[string, string]> = [["user", "postgres"], ["database", "app"], ...extras.map(([k, v]): [string, string] => [k, v.replaceAll("\0", "")])];
    return packet(code, Buffer.from(pairs.map(([k, v]) => `${k}\0${v}\0`).join("") + "\0", "utf8"));
  });
const onePacketArb = fc.oneof(
  { weight: 3, arbitrary: loginArb },
  { weight: 5, arbitrary: fc.tuple(codeArb, paramsArb, lenArb).map(([c, b, l]) => packet(c, b, l ?? undefined)) },
  { weight: 2, arbitrary: fc.constantFrom(packet(CODES.ssl, new Uint8Array()), packet(CODES.gss, new Uint8Array())) },
  { weight: 1, arbitrary: fc.tuple(fc.integer(), fc.integer()).map(([a, b]) => packet(CODES.cancel, Buffer.concat([int32(a), int32(b)]))) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from("X\0\0\0\x04"), Buffer.from("p\0\0\0\x08abcd")) },
);
const inputArb = fc.array(onePacketArb, { minLength: 1, maxLength: 3 }).map((ps) => Buffer.concat(ps));

// ---------------------------------------------------------------------------------------------------------------
// What the pooler must do, read off the input the way PostgreSQL's startup phase reads it

type Expect =
  /** waits for more input (incomplete packet), having refused `n` encryption requests */
  | { kind: "waits"; refusals: number }
  /** closes without a word (CancelRequest, Terminate) after `n` refusals */
  | { kind: "closes"; refusals: number }
  /** answers a StartupMessage or refuses the input: ErrorResponse, NegotiateProtocolVersion or an authentication request */
  | { kind: "answers"; refusals: number; badLength: boolean };

/**
 * Set by expected() when bytes follow an encryption request in the input: if they reach the pooler in the same read
 * as the request (the test's cuts and TCP decide that), PostgreSQL and pgbun answer the request ('N') and then refuse
 * them (08P01 "received unencrypted data after SSL request", CVE-2021-23214), whatever the bytes are.
 */
let mayRefuseUnencrypted = false;

function expected(input: Buffer): Expect {
  mayRefuseUnencrypted = false;
  let at = 0;
  let refusals = 0;
  for (;;) {
    const rest = input.length - at;
    if (rest > 0 && input[at] === 0x58) return rest < 5 ? { kind: "waits", refusals } : { kind: "closes", refusals };
    if (rest < 8) return { kind: "waits", refusals };
    const len = input.readInt32BE(at);
    // a TLS record as the very first bytes is direct TLS (PostgreSQL 17), which this pooler (no TLS) closes unanswered
    if (at === 0 && input[0] === 0x16 && (len < 8 || len > 10000)) return { kind: "closes", refusals };
    if (len < 8 || len > 10000) return { kind: "answers", refusals, badLength: true };
    if (rest < len) return { kind: "waits", refusals };
    const code = input.readInt32BE(at + 4);
    if (code === CODES.ssl || code === CODES.gss) {
      if (len !== 8) return { kind: "answers", refusals, badLength: true };
      // bytes behind the request that arrive in the same read are refused (see unencryptedRefusal)
      if (at + 8 < input.length) mayRefuseUnencrypted = true;
      refusals++;
      at += 8;
      continue;
    }
    if (code === CODES.cancel) return { kind: "closes", refusals };
    return { kind: "answers", refusals, badLength: false };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A raw connection

interface Seen {
  bytes: Buffer;
  closed: boolean;
}

/** A login got as far as it can without us: ReadyForQuery, or an authentication request other than AuthenticationOk. */
function loginSettled(bytes: Buffer, refusals: number): boolean {
  for (let at = refusals; at + 5 <= bytes.length; ) {
    const len = bytes.readInt32BE(at + 1);
    if (len < 4 || at + 1 + len > bytes.length) return false;
    if (bytes[at] === 0x5a) return true;
    if (bytes[at] === 0x52 && len >= 8 && bytes.readInt32BE(at + 5) !== 0) return true;
    at += 1 + len;
  }
  return false;
}

/**
 * Sends `input` in the given pieces and collects what comes back until the pooler closes, the login settles, or
 * `quietMs` pass without news.
 */
function exchange(input: Buffer, cuts: number[], quietMs: number, untilMs: number, refusals = 0): Promise<Seen> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let from = 0;
    for (const c of [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b).concat(input.length)) {
      if (c > from) parts.push(input.subarray(from, c));
      from = Math.max(from, c);
    }
    const got: Buffer[] = [];
    let done = false;
    let quiet: ReturnType<typeof setTimeout>;
    const s: Socket = connect(p.port, p.host);
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(limit);
      s.destroy();
      resolve({ bytes: Buffer.concat(got), closed });
    };
    const limit = setTimeout(() => finish(false), untilMs);
    const rearm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(false), quietMs);
    };
    s.on("connect", () => {
      for (const part of parts) s.write(part);
      rearm();
    });
    s.on("data", (d: Buffer) => {
      got.push(d);
      if (loginSettled(Buffer.concat(got), refusals)) setTimeout(() => finish(false), 20); // an ErrorResponse still closes
      else rearm();
    });
    s.on("close", () => finish(true));
    s.on("error", () => finish(true));
  });
}

/** Splits what the pooler sent into leading 'N' refusals and backend messages; throws on a malformed frame. */
function parse(bytes: Buffer, refusals: number): { ns: number; messages: Array<{ type: string; body: Buffer }>; partial: boolean } {
  let at = 0;
  let ns = 0;
  while (ns < refusals && at < bytes.length && bytes[at] === 0x4e) {
    ns++;
    at++;
  }
  const messages: Array<{ type: string; body: Buffer }> = [];
  while (at + 5 <= bytes.length) {
    const len = bytes.readInt32BE(at + 1);
    if (len < 4) throw new Error(`malformed backend message length ${len}`);
    if (at + 1 + len > bytes.length) break;
    messages.push({ type: String.fromCharCode(bytes[at]!), body: bytes.subarray(at + 5, at + 1 + len) });
    at += 1 + len;
  }
  return { ns, messages, partial: at < bytes.length };
}

function sqlStateOf(body: Buffer): string {
  for (let i = 0; i < body.length && body[i] !== 0; ) {
    const end = body.indexOf(0, i + 1);
    if (body[i] === 0x43) return body.toString("utf8", i + 1, end);
    i = end + 1;
  }
  return "";
}

// ---------------------------------------------------------------------------------------------------------------

describe("startup phase, fuzzed through a real pgbun", () => {
  test("every startup input gets what PostgreSQL's startup phase gives it: an ErrorResponse, an answer to a login, a close, or patience", async () => {
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(inputArb, fc.array(fc.nat(), { maxLength: 4 }), async (input, cuts) => {
        const want = expected(input);
        const quiet = want.kind === "waits" ? QUIET_MS : 3_000;
        const seen = await exchange(input, cuts, quiet, 8_000, want.refusals);
        const { ns, messages, partial } = parse(seen.bytes, want.refusals);
        expect(partial).toBe(false);
        const refusedUnencrypted =
          messages.length === 1 && messages[0]!.type === "E" && /received unencrypted data after SSL request/.test(messages[0]!.body.toString("latin1"));
        if (refusedUnencrypted) {
          // only where bytes followed a request, after its 'N', as PostgreSQL's 08P01, and the connection ends
          expect(mayRefuseUnencrypted).toBe(true);
          expect(ns).toBeGreaterThanOrEqual(1);
          expect(sqlStateOf(messages[0]!.body)).toBe("08P01");
          expect(seen.closed).toBe(true);
          outcomes["refused-unencrypted"] = (outcomes["refused-unencrypted"] ?? 0) + 1;
          return;
        }
        expect(ns).toBe(want.refusals); // one 'N' for each SSLRequest/GSSENCRequest, before anything else
        const types = messages.map((m) => m.type);
        outcomes[`${want.kind}:${types[0] ?? (seen.closed ? "closed" : "-")}`] = (outcomes[`${want.kind}:${types[0] ?? (seen.closed ? "closed" : "-")}`] ?? 0) + 1;
        if (want.kind === "waits") {
          expect({ types, closed: seen.closed }).toEqual({ types: [], closed: false });
        } else if (want.kind === "closes") {
          expect({ types, closed: seen.closed }).toEqual({ types: [], closed: true });
        } else {
          expect(types.length).toBeGreaterThan(0);
          expect(["E", "R", "v"]).toContain(types[0]!);
          for (const m of messages.filter((m) => m.type === "E")) expect(sqlStateOf(m.body)).toMatch(/^[0-9A-Z]{5}$/);
          if (want.badLength) expect(messages.map((m) => [m.type, m.type === "E" ? sqlStateOf(m.body) : ""])).toEqual([["E", "08P01"]]);
          // NegotiateProtocolVersion is followed by the login's answer; a finished login carries pgbun's cancel key
          if (types[0] === "v") expect(["E", "R"]).toContain(types[1]!);
          // (bytes after the StartupMessage are read as the session's first messages, so more may follow the Z)
          const z = types.indexOf("Z");
          if (z >= 0) expect(types.slice(z - 1, z + 1)).toEqual(["K", "Z"]);
          // an ErrorResponse at login is fatal: the connection ends
          if (types.includes("E") && !types.includes("Z")) expect(seen.closed).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
    if (process.env.PGBUN_FUZZ_VERBOSE) console.log(outcomes);
    // every kind of outcome was exercised (the generators are not stuck on one)
    const kinds = new Set(Object.keys(outcomes).map((k) => k.split(":")[0]));
    for (const kind of ["answers", "closes", "waits"]) expect(kinds).toContain(kind);

    // nothing is left behind, and a normal client is served afterwards
    await waitFor("every fuzzing connection to be gone", () => p.core.clients.size === 0, 10_000);
    const c = await loginApp(p);
    expect((await c.query("SELECT 'still serving'")).rows).toEqual([["still serving"]]);
    c.destroy();
  });

  test("a burst of hostile connections at once, then normal clients still log in and query", async () => {
    const inputs = fc.sample(inputArb, { numRuns: Math.min(200, RUNS * 2), seed: 42 });
    await Promise.all(inputs.map((input) => exchange(input, [], 200, 5_000)));
    await waitFor("every burst connection to be gone", () => p.core.clients.size === 0, 10_000);
    for (let i = 0; i < 3; i++) {
      const c = await loginApp(p);
      expect((await c.query(`SELECT ${i}`)).rows).toEqual([[String(i)]]);
      c.destroy();
    }
  });
});
