// A statement's shape as the server describes it: parameter types and result columns, compared across servers.
import { Backend } from "../../plugin-sdk/index.ts";

/** The parameter type OIDs of a ParameterDescription message (whole, header included). */
export function parameterTypes(buf: Uint8Array, start: number): number[] {
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.readUInt16BE(start + 5);
  const oids = new Array<number>(n);
  for (let k = 0; k < n; k++) oids[k] = view.readUInt32BE(start + 7 + 4 * k);
  return oids;
}

/**
 * The shape of a described statement: its parameter types, then each result column's name, type and typmod
 * (what a client decodes rows with; table OIDs and column numbers are left out, as PostgreSQL leaves them out when
 * it decides whether a cached plan changed its result type). `row` is a RowDescription or NoData message.
 */
export function shapeOf(paramOids: readonly number[], buf: Uint8Array, start: number, end: number): string {
  let shape = paramOids.join(",");
  if (buf[start] !== Backend.RowDescription) return `${shape}|-`;
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.readUInt16BE(start + 5);
  let i = start + 7;
  shape += "|";
  for (let k = 0; k < n && i < end; k++) {
    let j = i;
    while (j < end && view[j] !== 0) j++;
    const name = view.toString("utf8", i, j);
    i = j + 1;
    // table OID (4), column number (2), type OID (4), type size (2), typmod (4), format (2)
    const type = view.readUInt32BE(i + 6);
    const typmod = view.readInt32BE(i + 12);
    i += 18;
    shape += `${k > 0 ? "," : ""}${JSON.stringify(name)}:${type}:${typmod}`;
  }
  return shape;
}
