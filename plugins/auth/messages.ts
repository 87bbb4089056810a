// The Authentication requests pgbun:auth sends and the password responses it reads (PostgreSQL protocol, section 55.7).
import { AuthCode, Backend, BodyReader, MessageWriter } from "../../plugin-sdk/index.ts";

/** AuthenticationCleartextPassword, AuthenticationMD5Password (4-byte salt), AuthenticationSASL*. */
export function authenticationRequest(code: number, data?: Uint8Array): Buffer {
  const w = new MessageWriter(16 + (data?.length ?? 0)).begin(Backend.Authentication).int32(code);
  if (data !== undefined) w.bytes(data);
  return Buffer.from(w.end().finish());
}

/** AuthenticationSASL offering SCRAM-SHA-256 only (no channel binding without TLS). */
export const AuthenticationSASL = (() => {
  const w = new MessageWriter(32).begin(Backend.Authentication).int32(AuthCode.SASL).cstring("SCRAM-SHA-256").int8(0);
  return Buffer.from(w.end().finish());
})();

/** A PasswordMessage's password (the bytes before its terminator, as text). */
export function decodePasswordMessage(message: Uint8Array): string {
  return new BodyReader(message, 0, message.length).cstring();
}

/** A SASLInitialResponse: the mechanism chosen and its initial response (null when the client sent length -1). */
export function decodeSASLInitialResponse(message: Uint8Array): { mechanism: string; data: Uint8Array | null } {
  const r = new BodyReader(message, 0, message.length);
  const mechanism = r.cstring();
  const len = r.int32();
  return { mechanism, data: len < 0 ? null : r.bytes(len) };
}

/** A SASLResponse's data: the whole body. */
export function decodeSASLResponse(message: Uint8Array): Uint8Array {
  return message.subarray(5);
}
