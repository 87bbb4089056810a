// Builds the Parse/Bind/Describe/Close messages pgbun sends under its own statement names.
import { Backend, Frontend, MessageWriter } from "../../plugin-sdk/index.ts";

export function parseMessage(name: string, query: string, paramTypes: readonly number[]): Buffer {
  const w = new MessageWriter(query.length + name.length + 16).begin(Frontend.Parse).cstring(name).cstring(query).int16(paramTypes.length);
  for (const t of paramTypes) w.uint32(t);
  return w.end().finish();
}

export function closeStatement(name: string): Buffer {
  return new MessageWriter(name.length + 8).begin(Frontend.Close).int8(0x53).cstring(name).end().finish();
}

export function describeStatement(name: string): Buffer {
  return new MessageWriter(name.length + 8).begin(Frontend.Describe).int8(0x53).cstring(name).end().finish();
}

/** Below this many bytes a copy is a loop the JIT compiles in place (Buffer.copy is a call into the runtime). */
const SHORT_COPY = 64;

/** Whether every character of `s` is ASCII: then its UTF-8 bytes are its character codes. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/**
 * A Bind with its statement name replaced; everything after the name is copied as is. Runs for every Bind of a
 * named statement, so it writes straight into one new buffer (no writer, no views), short parts by loops.
 */
export function rebind(buf: Uint8Array, start: number, end: number, portalEnd: number, nameEnd: number, name: string): Buffer {
  const ascii = isAscii(name);
  const nameLen = ascii ? name.length : Buffer.byteLength(name);
  const head = portalEnd + 1 - start; // type, length, portal and its NUL
  const tail = end - (nameEnd + 1); // parameters, formats, result formats
  const out = Buffer.allocUnsafe(head + nameLen + 1 + tail);
  const src = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (head < SHORT_COPY) for (let i = 0; i < head; i++) out[i] = src[start + i]!;
  else src.copy(out, 0, start, portalEnd + 1);
  if (ascii) for (let i = 0; i < nameLen; i++) out[head + i] = name.charCodeAt(i);
  else out.write(name, head, "utf8");
  out[head + nameLen] = 0;
  const at = head + nameLen + 1;
  const from = nameEnd + 1;
  if (tail < SHORT_COPY) for (let i = 0; i < tail; i++) out[at + i] = src[from + i]!;
  else src.copy(out, at, from, end);
  const length = out.length - 1;
  out[1] = length >>> 24;
  out[2] = (length >>> 16) & 0xff;
  out[3] = (length >>> 8) & 0xff;
  out[4] = length & 0xff;
  return out;
}

/**
 * The prefix of a streamed Parse (buf[start, end) of a message of `total` bytes, its name ending at nameEnd) under
 * the statement name `name`, with `textHead` put before its text; the message's rest follows it unchanged, so the
 * length field counts that rest too.
 */
export function renameParsePrefix(buf: Uint8Array, start: number, end: number, total: number, nameEnd: number, name: string, textHead = ""): Buffer {
  const nameLen = Buffer.byteLength(name);
  const headLen = Buffer.byteLength(textHead);
  const out = Buffer.allocUnsafe(5 + nameLen + 1 + headLen + (end - (nameEnd + 1)));
  const src = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  out[0] = buf[start]!;
  out.write(name, 5, "utf8");
  out[5 + nameLen] = 0;
  out.write(textHead, 6 + nameLen, "utf8");
  src.copy(out, 6 + nameLen + headLen, nameEnd + 1, end);
  out.writeUInt32BE(out.length - 1 + (total - (end - start)), 1);
  return out;
}

/** A ParameterDescription of these parameter types (what the server sends first in answer to a Describe 'S'). */
export function parameterDescription(oids: readonly number[]): Buffer {
  const w = new MessageWriter(8 + 4 * oids.length).begin(Backend.ParameterDescription).int16(oids.length);
  for (const t of oids) w.uint32(t);
  return w.end().finish();
}
