// The exchanges of each auth_type with a client: cleartext password, md5, SCRAM-SHA-256; each says only "ok" or "failed".
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthCode, md5Hex, md5SaltedResponse, SqlState, type Client, type Refusal } from "../../plugin-sdk/index.ts";
import type { Secret } from "./auth-file.ts";
import { authenticationRequest, AuthenticationSASL, decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse } from "./messages.ts";
import { mockScramKeys, ScramProtocolError, ScramServer, scramKeysFor, scramKeysOf, type ScramKeys } from "./scram.ts";

/** The one answer to an unknown user and a wrong password alike (PostgreSQL's). */
export function passwordFailed(user: string): Refusal {
  return { code: SqlState.InvalidPassword, message: `password authentication failed for user "${user}"` };
}

function protocolViolation(message: string): Refusal {
  return { code: SqlState.ProtocolViolation, message };
}

/** Constant-time equality of two strings (lengths may differ: compared as digests). */
function sameSecret(a: string, b: string): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db);
}


/** A cleartext password checked against any kind of secret. */
function passwordMatches(user: string, password: string, secret: Secret): boolean {
  switch (secret.kind) {
    case "plain":
      return sameSecret(password, secret.password);
    case "md5":
      return sameSecret("md5" + md5Hex(password + user), secret.hash);
    case "scram": {
      const keys = scramKeysOf(password, secret.salt, secret.iterations);
      return timingSafeEqual(keys.storedKey, secret.storedKey) && timingSafeEqual(keys.serverKey, secret.serverKey);
    }
  }
}

/** auth_type plain: AuthenticationCleartextPassword, then the password checked against the secret. */
export async function cleartextExchange(client: Client, secret: Secret | undefined): Promise<Refusal | undefined> {
  client.send(authenticationRequest(AuthCode.CleartextPassword));
  const password = decodePasswordMessage(await client.readLoginMessage());
  // PostgreSQL refuses an empty password whatever is stored
  if (secret === undefined || password === "" || !passwordMatches(client.user, password, secret)) return passwordFailed(client.user);
  return undefined;
}

/** auth_type md5 with a plaintext or md5 secret: AuthenticationMD5Password with a random salt. */
export async function md5Exchange(client: Client, secret: Secret | undefined): Promise<Refusal | undefined> {
  const salt = randomBytes(4);
  client.send(authenticationRequest(AuthCode.MD5Password, salt));
  const response = decodePasswordMessage(await client.readLoginMessage());
  if (secret === undefined || secret.kind === "scram") return passwordFailed(client.user);
  const inner = secret.kind === "md5" ? secret.hash.slice(3) : md5Hex(secret.password + client.user);
  const expected = md5SaltedResponse(inner, salt);
  return sameSecret(response, expected) ? undefined : passwordFailed(client.user);
}

/**
 * SCRAM-SHA-256 (auth_type scram-sha-256, or md5 with a SCRAM secret). `keys` null (unknown user, md5 secret)
 * runs the whole exchange against mock keys and fails at the proof, as PostgreSQL does.
 */
export async function scramExchange(client: Client, keys: ScramKeys | null, iterations: number): Promise<Refusal | undefined> {
  const scram = new ScramServer(keys ?? mockScramKeys(client.user, iterations));
  client.send(AuthenticationSASL);
  try {
    const initial = decodeSASLInitialResponse(await client.readLoginMessage());
    if (initial.mechanism !== "SCRAM-SHA-256") return protocolViolation("client selected an invalid SASL authentication mechanism");
    if (initial.data === null) return protocolViolation("malformed SCRAM message");
    const serverFirst = scram.serverFirstMessage(Buffer.from(initial.data).toString("utf8"));
    client.send(authenticationRequest(AuthCode.SASLContinue, Buffer.from(serverFirst)));
    const clientFinal = Buffer.from(decodeSASLResponse(await client.readLoginMessage())).toString("utf8");
    const serverFinal = scram.serverFinalMessage(clientFinal);
    if (serverFinal === null || keys === null) return passwordFailed(client.user);
    client.send(authenticationRequest(AuthCode.SASLFinal, Buffer.from(serverFinal)));
    return undefined;
  } catch (err) {
    if (err instanceof ScramProtocolError) return { code: err.code, message: err.message };
    if (err instanceof RangeError) return protocolViolation("malformed SCRAM message");
    throw err;
  }
}

/** SCRAM keys of a secret; a plaintext secret's are derived once per loaded auth file (the cache dies with it). */
const derived = new WeakMap<Secret, ScramKeys | null>();
export function keysOf(secret: Secret | undefined, iterations: number): ScramKeys | null {
  if (secret === undefined) return null;
  let keys = derived.get(secret);
  if (keys === undefined) derived.set(secret, (keys = scramKeysFor(secret, iterations)));
  return keys;
}
