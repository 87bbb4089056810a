// Unit tests of the framer's streaming of long Whole-type messages: a bounded prefix to the sink, the rest as spans.
import { describe, expect, test } from "bun:test";
import { Framer, frameFlags, type FrameSink } from "../../core/protocol/framer.ts";

const BOUND = 100;
const c = (ch: string) => ch.charCodeAt(0);
/** 'Q' and 'P' whole (a plugin tapped them), 'S' notify, the rest pass. */
const FLAGS = frameFlags([c("Q"), c("P")], [c("S")]);

type Event =
  | { kind: "pass"; bytes: Uint8Array; buf: Uint8Array }
  | { kind: "message"; type: number; bytes: Uint8Array; partialTotal: number; buf: Uint8Array }
  | { kind: "end" }
  | { kind: "notify" }
  | { kind: "malformed"; reason: string };

/** Records each call (bytes copied); `decide` answers message() and may set the framer's flags for it. */
class Recorder implements FrameSink {
  events: Event[] = [];
  decide: (e: Extract<Event, { kind: "message" }>, framer: Framer) => boolean = () => true;
  constructor(readonly framer: () => Framer) {}
  passSpan(buf: Uint8Array, start: number, end: number): void {
    this.events.push({ kind: "pass", bytes: Buffer.from(buf.subarray(start, end)), buf });
  }
  notify(): void {
    this.events.push({ kind: "notify" });
  }
  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    const e = { kind: "message" as const, type, bytes: Buffer.from(buf.subarray(start, end)), partialTotal: this.framer().partialTotal, buf };
    this.events.push(e);
    return this.decide(e, this.framer());
  }
  streamEnd(): void {
    this.events.push({ kind: "end" });
  }
  malformed(reason: string): void {
    this.events.push({ kind: "malformed", reason });
  }
  messages() {
    return this.events.filter((e): e is Extract<Event, { kind: "message" }> => e.kind === "message");
  }
  /** What went on (messages and spans) in order. */
  output(): Buffer {
    return Buffer.concat(this.events.flatMap((e) => (e.kind === "pass" || e.kind === "message" ? [e.bytes] : [])));
  }
}

function setup() {
  let framer: Framer;
  const sink = new Recorder(() => framer);
  framer = new Framer(sink, FLAGS, 1 << 20, BOUND);
  return { framer, sink };
}

function msg(type: string, size: number): Buffer {
  const out = Buffer.alloc(5 + size);
  out[0] = c(type);
  out.writeInt32BE(4 + size, 1);
  for (let i = 0; i < size; i++) out[5 + i] = (i * 31 + 7) & 0xff;
  return out;
}

function feedIn(framer: Framer, bytes: Buffer, size: number, each?: () => void): void {
  for (let off = 0; off < bytes.length; off += size) {
    // a fresh read buffer each time, scribbled over after the feed: the framer must not keep views of it
    const chunk = Buffer.from(bytes.subarray(off, off + size));
    framer.feed(chunk);
    chunk.fill(0xee);
    each?.();
  }
}

describe("a Whole-type message above the bound", () => {
  for (const size of [1, 7, 37, 99, 100, 101, 150, 999]) {
    test(`in reads of ${size} bytes: the sink sees its first ${BOUND} bytes once, the rest streams, then streamEnd`, () => {
      const big = msg("Q", 5_000);
      const after = msg("Q", 10);
      const input = Buffer.concat([msg("S", 0), big, after]);
      const { framer, sink } = setup();
      let maxBuffered = 0;
      feedIn(framer, input, size, () => (maxBuffered = Math.max(maxBuffered, framer.bufferedBytes)));
      const ms = sink.messages();
      expect(ms.length).toBe(2);
      expect(ms[0]!.bytes).toEqual(new Uint8Array(big.subarray(0, BOUND)));
      expect(ms[0]!.partialTotal).toBe(big.length);
      expect(ms[1]!.bytes).toEqual(new Uint8Array(after));
      expect(ms[1]!.partialTotal).toBe(0);
      expect(sink.output()).toEqual(input);
      // the end comes right after the big message's last byte, before the next message
      const kinds = sink.events.map((e) => e.kind).join(",");
      expect(kinds.endsWith("pass,end,message")).toBe(true);
      expect(framer.partialTotal).toBe(0);
      // never more than the prefix (plus a header) is buffered, however long the message
      expect(maxBuffered).toBeLessThanOrEqual(BOUND + 5);
      expect(framer.reusable).toBe(true);
    });
  }

  test("a prefix that is all in one read is handed on in place (no copy)", () => {
    const big = msg("Q", 5_000);
    const { framer, sink } = setup();
    const first = Buffer.from(big.subarray(0, 300));
    framer.feed(first);
    expect(sink.messages()[0]!.buf).toBe(first);
    expect(framer.midMessage).toBe(true);
    framer.feed(Buffer.from(big.subarray(300)));
    expect(sink.output()).toEqual(big);
  });

  test("a long message that arrives in one read is delivered whole", () => {
    const big = msg("Q", 5_000);
    const { framer, sink } = setup();
    framer.feed(Buffer.from(big));
    expect(sink.messages().length).toBe(1);
    expect(sink.messages()[0]!.partialTotal).toBe(0);
    expect(sink.messages()[0]!.bytes).toEqual(new Uint8Array(big));
  });

  test("dropRest: its rest is skipped, what follows is read", () => {
    const big = msg("Q", 5_000);
    const after = msg("P", 3);
    const { framer, sink } = setup();
    sink.decide = (e, f) => {
      if (e.partialTotal !== 0) f.dropRest = true;
      return true;
    };
    feedIn(framer, Buffer.concat([big, after]), 64);
    expect(sink.output()).toEqual(Buffer.concat([big.subarray(0, BOUND), after]));
    expect(sink.events.filter((e) => e.kind === "end").length).toBe(1);
    expect(sink.messages().map((m) => m.partialTotal)).toEqual([big.length, 0]);
  });

  test("fetchWhole: the message is assembled and delivered again whole", () => {
    const big = msg("Q", 5_000);
    const after = msg("Q", 3);
    const { framer, sink } = setup();
    sink.decide = (e, f) => {
      if (e.partialTotal === 0) return true;
      f.fetchWhole = true;
      return false;
    };
    feedIn(framer, Buffer.concat([big, after]), 150);
    const ms = sink.messages();
    expect(ms.map((m) => m.partialTotal)).toEqual([big.length, 0, 0]);
    expect(ms[1]!.bytes).toEqual(new Uint8Array(big));
    expect(ms[2]!.bytes).toEqual(new Uint8Array(after));
    expect(sink.events.some((e) => e.kind === "pass" || e.kind === "end")).toBe(false);
  });

  test("holdCurrent: the prefix is seen again at resume(), then the rest streams", () => {
    const big = msg("Q", 5_000);
    const after = msg("Q", 3);
    const { framer, sink } = setup();
    let holds = 1;
    sink.decide = (e, f) => {
      if (e.partialTotal === 0 || holds === 0) return true;
      holds--;
      f.holdCurrent = true;
      return false;
    };
    feedIn(framer, Buffer.concat([big, after]), 64);
    expect(framer.holding).toBe(true);
    expect(sink.messages().length).toBe(1);
    framer.resume();
    const ms = sink.messages();
    expect(ms.map((m) => m.partialTotal)).toEqual([big.length, big.length, 0]);
    // the first delivery went nowhere: what went on is the second one, its rest and the next message
    expect(Buffer.concat(sink.events.slice(1).flatMap((e) => (e.kind === "pass" || e.kind === "message" ? [e.bytes] : [])))).toEqual(
      Buffer.concat([big, after]),
    );
  });

  test("false without holdCurrent: the prefix is taken, the rest streams once the sink resumes", () => {
    const big = msg("Q", 5_000);
    const after = msg("Q", 3);
    const { framer, sink } = setup();
    sink.decide = (e) => e.partialTotal === 0;
    feedIn(framer, Buffer.concat([big, after]), 300);
    expect(framer.holding).toBe(true);
    expect(sink.events.filter((e) => e.kind === "pass").length).toBe(0);
    framer.resume();
    expect(sink.output()).toEqual(Buffer.concat([big, after]));
    expect(sink.events.filter((e) => e.kind === "end").length).toBe(1);
  });

  test("a Pass-type message above the bound is not shown to the sink at all", () => {
    const big = msg("D", 5_000);
    const { framer, sink } = setup();
    feedIn(framer, big, 64);
    expect(sink.messages().length).toBe(0);
    expect(sink.events.some((e) => e.kind === "end")).toBe(false);
    expect(sink.output()).toEqual(big);
  });
});

describe("per-type bounds (streamAboveOf)", () => {
  test("a type with its own bound streams above that bound only; the others above streamAbove", () => {
    const { framer, sink } = setup();
    const bounds = new Uint32Array(256);
    bounds[c("P")] = 1_000;
    framer.streamAboveOf = bounds;
    const parse = msg("P", 800); // over streamAbove (100), under its own bound: assembled whole
    const bigParse = msg("P", 5_000); // over its own bound: its first 1,000 bytes, then streamed
    const query = msg("Q", 500); // over streamAbove: its first 100 bytes
    const input = Buffer.concat([parse, bigParse, query]);
    feedIn(framer, input, 64);
    expect(sink.messages().map((m) => [String.fromCharCode(m.type), m.bytes.length, m.partialTotal])).toEqual([
      ["P", parse.length, 0],
      ["P", 1_000, bigParse.length],
      ["Q", BOUND, query.length],
    ]);
    expect(sink.output()).toEqual(input);
  });
});
