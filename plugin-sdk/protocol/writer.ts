// Builds protocol messages: a growable writer that backpatches lengths, plus prebuilt constant messages.
import { Backend, Frontend, TxStatus } from "./codes.ts";
import { encodeText } from "./text-bytes.ts";

const encoder = new TextEncoder();

/** Appends protocol messages into one buffer; `finish()` returns exactly the bytes written. */
export class MessageWriter {
  private buf: Buffer;
  private pos = 0;
  private start = -1;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Starts a typed message; its length is patched in by `end()`. */
  begin(type: number): this {
    this.ensure(5);
    this.buf[this.pos] = type;
    this.start = this.pos + 1;
    this.pos += 5;
    return this;
  }

  /** Starts an untyped (startup-phase) message. */
  beginUntyped(): this {
    this.ensure(4);
    this.start = this.pos;
    this.pos += 4;
    return this;
  }

  end(): this {
    this.buf.writeInt32BE(this.pos - this.start, this.start);
    this.start = -1;
    return this;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** A NUL-terminated string. */
  cstring(s: string): this {
    // bytes a StartupMessage held that are no UTF-8 go out as they came (see text-bytes.ts)
    const bytes = encodeText(s);
    this.ensure(bytes.length + 1);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function typed(type: number, body: number[] = []): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type;
  b.writeInt32BE(4 + body.length, 1);
  b.set(body, 5);
  return b;
}

/** Prebuilt constant messages, shared and never mutated. */
export const Prebuilt = {
  ReadyForQueryIdle: typed(Backend.ReadyForQuery, [TxStatus.Idle]),
  ReadyForQueryInTransaction: typed(Backend.ReadyForQuery, [TxStatus.InTransaction]),
  ReadyForQueryFailed: typed(Backend.ReadyForQuery, [TxStatus.Failed]),
  AuthenticationOk: (() => {
    const b = Buffer.alloc(9);
    b[0] = Backend.Authentication;
    b.writeInt32BE(8, 1);
    b.writeInt32BE(0, 5);
    return b;
  })(),
  ParseComplete: typed(Backend.ParseComplete),
  BindComplete: typed(Backend.BindComplete),
  CloseComplete: typed(Backend.CloseComplete),
  NoData: typed(Backend.NoData),
  EmptyQueryResponse: typed(Backend.EmptyQueryResponse),
  Sync: typed(Frontend.Sync),
  Flush: typed(Frontend.Flush),
  Terminate: typed(Frontend.Terminate),
  SSLRefused: Buffer.from("N"),
} as const;

/** ReadyForQuery with the given transaction status byte. */
export function readyForQuery(status: number): Buffer {
  if (status === TxStatus.InTransaction) return Prebuilt.ReadyForQueryInTransaction;
  if (status === TxStatus.Failed) return Prebuilt.ReadyForQueryFailed;
  return Prebuilt.ReadyForQueryIdle;
}

export function query(sql: string): Buffer {
  return new MessageWriter(sql.length + 8).begin(Frontend.Query).cstring(sql).end().finish();
}

export function parameterStatus(name: string, value: string): Buffer {
  return new MessageWriter(64).begin(Backend.ParameterStatus).cstring(name).cstring(value).end().finish();
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return new MessageWriter(13).begin(Backend.BackendKeyData).int32(pid).int32(secret).end().finish();
}

export function commandComplete(tag: string): Buffer {
  return new MessageWriter(32).begin(Backend.CommandComplete).cstring(tag).end().finish();
}

/** RowDescription of text columns (type oid 25 unless given). */
export function rowDescription(columns: Array<string | { name: string; typeOid?: number }>): Buffer {
  const w = new MessageWriter(64).begin(Backend.RowDescription).int16(columns.length);
  for (const c of columns) {
    const col = typeof c === "string" ? { name: c } : c;
    w.cstring(col.name).int32(0).int16(0).int32(col.typeOid ?? 25).int16(-1).int32(-1).int16(0);
  }
  return w.end().finish();
}

/** DataRow of text values; null is SQL NULL. */
export function dataRow(values: Array<string | number | bigint | boolean | null | undefined>): Buffer {
  const w = new MessageWriter(64).begin(Backend.DataRow).int16(values.length);
  for (const v of values) {
    if (v === null || v === undefined) {
      w.int32(-1);
      continue;
    }
    const bytes = encoder.encode(String(v));
    w.int32(bytes.length).bytes(bytes);
  }
  return w.end().finish();
}

/** StartupMessage for protocol 3.0 with the given parameters. */
export function startupMessage(params: Record<string, string>): Buffer {
  const w = new MessageWriter(128).beginUntyped().int32(196608);
  for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
  return w.int8(0).end().finish();
}

export function cancelRequest(pid: number, secret: Uint8Array): Buffer {
  return new MessageWriter(16 + secret.length).beginUntyped().int32(80877102).int32(pid).bytes(secret).end().finish();
}

/** NegotiateProtocolVersion: newest minor version we support and the options we did not recognize. */
export function negotiateProtocolVersion(minor: number, unsupported: string[]): Buffer {
  const w = new MessageWriter(64).begin(Backend.NegotiateProtocolVersion).int32(minor).int32(unsupported.length);
  for (const o of unsupported) w.cstring(o);
  return w.end().finish();
}
