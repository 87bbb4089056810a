// Property-based fuzz of the Framer: any chunking of a valid stream frames the same; arbitrary bytes never throw.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Frame, Framer, type FrameFlags, type FrameSink } from "../../core/protocol/framer.ts";

/** Runs per property; PGBUN_FUZZ_RUNS=100000 for a long run on demand. */
const RUNS = Number(process.env.PGBUN_FUZZ_RUNS) || 2000;

interface Msg {
  type: number;
  body: Uint8Array;
}

function encode(msgs: Msg[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of msgs) {
    const h = Buffer.alloc(5);
    h[0] = m.type;
    h.writeUInt32BE(m.body.length + 4, 1);
    parts.push(h, Buffer.from(m.body));
  }
  return Buffer.concat(parts);
}

/** Where each message of `encode(msgs)` starts. */
function startsOf(msgs: Msg[]): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const m of msgs) {
    starts.push(at);
    at += m.body.length + 5;
  }
  return starts;
}

/** Cuts `buf` at the given points (any numbers; taken modulo the length), in order. */
function chunks(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (buf.length === 0 ? 0 : c % (buf.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, buf.length]) {
    if (c > from) out.push(buf.subarray(from, c));
    from = Math.max(from, c);
  }
  return out;
}

/** What a sink saw: every byte handed on (spans and whole messages) in order, and where each whole message began. */
class Recorder implements FrameSink {
  bytes: number[] = [];
  messages: Array<{ type: number; at: number; bytes: Buffer }> = [];
  notified: number[] = [];
  malformedCalls: string[] = [];
  afterMalformed = 0;
  /**
   * Offsets (in the stream) of messages to refuse the first time they are seen, and whether to hold them too;
   * "pass": taken, then held to pass on unread at resume (passCurrent, a client waiting for a server).
   */
  constructor(
    private framer: () => Framer,
    private holdAt = new Map<number, boolean | "pass">(),
  ) {}
  /** Bytes of a message taken with passCurrent that have not come back as a span yet. */
  passed = 0;
  passSpan(buf: Uint8Array, start: number, end: number): void {
    if (this.malformedCalls.length > 0) this.afterMalformed++;
    expect(start).toBeLessThanOrEqual(end);
    this.passed = Math.max(0, this.passed - (end - start));
    for (let i = start; i < end; i++) this.bytes.push(buf[i]!);
  }
  notify(type: number): void {
    if (this.malformedCalls.length > 0) this.afterMalformed++;
    this.notified.push(type);
  }
  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    if (this.malformedCalls.length > 0) this.afterMalformed++;
    expect(buf[start]).toBe(type);
    const at = this.bytes.length;
    const hold = this.holdAt.get(at);
    if (hold !== undefined) {
      this.holdAt.delete(at); // refused once; seen again (holdCurrent) or taken as handled
      if (hold === "pass") {
        // taken now; its bytes come again as a span after resume, so only the message is recorded here
        this.messages.push({ type, at, bytes: Buffer.from(buf.subarray(start, end)) });
        this.passed += end - start;
        this.framer().holdCurrent = true;
        this.framer().passCurrent = true;
        return false;
      }
      if (hold) {
        this.framer().holdCurrent = true;
        return false;
      }
    }
    if (this.passed > 0) throw new Error("a message was delivered before the held message passed on");
    this.messages.push({ type, at, bytes: Buffer.from(buf.subarray(start, end)) });
    for (let i = start; i < end; i++) this.bytes.push(buf[i]!);
    return hold === undefined;
  }
  malformed(reason: string): void {
    this.malformedCalls.push(reason);
  }
}

/** Feeds the chunks through one reused read buffer, scribbled over after each feed (the framer must copy what it keeps). */
function feedAll(f: Framer, parts: Buffer[], resumeEvery: boolean): void {
  const scratch = Buffer.alloc(Math.max(1, ...parts.map((p) => p.length)));
  for (const p of parts) {
    p.copy(scratch);
    f.feed(scratch.subarray(0, p.length));
    scratch.fill(0xa5);
    if (resumeEvery) f.resume();
  }
  for (let guard = 0; f.holding && guard < 10_000; guard++) f.resume();
}

const typeArb = fc.constantFrom(...[0x42, 0x43, 0x44, 0x45, 0x48, 0x50, 0x51, 0x53, 0x58, 0x64, 0x63, 0x66, 0x70]);
const msgArb = fc.record({ type: typeArb, body: fc.uint8Array({ maxLength: 200 }) });
const flagsArb = fc.dictionary(fc.constantFrom("B", "C", "D", "E", "H", "P", "Q", "S", "X", "d", "c", "f", "p"), fc.constantFrom(Frame.Pass, Frame.Whole, Frame.Notify));

function flagsOf(d: Record<string, number>): FrameFlags {
  const f = new Uint8Array(256);
  for (const [k, v] of Object.entries(d)) f[k.charCodeAt(0)] = v;
  return f;
}

describe("Framer, fuzzed", () => {
  test("any chunking of a valid stream hands on the same bytes, the same whole messages at their offsets, the same notifies", () => {
    fc.assert(
      fc.property(
        fc.array(msgArb, { maxLength: 30 }),
        flagsArb,
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.boolean(),
        (msgs, flagDict, cuts, resumeEvery) => {
          const flags = flagsOf(flagDict);
          const stream = encode(msgs);
          let f!: Framer;
          const rec = new Recorder(() => f);
          f = new Framer(rec, flags, 1 << 20);
          feedAll(f, chunks(stream, cuts), resumeEvery);
          expect(rec.malformedCalls).toEqual([]);
          expect(Buffer.from(rec.bytes).equals(stream)).toBe(true);
          const expected: Array<{ type: number; at: number; bytes: Buffer }> = [];
          const notified: number[] = [];
          let at = 0;
          for (const m of msgs) {
            const total = m.body.length + 5;
            if (flags[m.type] === Frame.Whole) expected.push({ type: m.type, at, bytes: stream.subarray(at, at + total) });
            if (flags[m.type] === Frame.Notify) notified.push(m.type);
            at += total;
          }
          expect(rec.messages).toEqual(expected);
          expect(rec.notified).toEqual(notified);
          expect(f.midMessage).toBe(false);
          expect(f.bufferedBytes).toBe(0);
          expect(f.reusable).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test("a sink refusing messages (held or handled) at random gets every message once, in order, whatever the chunking", () => {
    fc.assert(
      fc.property(
        fc.array(msgArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 10 }),
        fc.boolean(),
        (msgs, cuts, refusals, resumeEvery) => {
          const stream = encode(msgs);
          const starts = startsOf(msgs);
          const holdAt = new Map<number, boolean>();
          for (const [k, hold] of refusals) holdAt.set(starts[k % starts.length]!, hold);
          let f!: Framer;
          const rec = new Recorder(() => f, holdAt);
          f = new Framer(rec, new Uint8Array(256).fill(Frame.Whole), 1 << 20);
          feedAll(f, chunks(stream, cuts), resumeEvery);
          expect(rec.malformedCalls).toEqual([]);
          // refused with holdCurrent: seen again after resume(); refused without: taken, only the rest is held
          expect(rec.messages.map((m) => m.at)).toEqual(starts);
          for (const m of rec.messages) expect(m.bytes.equals(stream.subarray(m.at, m.at + m.bytes.length))).toBe(true);
          expect(f.holding).toBe(false);
          expect(f.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test("a sink that takes messages and waits (passCurrent) at random hands on every byte once, in order, each message delivered once", () => {
    fc.assert(
      fc.property(
        fc.array(msgArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom<boolean | "pass">(true, false, "pass")), { maxLength: 10 }),
        fc.boolean(),
        flagsArb,
        (msgs, cuts, refusals, resumeEvery, flagDict) => {
          const stream = encode(msgs);
          const starts = startsOf(msgs);
          const flags = flagsOf(flagDict);
          const whole = msgs.map((m, i) => (flags[m.type] === Frame.Whole ? starts[i]! : -1)).filter((s) => s >= 0);
          const holdAt = new Map<number, boolean | "pass">();
          if (whole.length > 0) for (const [k, hold] of refusals) holdAt.set(whole[k % whole.length]!, hold);
          let f!: Framer;
          const rec = new Recorder(() => f, holdAt);
          f = new Framer(rec, flags, 1 << 20);
          // the recorder's bytes hold spans and delivered messages; a passed message's bytes come as a span
          feedAll(f, chunks(stream, cuts), resumeEvery);
          expect(rec.malformedCalls).toEqual([]);
          expect(Buffer.from(rec.bytes).equals(stream)).toBe(true);
          expect(rec.messages.map((m) => m.at)).toEqual(whole);
          expect(rec.passed).toBe(0);
          expect(f.holding).toBe(false);
          expect(f.bufferedBytes).toBe(0);
          expect(f.reusable).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test("arbitrary bytes never throw; a bad length is reported once, where a reference parser finds it; buffered bytes stay within the limit", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.array(msgArb, { maxLength: 8 }).map((m) => new Uint8Array(encode(m)))),
        fc.array(fc.tuple(fc.nat(599), fc.nat(255)), { maxLength: 4 }),
        flagsArb,
        fc.integer({ min: 0, max: 300 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (base, flips, flagDict, maxLength, cuts) => {
          const bytes = Buffer.from(base);
          for (const [i, v] of flips) if (bytes.length > 0) bytes[i % bytes.length] = v; // corrupt valid streams a little
          const rec: Recorder = new Recorder(() => f);
          const f: Framer = new Framer(rec, flagsOf(flagDict), maxLength);
          // reference: the first header whose length is below 4 or above the limit breaks the stream
          let expectBad = false;
          for (let i = 0; i + 5 <= bytes.length; ) {
            const bodyLen = bytes.readUInt32BE(i + 1);
            if (bodyLen < 4 || bodyLen > maxLength) {
              expectBad = true;
              break;
            }
            i += bodyLen + 1;
          }
          for (const part of chunks(bytes, cuts)) {
            expect(() => f.feed(part)).not.toThrow();
            expect(f.bufferedBytes).toBeLessThanOrEqual(Math.max(maxLength, 4));
          }
          expect(rec.malformedCalls.length).toBe(expectBad ? 1 : 0);
          expect(rec.afterMalformed).toBe(0);
          // all that was handed on is a prefix of the input
          expect(Buffer.from(rec.bytes).equals(bytes.subarray(0, rec.bytes.length))).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
