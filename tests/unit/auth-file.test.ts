// Unit: pgbun:auth's userlist.txt parser and secrets, and its SCRAM server against pgbun's own SCRAM client.
import { expect, test } from "bun:test";
import { parseAuthFile, parseSecret } from "../../plugins/auth/auth-file.ts";
import { mockScramKeys, ScramProtocolError, ScramServer, scramKeysOf } from "../../plugins/auth/scram.ts";
import { ScramClient } from "../../core/auth/scram-client.ts";

test("userlist.txt: quoted fields, doubled quotes, comments and junk skipped, later lines win", () => {
  const users = parseAuthFile(
    [
      `; comment`,
      `# another`,
      ``,
      `"alice" "pw1" "ignored third field"`,
      `  "bob"   "md5${"a".repeat(32)}"`,
      `"q""uote" "p""w"`,
      `"nosecret"`,
      `"unterminated "x"`,
      `bare words "x"`,
      `"alice" "pw2"`,
      `"" "empty user"`,
    ].join("\r\n"),
  );
  expect([...users.keys()].sort()).toEqual(["alice", "bob", 'q"uote']);
  expect(users.get("alice")).toEqual({ kind: "plain", password: "pw2" });
  expect(users.get("bob")).toEqual({ kind: "md5", hash: `md5${"a".repeat(32)}` });
  expect(users.get('q"uote')).toEqual({ kind: "plain", password: 'p"w' });
});

test("secrets: md5 and SCRAM recognized; a malformed one is a plaintext password, as PgBouncer takes it", () => {
  expect(parseSecret("md5" + "0".repeat(32)).kind).toBe("md5");
  expect(parseSecret("md5" + "0".repeat(31)).kind).toBe("plain");
  const keys = scramKeysOf("pw", Buffer.from("saltsaltsalt"), 4096);
  const text = `SCRAM-SHA-256$4096:${keys.salt.toString("base64")}$${keys.storedKey.toString("base64")}:${keys.serverKey.toString("base64")}`;
  const s = parseSecret(text);
  expect(s.kind).toBe("scram");
  if (s.kind === "scram") {
    expect(s.iterations).toBe(4096);
    expect(s.storedKey.equals(keys.storedKey)).toBe(true);
  }
  expect(parseSecret("SCRAM-SHA-256$4096:abc$short:short").kind).toBe("plain");
});

function exchange(serverKeys: ReturnType<typeof scramKeysOf>, password: string): { ok: boolean } {
  const client = new ScramClient(password);
  const server = new ScramServer(serverKeys);
  const first = client.clientFirst();
  const serverFirst = server.serverFirstMessage(first);
  const final = server.serverFinalMessage(client.clientFinal(serverFirst));
  if (final === null) return { ok: false };
  client.verifyServerFinal(final); // throws when the server's signature is wrong
  return { ok: true };
}

test("the SCRAM server accepts the right password (and proves itself to the client), refuses a wrong one", () => {
  const keys = scramKeysOf("right", Buffer.from("0123456789abcdef"), 4096);
  expect(exchange(keys, "right")).toEqual({ ok: true });
  expect(exchange(keys, "wrong")).toEqual({ ok: false });
  expect(exchange(mockScramKeys("nobody", 4096), "right")).toEqual({ ok: false });
});

test("mock keys give one user the same salt every time and other users another", () => {
  expect(mockScramKeys("a", 4096).salt.equals(mockScramKeys("a", 4096).salt)).toBe(true);
  expect(mockScramKeys("a", 4096).salt.equals(mockScramKeys("b", 4096).salt)).toBe(false);
});

test("malformed client messages are protocol errors, never crashes", () => {
  const keys = scramKeysOf("pw", Buffer.from("0123456789abcdef"), 4096);
  for (const bad of ["", "n,,", "x,,n=,r=a", "n,a=admin,n=,r=a", "p=tls-server-end-point,,n=,r=a", "n,,r=a", "n,,n=,r=a,b", "n,,n=,r=a\u0000"]) {
    expect(() => new ScramServer(keys).serverFirstMessage(bad)).toThrow(ScramProtocolError);
  }
  const s = new ScramServer(keys);
  const sf = s.serverFirstMessage("n,,n=,r=abc");
  const nonce = sf.split(",")[0]!.slice(2);
  expect(() => s.serverFinalMessage("garbage")).toThrow(ScramProtocolError);
  expect(() => s.serverFinalMessage(`c=eSws,r=${nonce},p=AAAA`)).toThrow(ScramProtocolError); // channel binding flag changed
  expect(() => s.serverFinalMessage(`c=biws,r=${nonce}x,p=AAAA`)).toThrow(ScramProtocolError);
  // a proof that is not 32 bytes is malformed, as PostgreSQL says ("Malformed proof in client-final-message"), 08P01
  expect(() => s.serverFinalMessage(`c=biws,r=${nonce},p=AAAA`)).toThrow(ScramProtocolError);
});
