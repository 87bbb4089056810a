// Property-based fuzz of both SCRAM-SHA-256 parsers: pgbun:auth's server side (clients' messages) and the core's client
// side (servers' messages). Any input is answered or refused with the parser's own error, never another exception;
// a real exchange succeeds, and any change to it fails; bounds hold for hostile sizes and iteration counts.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { MAX_ITERATIONS, MAX_SERVER_MESSAGE, ScramClient, ScramKeysMismatch, ScramServerError } from "../../core/auth/scram-client.ts";
import { mockScramKeys, provenClientKey, ScramProtocolError, ScramServer, scramKeysOf, type ScramKeys } from "../../plugins/auth/scram.ts";
import type { Secret } from "../../plugins/auth/auth-file.ts";

/** Runs per property; PGBUN_FUZZ_RUNS=100000 for a long run on demand. */
const RUNS = Number(process.env.PGBUN_FUZZ_RUNS) || 1000;
// PBKDF2 at PostgreSQL's 4096 costs ms a run: the parsers do not care about the count
const ITERATIONS = 16;
const SALT = Buffer.from("0123456789abcdef");
const KEYS = scramKeysOf("pw", SALT, ITERATIONS);

/** A SCRAM secret as auth_file gives it (kind "scram"): the server remembers the ClientKey a client proves against it. */
function secretOf(password: string): ScramKeys & Secret {
  return { kind: "scram", ...scramKeysOf(password, SALT, ITERATIONS) };
}

/** Runs `f`; an error other than one of `allowed` fails the property. */
function onlyThrows(f: () => unknown, ...allowed: Array<new (...a: never[]) => Error>): void {
  try {
    f();
  } catch (err) {
    if (!allowed.some((c) => err instanceof c)) throw err;
  }
}

/** One whole exchange; returns the messages so that a property can alter any of them. */
function exchange(password = "pw", keys: ScramKeys = KEYS) {
  const client = new ScramClient(password);
  const server = new ScramServer(keys);
  const clientFirst = client.clientFirst();
  const serverFirst = server.serverFirstMessage(clientFirst);
  const clientFinal = client.clientFinal(serverFirst);
  return { client, server, clientFirst, serverFirst, clientFinal };
}

/** Strings made of SCRAM's own pieces, so that the fuzz reaches past the first check. */
const scramish = fc
  .array(fc.oneof(fc.constantFrom("n", "y", "p", "c", "r", "s", "i", "v", "e", "m", "=", ",", "n,,", "biws", "==", "\u0000", "\u00ff", "\ud800"), fc.string({ maxLength: 8 })), { maxLength: 24 })
  .map((parts) => parts.join(""));

describe("pgbun:auth's SCRAM server reading a client's messages", () => {
  test("examples: a proof that is not base64 or not 32 bytes is a malformed message (08P01, as PostgreSQL), not a wrong password", () => {
    for (const proof of ["!!!!", "AAAA", Buffer.alloc(31).toString("base64"), Buffer.alloc(33).toString("base64"), `${Buffer.alloc(32).toString("base64")}x`]) {
      const { server, clientFinal } = exchange();
      const bad = clientFinal.replace(/p=.*$/, `p=${proof}`);
      expect(() => server.serverFinalMessage(bad)).toThrow(ScramProtocolError);
    }
    // a right-sized proof that is wrong: a wrong password (28P01)
    const { server, clientFinal } = exchange();
    expect(server.serverFinalMessage(clientFinal.replace(/p=.*$/, `p=${Buffer.alloc(32).toString("base64")}`))).toBeNull();
  });

  test("any client-first-message is answered or refused with ScramProtocolError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), scramish, scramish.map((s) => `n,,n=,r=${s}`)), (first) => {
        onlyThrows(() => {
          const answer = new ScramServer(KEYS).serverFirstMessage(first);
          // an answer extends the client's nonce with printable characters, and names our salt and count
          expect(answer).toMatch(/^r=[\x21-\x2b\x2d-\x7e]+,s=[A-Za-z0-9+/=]+,i=16$/);
        }, ScramProtocolError);
      }),
      { numRuns: RUNS },
    );
  });

  test("any client-final-message after a good client-first is refused (ScramProtocolError or a failed proof)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), scramish, scramish.map((s) => `c=biws,r=${s}`)), (final) => {
        const { server } = exchange();
        onlyThrows(() => expect(server.serverFinalMessage(final)).toBeNull(), ScramProtocolError);
      }),
      { numRuns: RUNS },
    );
  });

  test("a real exchange succeeds, and changing any one character of the client-final-message fails it", () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0x20, max: 0x7e }), (at, code) => {
        const { client, server, clientFinal } = exchange();
        const i = at % clientFinal.length;
        const changed = clientFinal.slice(0, i) + String.fromCharCode(code) + clientFinal.slice(i + 1);
        fc.pre(changed !== clientFinal);
        onlyThrows(() => expect(server.serverFinalMessage(changed)).toBeNull(), ScramProtocolError);
        // the same exchange without the change passes both ways
        const good = exchange();
        const serverFinal = good.server.serverFinalMessage(good.clientFinal);
        expect(serverFinal).not.toBeNull();
        good.client.verifyServerFinal(serverFinal!);
        void client;
      }),
      { numRuns: Math.min(RUNS, 200) },
    );
  });

  test("a wrong password and an unknown user's mock keys fail at the proof; a proof against a SCRAM secret leaves its ClientKey", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), (password) => {
        const secret = secretOf(`secret-${password}`);
        const { server, clientFinal } = exchange(password, secret);
        expect(server.serverFinalMessage(clientFinal)).toBeNull();
        const mock = exchange(password, mockScramKeys(password, ITERATIONS));
        expect(mock.server.serverFinalMessage(mock.clientFinal)).toBeNull();
        const right = exchange(`secret-${password}`, secret);
        expect(right.server.serverFinalMessage(right.clientFinal)).not.toBeNull();
        const clientKey = provenClientKey(secret.storedKey)!;
        expect(createHash("sha256").update(clientKey).digest().equals(secret.storedKey)).toBe(true);
      }),
      { numRuns: Math.min(RUNS, 100) },
    );
  });
});

describe("the core's SCRAM client reading a server's messages", () => {
  const nonceOf = (client: ScramClient) => /r=(.*)$/.exec(client.clientFirst())![1]!;

  test("any server-first-message is answered or refused with ScramServerError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), scramish), fc.boolean(), (text, prefixNonce) => {
        const client = new ScramClient("pw");
        const serverFirst = prefixNonce ? `r=${nonceOf(client)}${text}` : text;
        onlyThrows(() => {
          const final = client.clientFinalMessage(serverFirst);
          expect(typeof final).toBe("string"); // small counts are computed at once
        }, ScramServerError);
      }),
      { numRuns: RUNS },
    );
  });

  test("structured server-first-messages: nonce, salt and count each checked, the bounds held", () => {
    const count = fc.oneof(fc.integer({ min: -5, max: 20 }), fc.constantFrom(MAX_ITERATIONS + 1, 2 ** 31, 2 ** 53), fc.string({ maxLength: 12 }));
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 20 })), count, fc.nat(3000), (extra, salt, i, pad) => {
        const client = new ScramClient("pw");
        const serverFirst = `r=${nonceOf(client)}${extra}${"x".repeat(pad)},s=${salt},i=${i}`;
        let final: string | Promise<string> | undefined;
        onlyThrows(() => (final = client.clientFinalMessage(serverFirst)), ScramServerError);
        if (final === undefined) return;
        // accepted only within every bound, and with a nonce that adds something of the server's
        expect(serverFirst.length).toBeLessThanOrEqual(MAX_SERVER_MESSAGE);
        expect(`${extra}${"x".repeat(pad)}`.length).toBeGreaterThan(0);
        expect(String(i)).toMatch(/^[1-9][0-9]*$/);
        expect(Number(i)).toBeLessThanOrEqual(MAX_ITERATIONS);
        expect(Buffer.from(salt, "base64").length).toBeGreaterThan(0);
        // computed at once up to 8192 iterations, off the event loop above
        if (typeof final !== "string") (final as Promise<string>).catch(() => {});
        expect(typeof final === "string").toBe(Number(i) <= 8192);
      }),
      { numRuns: RUNS },
    );
  });

  test("any server-final-message other than the right signature is refused with ScramServerError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), scramish, fc.base64String({ maxLength: 60 }).map((b) => `v=${b}`)), (serverFinal) => {
        const { client, server, clientFinal } = exchange();
        const right = server.serverFinalMessage(clientFinal)!;
        fc.pre(serverFinal !== right);
        expect(() => client.verifyServerFinal(serverFinal)).toThrow(ScramServerError);
        client.verifyServerFinal(right);
      }),
      { numRuns: RUNS },
    );
  });

  test("with a client's keys (pass-through) the login works only against the same salt and count", () => {
    const secret = secretOf("through");
    const proof = exchange("through", secret);
    expect(proof.server.serverFinalMessage(proof.clientFinal)).not.toBeNull();
    const keys = { iterations: secret.iterations, salt: secret.salt, clientKey: provenClientKey(secret.storedKey)!, serverKey: secret.serverKey };
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), (otherSalt, otherCount) => {
        const serverKeys = otherSalt || otherCount ? scramKeysOf("through", otherSalt ? Buffer.from("another salt....") : SALT, otherCount ? ITERATIONS + 1 : ITERATIONS) : secret;
        const client = new ScramClient(keys);
        const server = new ScramServer(serverKeys);
        const serverFirst = server.serverFirstMessage(client.clientFirst());
        if (otherSalt || otherCount) {
          expect(() => client.clientFinalMessage(serverFirst)).toThrow(ScramKeysMismatch);
          return;
        }
        const serverFinal = server.serverFinalMessage(client.clientFinalMessage(serverFirst) as string);
        expect(serverFinal).not.toBeNull();
        client.verifyServerFinal(serverFinal!);
      }),
      { numRuns: 20 },
    );
  });

  test("a high iteration count is computed off the event loop (a Promise), and still right", async () => {
    const keys = scramKeysOf("pw", SALT, 20_000);
    const client = new ScramClient("pw");
    const server = new ScramServer(keys);
    const final = client.clientFinalMessage(server.serverFirstMessage(client.clientFirst()));
    expect(final).toBeInstanceOf(Promise);
    const serverFinal = server.serverFinalMessage(await final);
    expect(serverFinal).not.toBeNull();
    client.verifyServerFinal(serverFinal!);
  });
});
