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

/**
 * A Bind with its statement name replaced; everything after the name is copied as is. Runs for every Bind of a
 * named statement, so it writes straight into one new buffer (no writer, no views).
 */
export function rebind(buf: Uint8Array, start: number, end: number, portalEnd: number, nameEnd: number, name: string): Buffer {
  const nameLen = Buffer.byteLength(name);
  const head = portalEnd + 1 - start; // type, length, portal and its NUL
  const tail = end - (nameEnd + 1); // parameters, formats, result formats
  const out = Buffer.allocUnsafe(head + nameLen + 1 + tail);
  const src = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  src.copy(out, 0, start, portalEnd + 1);
  out.write(name, head, "utf8");
  out[head + nameLen] = 0;
  src.copy(out, head + nameLen + 1, nameEnd + 1, end);
  out.writeInt32BE(out.length - 1, 1);
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
