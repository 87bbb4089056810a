// Unit: what pgbun:auth gives a server login (serverCredentials) for each kind of secret, and how the SCRAM keys a
// client proves are kept: per secret (so per user), through a reload that keeps the secret, not past one that changes it.
import { expect, test } from "bun:test";
import { ScramClient } from "../../core/auth/scram-client.ts";
import { parseAuthFile, type Secret } from "../../plugins/auth/auth-file.ts";
import { ScramServer, scramKeysOf, type ScramKeys } from "../../plugins/auth/scram.ts";
import { queriedSecret, rememberQueried, serverCredentialsOf } from "../../plugins/auth/server-credentials.ts";

function scramText(password: string, salt: string): string {
  const k = scramKeysOf(password, Buffer.from(salt), 16);
  return `SCRAM-SHA-256$16:${k.salt.toString("base64")}$${k.storedKey.toString("base64")}:${k.serverKey.toString("base64")}`;
}

/** A client's SCRAM login against `secret` with `password`: true when the proof held. */
function login(secret: Secret, password: string): boolean {
  const client = new ScramClient(password);
  const server = new ScramServer(secret as ScramKeys & Secret);
  return server.serverFinalMessage(client.clientFinal(server.serverFirstMessage(client.clientFirst()))) !== null;
}

test("a plaintext secret is a password, an md5 secret answers md5, nothing for an unknown user", () => {
  const users = parseAuthFile(`"a" "pw"\n"b" "md5${"0123456789abcdef".repeat(2)}"\n`);
  expect(serverCredentialsOf(users.get("a"))).toEqual({ kind: "password", password: "pw" });
  expect(serverCredentialsOf(users.get("b"))).toEqual({ kind: "md5", secret: `md5${"0123456789abcdef".repeat(2)}` });
  expect(serverCredentialsOf(users.get("nobody"))).toBeUndefined();
});

test("a SCRAM secret has no keys until a client proves it, then the ClientKey of that proof; a wrong password adds none", () => {
  const text = `"u" "${scramText("unit-pw-1", "salt-one-1234567")}"`;
  const secret = parseAuthFile(text).get("u")!;
  expect(serverCredentialsOf(secret)).toEqual({ kind: "scram", keys: null });
  expect(login(secret, "wrong")).toBe(false);
  expect(serverCredentialsOf(secret)).toEqual({ kind: "scram", keys: null });
  expect(login(secret, "unit-pw-1")).toBe(true);
  const c = serverCredentialsOf(secret);
  expect(c?.kind === "scram" && c.keys !== null).toBe(true);
  if (c?.kind !== "scram" || c.keys === null || secret.kind !== "scram") return;
  expect(c.keys.salt.equals(secret.salt)).toBe(true);
  expect(c.keys.iterations).toBe(16);
  expect(c.keys.serverKey.equals(secret.serverKey)).toBe(true);
  // the keys log in where the secret is PostgreSQL's: an exchange against the same secret
  const client = new ScramClient(c.keys);
  const server = new ScramServer(secret);
  const serverFinal = server.serverFinalMessage(client.clientFinal(server.serverFirstMessage(client.clientFirst())));
  expect(serverFinal).not.toBeNull();
  client.verifyServerFinal(serverFinal!);

  // a reload with the same secret keeps them; a changed secret (another salt) has none
  expect(serverCredentialsOf(parseAuthFile(text).get("u"))).toEqual(c);
  const changed = parseAuthFile(`"u" "${scramText("unit-pw-1", "salt-two-1234567")}"`).get("u");
  expect(serverCredentialsOf(changed)).toEqual({ kind: "scram", keys: null });
});

test("auth_query's secrets are kept per user until a lookup finds none, the oldest dropped beyond 10,000", () => {
  const secret = parseAuthFile(`"q" "pw"`).get("q")!;
  expect(rememberQueried("q-user", secret)).toBe(secret);
  expect(queriedSecret("q-user")).toBe(secret);
  expect(rememberQueried("q-user", null)).toBeUndefined();
  expect(queriedSecret("q-user")).toBeUndefined();
  rememberQueried("q-first", secret);
  for (let i = 0; i < 10_000; i++) rememberQueried(`q-${i}`, secret);
  expect(queriedSecret("q-first")).toBeUndefined();
  expect(queriedSecret("q-9999")).toBe(secret);
});
