// SCRAM-SHA-256 as a server (RFC 5802/7677, no channel binding): keys from a secret, the exchange's checks, the mock for unknown users.
import { pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { hmacSha256 as hmac, scramKeysFromSalted, sha256, SqlState } from "../../plugin-sdk/index.ts";
import type { Secret } from "./auth-file.ts";

/** The keys a SCRAM exchange is checked against (what a SCRAM secret stores). */
export interface ScramKeys {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** A malformed client message: PostgreSQL answers 08P01 "malformed SCRAM message" (0A000 for what it does not support). */
export class ScramProtocolError extends Error {
  constructor(
    message: string,
    readonly code: string = SqlState.ProtocolViolation,
  ) {
    super(message);
  }
}

/** The keys of a password with this salt and iteration count (what PostgreSQL stores for it). */
export function scramKeysOf(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const { storedKey, serverKey } = scramKeysFromSalted(salted);
  return { iterations, salt, storedKey, serverKey };
}

/**
 * Keys for an unknown user (or a secret SCRAM cannot use): a salt derived from the user name with a per-process key,
 * so the same name always gets the same salt and an attacker cannot tell a mock exchange from a real one.
 */
const MOCK_KEY = randomBytes(32);
export function mockScramKeys(user: string, iterations: number): ScramKeys {
  const salt = hmac(MOCK_KEY, `salt:${user}`).subarray(0, 16);
  return { iterations, salt, storedKey: randomBytes(32), serverKey: randomBytes(32) };
}

/** Keys of a secret for SCRAM: a SCRAM secret as stored; a plaintext one derived (cached by the caller); md5 none. */
export function scramKeysFor(secret: Secret, iterations: number): ScramKeys | null {
  if (secret.kind === "scram") return secret;
  if (secret.kind === "plain") return scramKeysOf(secret.password, randomBytes(16), iterations);
  return null;
}

/** A SCRAM message's attributes in order (`a=value` separated by commas). */
function attributes(msg: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of msg.split(",")) {
    if (part.length < 2 || part[1] !== "=") throw new ScramProtocolError("malformed SCRAM message");
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

/** Printable characters but ","; empty allowed, as PostgreSQL's is_scram_printable (the server's part is random anyway). */
const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]*$/;
/** base64 of 32 bytes: 43 characters and one "=". */
const PROOF = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** The server side of one exchange: serverFirst(clientFirst), then serverFinal(clientFinal) or null on a wrong proof. */
export class ScramServer {
  private clientFirstBare = "";
  private serverFirst = "";
  private nonce = "";
  private gs2Header = "";

  constructor(private readonly keys: ScramKeys) {}

  /** Checks the client-first-message and answers with the server-first-message. */
  serverFirstMessage(clientFirst: string): string {
    // gs2-header: "n,," (no channel binding) or "y,," (the client could, thinks we cannot); "p=" needs TLS
    const c1 = clientFirst.indexOf(",");
    const c2 = c1 < 0 ? -1 : clientFirst.indexOf(",", c1 + 1);
    if (c2 < 0) throw new ScramProtocolError("malformed SCRAM message");
    const flag = clientFirst.slice(0, c1);
    if (flag !== "n" && flag !== "y") throw new ScramProtocolError("malformed SCRAM message");
    // PostgreSQL's words and code for an authzid (the user name of the startup packet is the one that counts)
    if (c2 !== c1 + 1) throw new ScramProtocolError("client uses authorization identity, but it is not supported", SqlState.FeatureNotSupported);
    this.gs2Header = clientFirst.slice(0, c2 + 1);
    this.clientFirstBare = clientFirst.slice(c2 + 1);
    const attrs = attributes(this.clientFirstBare);
    if (attrs[0]?.[0] === "m") throw new ScramProtocolError("client requires an unsupported SCRAM extension", SqlState.FeatureNotSupported);
    // n= (the user name, ignored as PostgreSQL does: the startup packet's counts), then r=; "m=" extensions refused
    if (attrs.length < 2 || attrs[0]![0] !== "n" || attrs[1]![0] !== "r") throw new ScramProtocolError("malformed SCRAM message");
    const clientNonce = attrs[1]![1];
    if (!PRINTABLE_NONCE.test(clientNonce)) throw new ScramProtocolError("malformed SCRAM message");
    // the Web Crypto CSPRNG: node's randomBytes costs ~5 times as much for these 18 bytes
    this.nonce = clientNonce + Buffer.from(crypto.getRandomValues(new Uint8Array(18)).buffer).toString("base64");
    this.serverFirst = `r=${this.nonce},s=${this.keys.salt.toString("base64")},i=${this.keys.iterations}`;
    return this.serverFirst;
  }

  /** Checks the client-final-message's proof; the server-final-message when it holds, null when it does not. */
  serverFinalMessage(clientFinal: string): string | null {
    const attrs = attributes(clientFinal);
    const last = attrs[attrs.length - 1];
    if (attrs.length < 3 || attrs[0]![0] !== "c" || attrs[1]![0] !== "r" || last![0] !== "p") {
      throw new ScramProtocolError("malformed SCRAM message");
    }
    if (attrs[0]![1] !== Buffer.from(this.gs2Header).toString("base64")) throw new ScramProtocolError("unexpected SCRAM channel-binding attribute in client-final-message");
    if (attrs[1]![1] !== this.nonce) throw new ScramProtocolError("SCRAM nonce mismatch");
    // PostgreSQL: "malformed SCRAM message" for a proof that is not base64 of a SHA-256 length, a wrong password else
    if (!PROOF.test(last![1])) throw new ScramProtocolError("malformed SCRAM message");
    const proof = Buffer.from(last![1], "base64");
    const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(",p="));
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(this.keys.storedKey, authMessage);
    if (proof.length !== signature.length) return null;
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    if (!timingSafeEqual(sha256(clientKey), this.keys.storedKey)) return null;
    if ((this.keys as Partial<Secret>).kind === "scram") rememberClientKey(this.keys.storedKey, clientKey);
    return `v=${hmac(this.keys.serverKey, authMessage).toString("base64")}`;
  }
}

/**
 * ClientKeys proven by clients' SCRAM logins, by the StoredKey they hash to (per secret, so per user; never per
 * client), for pgbun's own SCRAM logins to PostgreSQL as PgBouncer does. Keyed by StoredKey, an entry outlives a
 * reload that keeps the secret and is useless once the secret changes; only someone who knew the password can add
 * one, and the oldest go first beyond MAX_CLIENT_KEYS.
 */
const clientKeys = new Map<string, Buffer>();
const MAX_CLIENT_KEYS = 10_000;

function rememberClientKey(storedKey: Buffer, clientKey: Buffer): void {
  const id = storedKey.toString("base64");
  clientKeys.delete(id); // re-inserted last: the oldest unused go first
  if (clientKeys.size >= MAX_CLIENT_KEYS) clientKeys.delete(clientKeys.keys().next().value!);
  clientKeys.set(id, clientKey);
}

/** The ClientKey a client proved against this StoredKey, if any has since pgbun started. */
export function provenClientKey(storedKey: Buffer): Buffer | undefined {
  return clientKeys.get(storedKey.toString("base64"));
}
