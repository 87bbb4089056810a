// Builds the Parse/Bind/Describe/Close messages pgbun sends under its own statement names.
import { Frontend } from "../../core/protocol/codes.ts";
import { MessageWriter } from "../../core/protocol/writer.ts";

export function parseMessage(name: string, query: string, paramTypes: number[]): Buffer {
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

/** A Bind with its statement name replaced; everything after the name is copied as is. */
export function rebind(buf: Uint8Array, start: number, end: number, portalEnd: number, nameEnd: number, name: string): Buffer {
  const portal = buf.subarray(start + 5, portalEnd + 1);
  const rest = buf.subarray(nameEnd + 1, end);
  const w = new MessageWriter(end - start + name.length).begin(Frontend.Bind).bytes(portal).cstring(name).bytes(rest);
  return w.end().finish();
}
