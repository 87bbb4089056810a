// Decoders for the messages plugins read; each takes the whole message (header included) in place.
import { decodeError, type DecodedError } from "./errors.ts";

const decoder = new TextDecoder();

/** The index of the NUL ending the string that starts at `from` in a message (`end` when there is none). */
export function cstringEnd(buf: Uint8Array, from: number, end: number): number {
  let j = from;
  while (j < end && buf[j] !== 0) j++;
  return j;
}

/** A simple Query that ends every prepared statement of its session: DISCARD ALL, DEALLOCATE [PREPARE] ALL. */
export const DEALLOCATES_ALL = /^\s*(discard\s+all|deallocate\s+(prepare\s+)?all)\s*;?\s*$/i;

/** Reads NUL-terminated strings and big-endian integers from a message body. */
export class BodyReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start + 5;
  }
  cstring(): string {
    let j = this.pos;
    while (j < this.end && this.buf[j] !== 0) j++;
    if (j >= this.end) throw new RangeError("unterminated string in message");
    const s = decoder.decode(this.buf.subarray(this.pos, j));
    this.pos = j + 1;
    return s;
  }
  int16(): number {
    if (this.pos + 2 > this.end) throw new RangeError("message too short");
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v & 0x8000 ? v - 0x10000 : v;
  }
  int32(): number {
    if (this.pos + 4 > this.end) throw new RangeError("message too short");
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }
  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) throw new RangeError("message too short");
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

export interface Located {
  buf: Uint8Array;
  start: number;
  end: number;
  /** Only the message's prefix is in buf (MessageContext.partial): decoders give what the prefix holds. */
  readonly partial?: boolean;
}

/** The text of buf[from, end) up to its NUL, or to end when the prefix of a streamed message stops first. */
function prefixText(m: Located, from: number): { text: string; next: number } {
  let j = from;
  while (j < m.end && m.buf[j] !== 0) j++;
  return { text: Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength).toString("utf8", from, j), next: j + 1 };
}

/** Query: the SQL text (of a streamed Query: as far as its prefix goes). */
export function decodeQuery(m: Located): string {
  if (m.partial === true) return prefixText(m, m.start + 5).text;
  return new BodyReader(m.buf, m.start, m.end).cstring();
}

export interface ParseMessage {
  name: string;
  query: string;
  paramTypes: number[];
}

/** Parse; of a streamed Parse: the name and the text as far as its prefix goes, and no parameter types. */
export function decodeParse(m: Located): ParseMessage {
  if (m.partial === true) {
    const name = prefixText(m, m.start + 5);
    return { name: name.text, query: name.next < m.end ? prefixText(m, name.next).text : "", paramTypes: [] };
  }
  const r = new BodyReader(m.buf, m.start, m.end);
  const name = r.cstring();
  const query = r.cstring();
  const n = r.int16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.int32() >>> 0);
  return { name, query, paramTypes };
}

export interface BindMessage {
  portal: string;
  statement: string;
  paramFormats: number[];
  /** Parameter values; null for SQL NULL. Views into the message: copy to keep. */
  params: Array<Uint8Array | null>;
  resultFormats: number[];
}

export function decodeBind(m: Located): BindMessage {
  const r = new BodyReader(m.buf, m.start, m.end);
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats: number[] = [];
  for (let i = 0, n = r.int16(); i < n; i++) paramFormats.push(r.int16());
  const params: Array<Uint8Array | null> = [];
  for (let i = 0, n = r.int16(); i < n; i++) {
    const len = r.int32();
    params.push(len < 0 ? null : r.bytes(len));
  }
  const resultFormats: number[] = [];
  for (let i = 0, n = r.int16(); i < n; i++) resultFormats.push(r.int16());
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Describe / Close: kind 'S' (statement) or 'P' (portal), and the name. */
export function decodeTarget(m: Located): { kind: "S" | "P"; name: string } {
  const r = new BodyReader(m.buf, m.start, m.end);
  const kind = String.fromCharCode(r.bytes(1)[0]!) as "S" | "P";
  return { kind, name: r.cstring() };
}

export function decodeExecute(m: Located): { portal: string; maxRows: number } {
  const r = new BodyReader(m.buf, m.start, m.end);
  return { portal: r.cstring(), maxRows: r.int32() };
}

/** ReadyForQuery: 'I' idle, 'T' in transaction, 'E' failed transaction. */
export function decodeReadyForQuery(m: Located): "I" | "T" | "E" {
  return String.fromCharCode(m.buf[m.start + 5]!) as "I" | "T" | "E";
}

export function decodeParameterStatus(m: Located): { name: string; value: string } {
  const r = new BodyReader(m.buf, m.start, m.end);
  return { name: r.cstring(), value: r.cstring() };
}

/** CommandComplete: the command tag, e.g. "SELECT 1", "INSERT 0 1". */
export function decodeCommandComplete(m: Located): string {
  return new BodyReader(m.buf, m.start, m.end).cstring();
}

export function decodeErrorResponse(m: Located): DecodedError {
  return decodeError(m.buf, m.start, m.end);
}

/** DataRow: column values as text (null for SQL NULL); decode only when you need them. */
export function decodeDataRow(m: Located): Array<string | null> {
  const r = new BodyReader(m.buf, m.start, m.end);
  const out: Array<string | null> = [];
  for (let i = 0, n = r.int16(); i < n; i++) {
    const len = r.int32();
    out.push(len < 0 ? null : decoder.decode(r.bytes(len)));
  }
  return out;
}

export function decodeRowDescription(m: Located): Array<{ name: string; typeOid: number; format: number }> {
  const r = new BodyReader(m.buf, m.start, m.end);
  const out = [];
  for (let i = 0, n = r.int16(); i < n; i++) {
    const name = r.cstring();
    r.int32();
    r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16();
    r.int32();
    const format = r.int16();
    out.push({ name, typeOid, format });
  }
  return out;
}
