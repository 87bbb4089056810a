// SCRAM-SHA-256 as a client (pgbun logging in to PostgreSQL), RFC 5802/7677 without channel binding.
import { createHash, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { hmacSha256 as hmac, md5Hex, md5SaltedResponse, scramKeysFromSalted } from "../../plugin-sdk/auth-crypto.ts";

const MAX_SERVER_MESSAGE = 2048; // a hostile server's endless nonce must not cost us
const MAX_ITERATIONS = 1_000_000;
const saltedCache = new Map<string, Buffer>();

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(",")) {
    const eq = part.indexOf("=");
    if (eq !== 1) throw new Error("malformed SCRAM message");
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** Drives one SCRAM-SHA-256 exchange: clientFirst(), then clientFinal(serverFirst), then verifyServerFinal(). */
export class ScramClient {
  private readonly nonce = randomBytes(18).toString("base64");
  private readonly clientFirstBare = `n=*,r=${this.nonce}`;
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly password: string) {}

  clientFirst(): string {
    return `n,,${this.clientFirstBare}`;
  }

  clientFinal(serverFirst: string): string {
    if (serverFirst.length > MAX_SERVER_MESSAGE) throw new Error("SCRAM server-first-message too long");
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get("r");
    const saltB64 = attrs.get("s");
    const iterations = Number(attrs.get("i"));
    if (!nonce || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new Error("SCRAM nonce mismatch");
    if (!saltB64) throw new Error("SCRAM salt missing");
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new Error("SCRAM iteration count invalid");
    const salt = Buffer.from(saltB64, "base64");
    const cacheKey = `${saltB64}:${iterations}:${createHash("sha256").update(this.password).digest("base64")}`;
    let salted = saltedCache.get(cacheKey);
    if (!salted) {
      salted = pbkdf2Sync(this.password, salt, iterations, 32, "sha256");
      if (saltedCache.size > 256) saltedCache.clear();
      saltedCache.set(cacheKey, salted);
    }
    const { clientKey, storedKey, serverKey } = scramKeysFromSalted(salted);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /** Checks the server's proof that it knows the password too (constant-time). */
  verifyServerFinal(serverFinal: string): void {
    if (serverFinal.length > MAX_SERVER_MESSAGE) throw new Error("SCRAM server-final-message too long");
    const attrs = parseAttributes(serverFinal);
    if (attrs.has("e")) throw new Error(`SCRAM server error: ${attrs.get("e")}`);
    const v = Buffer.from(attrs.get("v") ?? "", "base64");
    const expected = this.expectedServerSignature;
    if (!expected || v.length !== expected.length || !timingSafeEqual(v, expected)) {
      throw new Error("SCRAM server signature mismatch");
    }
  }
}

/** The md5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Uint8Array): string {
  return md5SaltedResponse(md5Hex(password + user), salt);
}
