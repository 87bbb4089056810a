// Zero-copy framer: reads only 5-byte headers, streams pass-through bytes as spans, hands whole messages to its sink.
import { Frontend } from "../../plugin-sdk/protocol/codes.ts";

/** Per-type handling, indexed by the type byte. */
export const Frame = {
  /** Forward as part of a span without looking at the body; large bodies stream through. */
  Pass: 0,
  /** The sink needs the whole message contiguous (buffered when it spans reads). */
  Whole: 1,
  /** Forward like Pass, but tell the sink the type first (counting, no body needed). */
  Notify: 2,
  /** No message of the protocol: the stream is malformed at its header, before its body is read or forwarded. */
  Invalid: 3,
} as const;

export type FrameFlags = Uint8Array; // length 256

export function frameFlags(whole: Iterable<number> = [], notify: Iterable<number> = []): FrameFlags {
  const f = new Uint8Array(256);
  for (const t of notify) f[t] = Frame.Notify;
  for (const t of whole) f[t] = Frame.Whole;
  return f;
}

/**
 * A Whole-type message longer than this (header included) that is not all in one read is streamed instead of
 * assembled: the sink sees its first STREAM_PREFIX bytes as a partial message (`partialTotal` set), and the rest
 * passes through as spans (or is skipped) as it arrives. Bounds what a client can make pgbun hold to one prefix
 * per connection whatever it sends (a 500 MB Query): PgBouncer's sbuf likewise looks only at what fits its buffer.
 * 64 KB holds the start of any statement text a plugin screens, and is the size of a typical socket read.
 */
export const STREAM_PREFIX = 64 * 1024;

/** Copies at most this many bytes by a loop (Buffer.from of a subarray makes two objects: the view and the copy). */
const LOOP_COPY_MAX = 512;

/**
 * A copy of buf from `from` on, in one allocation of its own (a waiting client's read is held so at every
 * transaction that waits): a short one byte by byte, a long one through a view. Not from Buffer's pool: a copy held
 * while a client waits would keep a whole shared slab alive.
 */
function copyOf(buf: Uint8Array, from: number): Uint8Array {
  const n = buf.length - from;
  if (n > LOOP_COPY_MAX) return Buffer.from(buf.subarray(from));
  const copy = new Uint8Array(n);
  for (let i = 0; i < n; i++) copy[i] = buf[from + i]!;
  return copy;
}

/** Every type whole: used while a connection has no peer, so each message can be decided on by itself. */
export const ALL_WHOLE: FrameFlags = new Uint8Array(256).fill(Frame.Whole);

/** The messages a client may send once logged in (PostgreSQL's SocketBackend refuses any other type at once). */
const FRONTEND_TYPES: readonly number[] = Object.values(Frontend).filter((t) => t !== Frontend.PasswordMessage);

/**
 * A copy of `flags` in which every type that is no frontend message is Invalid: a client that sends one (a second
 * StartupMessage reads as type 0, a PasswordMessage nobody asked for as 'p') gets PostgreSQL's "invalid frontend
 * message type" at its header, as from PostgreSQL, instead of pgbun waiting for the body its length announces.
 */
export function frontendOnly(flags: FrameFlags): FrameFlags {
  const f = new Uint8Array(256).fill(Frame.Invalid);
  for (const t of FRONTEND_TYPES) f[t] = flags[t]!;
  return f;
}

/**
 * True when the last message in `bytes` declares more bytes than `bytes` holds: a plugin's replacement for the
 * prefix of a streamed message, whose rest follows it. Whole messages in its place end it: the rest is skipped.
 */
export function continuesPast(bytes: Uint8Array): boolean {
  let i = 0;
  while (i + 5 <= bytes.length) {
    const len = ((bytes[i + 1]! << 24) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 8) | bytes[i + 4]!) >>> 0;
    const next = i + 1 + Math.max(len, 4);
    if (next > bytes.length) return true;
    i = next;
  }
  return false;
}

/** ALL_WHOLE for a client: every frontend message whole, anything else Invalid. */
export const FRONTEND_WHOLE: FrameFlags = frontendOnly(ALL_WHOLE);

export interface FrameSink {
  /** Bytes [start, end) of `buf` pass through untouched. `buf` is only valid during the call. */
  passSpan(buf: Uint8Array, start: number, end: number): void;
  /** A Notify-type header was seen; the message itself is part of the span. */
  notify(type: number): void;
  /**
   * A whole message [start, end) including its header. Return false to hold the rest until resume(). When the
   * framer's `partialTotal` is not 0 this is only the message's first bytes (see STREAM_PREFIX): returning true
   * passes its rest on as spans (or skips it when the sink set `dropRest`); a sink that cannot take a prefix sets
   * `fetchWhole` and returns false, and the message is assembled and delivered again whole.
   */
  message(type: number, buf: Uint8Array, start: number, end: number): boolean;
  /** The rest of a streamed (partial) message has all been passed on or skipped. */
  streamEnd?(): void;
  /** The stream is malformed (bad length); the framer stops for good. */
  malformed(reason: string): void;
}

const STREAMING = 1;
const SKIPPING = 2;

/** Splits a byte stream into messages. One instance per direction per connection. */
export class Framer {
  flags: FrameFlags;
  /** Bodies longer than this are a protocol violation. */
  maxLength: number;
  private passRemaining = 0;
  private pendingHeader: Buffer | null = null;
  private pendingParts: Buffer[] | null = null;
  private pendingHave = 0;
  private pendingTotal = 0;
  private held: Uint8Array[] | null = null;
  /** The list held input went into last, emptied: the next hold reuses it (a waiting client holds at every transaction). */
  private heldSpare: Uint8Array[] | null = null;
  private broken = false;
  /** Set by the sink before message() returns false to hold that message too (it will be seen again). */
  holdCurrent = false;
  /**
   * Set with holdCurrent: the held message has been dealt with (its hooks ran) and only waits for somewhere to go.
   * On resume its bytes pass on as a span, not delivered again, in the same held copy as the input after it (a
   * client waiting for a server keeps its read in one piece, which then goes out as one write).
   */
  passCurrent = false;
  /** Bytes at the start of the first held chunk that pass on unread at resume (see passCurrent). */
  private heldPass = 0;
  /** Whole-type messages above this many bytes are streamed (see STREAM_PREFIX); the prefix is this long. */
  streamAbove: number;
  /** Per-type bounds used instead of streamAbove where not 0 (read only for a message longer than its read). */
  streamAboveOf: Uint32Array | null = null;
  /** During message() of a streamed message: the whole message's length, header included; else 0. */
  partialTotal = 0;
  /** Set by the sink during message() of a streamed message: its rest is skipped, not passed on. */
  dropRest = false;
  /** Set by the sink before returning false from message() of a streamed message: assemble it whole instead. */
  fetchWhole = false;
  /** The bytes passRemaining counts are the rest of a streamed message: STREAMING passes them, SKIPPING drops them. */
  private streamMode = 0;
  /** Not 0: the message being assembled in pendingParts is delivered as a prefix once this many bytes are there. */
  private pendingStream = 0;

  constructor(private sink: FrameSink, flags: FrameFlags, maxLength = 0x7fffffff, streamAbove = STREAM_PREFIX) {
    this.flags = flags;
    this.maxLength = maxLength;
    this.streamAbove = streamAbove;
  }

  /** Nothing buffered, held or half-read, and not broken: the framer may serve another connection. */
  get reusable(): boolean {
    return !this.broken && !this.holdCurrent && this.held === null && this.passRemaining === 0 && this.pendingHeader === null && this.pendingParts === null;
  }

  /** Starts over for another connection (only when reusable). */
  reuse(sink: FrameSink, flags: FrameFlags, maxLength: number): void {
    this.sink = sink;
    this.flags = flags;
    this.maxLength = maxLength;
    this.pendingHave = 0;
    this.pendingTotal = 0;
  }

  /** True while the sink asked to hold input (parked). */
  get holding(): boolean {
    return this.held !== null;
  }

  /** True while a message has been partly read (its rest is still to come). */
  get midMessage(): boolean {
    return this.passRemaining > 0 || this.pendingHeader !== null || this.pendingParts !== null;
  }

  /** Bytes buffered inside the framer (partial messages and held input). */
  get bufferedBytes(): number {
    let n = this.pendingHave + (this.pendingHeader?.length ?? 0);
    if (this.held) for (const h of this.held) n += h.length;
    return n;
  }

  /**
   * Feeds one read. Unless `owned`, `chunk` may be reused by the caller after return and anything kept is copied;
   * an owned chunk is the framer's from then on (nobody writes to it again): a read held whole is kept as it is.
   */
  feed(chunk: Uint8Array, owned = false): void {
    if (this.broken || chunk.length === 0) return;
    if (this.held) {
      this.held.push(owned ? chunk : Buffer.from(chunk));
      return;
    }
    this.process(chunk, owned);
  }

  /** Re-processes input held since a message() returned false. */
  resume(): void {
    const held = this.held;
    if (!held) return;
    this.held = null;
    if (this.heldPass !== 0) {
      // a whole message, so no stream: the pass-through branch of process() forwards it and reads on after it
      this.passRemaining = this.heldPass;
      this.streamMode = 0;
      this.heldPass = 0;
    }
    for (let k = 0; k < held.length; k++) {
      if (this.broken) return;
      this.process(held[k]!, true); // held chunks are the framer's own
      const again = this.held as Uint8Array[] | null;
      if (again) {
        // held again: keep the unprocessed chunks in order
        for (let r = k + 1; r < held.length; r++) again.push(held[r]!);
        break;
      }
    }
    held.length = 0;
    this.heldSpare = held;
  }

  /**
   * Keeps buf from `from` on until resume(). An owned buf held from its start (a waiting client's read: its first
   * message needs the server) is kept itself, without a copy; a rest is copied, so the part already passed on is not
   * kept alive with it.
   */
  private hold(buf: Uint8Array, from: number, owned: boolean): void {
    const rest = this.heldSpare ?? [];
    this.heldSpare = null;
    if (from < buf.length) rest.push(owned && from === 0 ? buf : copyOf(buf, from));
    this.held = rest;
  }

  /** Stops processing for good (the connection is closing). */
  close(): void {
    this.broken = true;
    this.held = null;
    this.heldPass = 0;
    this.pendingParts = null;
    this.pendingHeader = null;
    this.streamMode = 0;
  }

  private fail(reason: string): void {
    this.broken = true;
    this.sink.malformed(reason);
  }

  /** The stream bound of a message type. */
  private boundOf(type: number): number {
    const of = this.streamAboveOf;
    const b = of === null ? 0 : of[type]!;
    return b !== 0 ? b : this.streamAbove;
  }

  /**
   * Hands the sink the first bytes pbuf[ps, pe) of a message of `total` bytes that is longer than this read: its
   * rest starts at chunk[from] and does not end in this read. Uses up the read (passed on, skipped or held).
   */
  private partial(type: number, pbuf: Uint8Array, ps: number, pe: number, total: number, chunk: Uint8Array, from: number, owned: boolean): void {
    this.partialTotal = total;
    const ok = this.sink.message(type, pbuf, ps, pe);
    this.partialTotal = 0;
    this.passCurrent = false; // a prefix is delivered again when held (the sink does not ask otherwise)
    const drop = this.dropRest;
    this.dropRest = false;
    if (this.broken) return;
    if (this.fetchWhole || (!ok && this.holdCurrent)) {
      // what was read of the message is kept whole: assembled (fetchWhole), or held to be seen again
      const parts = [Buffer.from(pbuf.subarray(ps, pe))];
      if (from < chunk.length) parts.push(Buffer.from(chunk.subarray(from)));
      if (this.fetchWhole) {
        this.fetchWhole = false;
        this.holdCurrent = false;
        this.pendingParts = parts;
        this.pendingHave = pe - ps + (chunk.length - from);
        this.pendingTotal = total;
      } else {
        this.holdCurrent = false;
        this.held = parts;
      }
      return;
    }
    this.passRemaining = total - (pe - ps);
    this.streamMode = drop ? SKIPPING : STREAMING;
    // the sink took the prefix and holds what follows: the rest streams once it resumes
    if (!ok) return this.hold(chunk, from, owned);
    const n = chunk.length - from;
    if (!drop) this.sink.passSpan(chunk, from, chunk.length);
    this.passRemaining -= n;
  }

  /** `owned`: nobody else writes to chunk again (see feed). */
  private process(chunk: Uint8Array, owned: boolean): void {
    let buf = chunk;
    let i = 0;
    let spanStart = 0;
    const len0 = buf.length;
    if (this.passRemaining > 0) {
      const n = Math.min(this.passRemaining, len0);
      this.passRemaining -= n;
      if (this.streamMode === 0) {
        // the rest of a pass-through message: the start of this read's first span, handed on with what follows
        if (n === len0) return this.sink.passSpan(buf, 0, n);
      } else {
        if (this.streamMode !== SKIPPING) this.sink.passSpan(buf, 0, n);
        if (this.passRemaining === 0) {
          this.streamMode = 0;
          this.sink.streamEnd?.();
          if (this.broken) return;
        }
        if (n === len0) return;
        spanStart = n;
      }
      i = n;
    } else if (this.pendingParts) {
      const need = this.pendingTotal - this.pendingHave;
      if (len0 < need) {
        const bound = this.pendingStream;
        if (bound !== 0 && this.pendingHave + len0 >= bound) {
          // the prefix is complete and the message is not: it streams from here
          const take = bound - this.pendingHave;
          this.pendingParts.push(Buffer.from(buf.subarray(0, take)));
          const prefix = Buffer.concat(this.pendingParts, bound);
          this.pendingParts = null;
          this.pendingHave = 0;
          this.pendingStream = 0;
          this.partial(prefix[0]!, prefix, 0, prefix.length, this.pendingTotal, buf, take, owned);
          return;
        }
        this.pendingParts.push(Buffer.from(buf));
        this.pendingHave += len0;
        return;
      }
      this.pendingStream = 0;
      this.pendingParts.push(Buffer.from(buf.subarray(0, need)));
      const whole = Buffer.concat(this.pendingParts, this.pendingTotal);
      this.pendingParts = null;
      this.pendingHave = 0;
      if (!this.sink.message(whole[0]!, whole, 0, whole.length)) {
        if (!this.broken) {
          this.hold(buf, need, owned);
          if (this.holdCurrent) {
            this.held!.unshift(whole);
            if (this.passCurrent) this.heldPass = whole.length;
          }
          this.holdCurrent = false;
          this.passCurrent = false;
        }
        return;
      }
      if (this.broken) return;
      i = need;
      spanStart = i;
    } else if (this.pendingHeader) {
      buf = Buffer.concat([this.pendingHeader, buf]);
      this.pendingHeader = null;
      owned = true; // a new buffer of the framer's
    }
    const len = buf.length;
    while (i < len) {
      if (len - i < 5) {
        if (i > spanStart) this.sink.passSpan(buf, spanStart, i);
        this.pendingHeader = Buffer.from(buf.subarray(i));
        return;
      }
      const type = buf[i]!;
      const bodyLen = ((buf[i + 1]! << 24) | (buf[i + 2]! << 16) | (buf[i + 3]! << 8) | buf[i + 4]!) >>> 0;
      if (bodyLen < 4 || bodyLen > this.maxLength) {
        if (i > spanStart) this.sink.passSpan(buf, spanStart, i);
        this.fail(bodyLen < 4 ? `invalid message length ${bodyLen}` : `message length ${bodyLen} exceeds max_packet_size`);
        return;
      }
      const total = bodyLen + 1;
      const flag = this.flags[type];
      if (flag !== Frame.Whole) {
        if (flag === Frame.Notify) this.sink.notify(type);
        else if (flag === Frame.Invalid) {
          if (i > spanStart) this.sink.passSpan(buf, spanStart, i);
          this.fail(`invalid frontend message type ${type}`);
          return;
        }
        if (total > len - i) {
          this.passRemaining = total - (len - i);
          this.sink.passSpan(buf, spanStart, len);
          return;
        }
        i += total;
        continue;
      }
      if (i > spanStart) this.sink.passSpan(buf, spanStart, i);
      if (total > len - i) {
        const bound = this.boundOf(type);
        if (total > bound && len - i >= bound) {
          // too long to assemble, and its prefix is here: the sink sees that, the rest streams
          this.partial(type, buf, i, i + bound, total, buf, i + bound, owned);
          return;
        }
        this.pendingParts = [Buffer.from(buf.subarray(i))];
        this.pendingHave = len - i;
        this.pendingTotal = total;
        this.pendingStream = total > bound ? bound : 0;
        return;
      }
      const end = i + total;
      if (!this.sink.message(type, buf, i, end)) {
        if (!this.broken) {
          this.hold(buf, this.holdCurrent ? i : end, owned);
          if (this.holdCurrent && this.passCurrent) this.heldPass = total;
        }
        this.holdCurrent = false;
        this.passCurrent = false;
        return;
      }
      if (this.broken) return;
      i = end;
      spanStart = i;
    }
    if (i > spanStart) this.sink.passSpan(buf, spanStart, i);
  }
}
