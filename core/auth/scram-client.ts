// SCRAM-SHA-256 as a client (pgbun logging in to PostgreSQL), RFC 5802/7677 without channel binding, from a password or a client's keys.
import { createHash, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { hmacSha256 as hmac, md5Hex, md5SaltedResponse, scramKeysFromSalted, sha256, type ScramPassthroughKeys } from "../../plugin-sdk/auth-crypto.ts";

/**
 * A server-first-message is about 90 bytes (PostgreSQL's nonce is 48 characters, its salt 24): a hostile server's
 * endless nonce or salt must not cost us (CVE-2026-6665 class). libpq reads any length.
 */
export const MAX_SERVER_MESSAGE = 2048;
/**
 * The highest iteration count pgbun computes PBKDF2 for. PostgreSQL's scram_iterations defaults to 4096 (allows up to
 * INT_MAX); libpq and PgBouncer take any positive count, so a hostile server could make each login cost minutes of
 * CPU. A million is ~250 times the default, and is computed off the event loop.
 */
export const MAX_ITERATIONS = 1_000_000;
/** PBKDF2 results by salt, count and password digest: pool growth does not repeat the expensive part. */
const saltedCache = new Map<string, Buffer>();
const SALTED_CACHE_MAX = 256;

/** A malformed or failing server message; the login fails with this message (08P01). */
export class ScramServerError extends Error {}

/** Keys that cannot answer this server: its secret has another salt or iteration count than the one proven. */
export class ScramKeysMismatch extends Error {}

/** The standard base64 alphabet with its padding, as RFC 5802's `base64` production (PostgreSQL's pg_b64_dec). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function base64(value: string, what: string): Buffer {
  if (!BASE64.test(value)) throw new ScramServerError(`malformed SCRAM message (invalid ${what})`);
  return Buffer.from(value, "base64");
}

/**
 * Reads `a=value` attributes in the order given, as libpq's read_attr_value does: each must come in its place;
 * anything after them is garbage. A server may add extensions nowhere in RFC 5802's server-first-message.
 */
function readAttributes(msg: string, names: string, what: string): string[] {
  const parts = msg.split(",");
  if (parts.length !== names.length) throw new ScramServerError(`malformed SCRAM message (${parts.length < names.length ? "attribute missing from" : "garbage at end of"} ${what})`);
  return parts.map((part, i) => {
    if (part.length < 2 || part[0] !== names[i] || part[1] !== "=") throw new ScramServerError(`malformed SCRAM message (attribute "${names[i]}" expected in ${what})`);
    return part.slice(2);
  });
}

/** The SaltedPassword of a password (SASLprep approximated by NFKC, as pgbun:auth does), off the event loop when not cached. */
function saltedPassword(password: string, salt: Buffer, saltB64: string, iterations: number, sync: boolean): Buffer | Promise<Buffer> {
  const normalized = password.normalize("NFKC");
  const cacheKey = `${saltB64}:${iterations}:${createHash("sha256").update(normalized).digest("base64")}`;
  const cached = saltedCache.get(cacheKey);
  if (cached) return cached;
  const remember = (salted: Buffer) => {
    if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.clear();
    saltedCache.set(cacheKey, salted);
    return salted;
  };
  // PostgreSQL's default count costs a few ms: not worth a thread hop; a high count would stall every connection
  if (sync || iterations <= 8192) return remember(pbkdf2Sync(normalized, salt, iterations, 32, "sha256"));
  return new Promise((resolve, reject) => pbkdf2(normalized, salt, iterations, 32, "sha256", (err, key) => (err ? reject(err) : resolve(remember(key)))));
}

/**
 * Drives one SCRAM-SHA-256 exchange: clientFirst(), then clientFinal(serverFirst), then verifyServerFinal(). With a
 * password any server secret will do; with a client's keys (ClientKey from its proof, ServerKey from the auth_file
 * secret) only a server whose secret has the same salt and iteration count, as PgBouncer's SCRAM pass-through.
 */
export class ScramClient {
  private readonly nonce = randomBytes(18).toString("base64");
  private readonly clientFirstBare = `n=*,r=${this.nonce}`;
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly secret: string | ScramPassthroughKeys) {}

  clientFirst(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** The client-final-message, computed here and now. */
  clientFinal(serverFirst: string): string {
    return this.clientFinalMessage(serverFirst, true) as string;
  }

  /** The client-final-message; a Promise when PBKDF2 must be computed for a high iteration count (unless `sync`). */
  clientFinalMessage(serverFirst: string, sync = false): string | Promise<string> {
    if (serverFirst.length > MAX_SERVER_MESSAGE) throw new ScramServerError(`SCRAM server-first-message too long (${serverFirst.length} bytes)`);
    const [nonce, saltB64, iterationText] = readAttributes(serverFirst, "rsi", "server-first-message") as [string, string, string];
    if (nonce.length <= this.nonce.length || !nonce.startsWith(this.nonce)) throw new ScramServerError("invalid SCRAM response (nonce mismatch)");
    const salt = base64(saltB64, "salt");
    if (salt.length === 0) throw new ScramServerError("malformed SCRAM message (invalid salt)");
    if (!/^[1-9][0-9]{0,9}$/.test(iterationText)) throw new ScramServerError("malformed SCRAM message (invalid iteration count)");
    const iterations = Number(iterationText);
    if (iterations > MAX_ITERATIONS) throw new ScramServerError(`SCRAM iteration count ${iterations} from the server is above pgbun's limit of ${MAX_ITERATIONS}`);
    const final = (clientKey: Buffer, serverKey: Buffer) => this.finalMessage(serverFirst, nonce, clientKey, serverKey);
    const secret = this.secret;
    if (typeof secret !== "string") {
      // the ClientKey only proves a secret with this salt and count: another one would fail at PostgreSQL's proof check
      if (!salt.equals(secret.salt) || iterations !== secret.iterations) {
        throw new ScramKeysMismatch("the server's SCRAM secret differs from the one pgbun holds (salt or iteration count): give pgbun the password, or the server's own secret");
      }
      return final(secret.clientKey, secret.serverKey);
    }
    const salted = saltedPassword(secret, salt, saltB64, iterations, sync);
    if (salted instanceof Promise) return salted.then((s) => this.fromSalted(s, final));
    return this.fromSalted(salted, final);
  }

  private fromSalted(salted: Buffer, final: (clientKey: Buffer, serverKey: Buffer) => string): string {
    const { clientKey, serverKey } = scramKeysFromSalted(salted);
    return final(clientKey, serverKey);
  }

  private finalMessage(serverFirst: string, nonce: string, clientKey: Buffer, serverKey: Buffer): string {
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /** Checks the server's proof that it knows the secret too (constant-time); `e=` is the server's refusal. */
  verifyServerFinal(serverFinal: string): void {
    if (serverFinal.length > MAX_SERVER_MESSAGE) throw new ScramServerError(`SCRAM server-final-message too long (${serverFinal.length} bytes)`);
    const expected = this.expectedServerSignature;
    if (expected === null) throw new ScramServerError("AuthenticationSASLFinal before the client-final-message");
    if (serverFinal.startsWith("e=")) throw new ScramServerError(`SCRAM error from the server: ${serverFinal.slice(2, 200).replace(/[^\x20-\x7e]/g, "?")}`);
    const [v] = readAttributes(serverFinal, "v", "server-final-message") as [string];
    const signature = base64(v, "server signature");
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw new ScramServerError("invalid server signature");
  }
}

/** The md5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Uint8Array): string {
  return md5SaltedResponse(md5Hex(password + user), salt);
}
