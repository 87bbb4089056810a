// The SCRAM-SHA-256 and md5 formulas PostgreSQL uses, shared by pgbun's server logins (client side) and pgbun:auth (server side).
import { createHash, createHmac } from "node:crypto";

export function hmacSha256(key: Buffer, data: string | Buffer): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

/** RFC 5802's keys from a SaltedPassword (PBKDF2 of the password): ClientKey, StoredKey = H(ClientKey), ServerKey. */
export function scramKeysFromSalted(salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmacSha256(salted, "Client Key");
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmacSha256(salted, "Server Key") };
}

export function md5Hex(data: string | Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** The md5 password response for a stored hash's inner part md5(password + user): "md5" + md5(inner + salt). */
export function md5SaltedResponse(inner: string, salt: Uint8Array): string {
  return "md5" + md5Hex(Buffer.concat([Buffer.from(inner), salt]));
}

/**
 * What a SCRAM-SHA-256 login to PostgreSQL needs instead of the password (PgBouncer's SCRAM pass-through): the
 * ClientKey recovered from a client's proof against an equal secret (ClientKey = ClientProof XOR
 * HMAC(StoredKey, AuthMessage), checked by H(ClientKey) = StoredKey) and the secret's ServerKey, salt and count.
 */
export interface ScramPassthroughKeys {
  iterations: number;
  salt: Buffer;
  clientKey: Buffer;
  serverKey: Buffer;
}
