// Unit tests of the zero-copy framer: splits, coalesced spans, streaming, hostile lengths, offsets, hold/resume, flags.
import { describe, expect, test } from "bun:test";
import { ALL_WHOLE, Frame, Framer, frameFlags, type FrameFlags, type FrameSink } from "../../core/protocol/framer.ts";

type Event =
  | { kind: "pass"; bytes: Uint8Array; buf: Uint8Array }
  | { kind: "notify"; type: number }
  | { kind: "message"; type: number; bytes: Uint8Array }
  | { kind: "malformed"; reason: string };

/** A plain copy (Buffer#slice would be a view into the framer's buffer). */
function copy(buf: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.subarray(start, end));
}

/** A sink that records every call (copying bytes, as a real sink must) and lets a test decide message()'s answer. */
class Recorder implements FrameSink {
  events: Event[] = [];
  /** Return false to hold; may touch the framer (flags, holdCurrent). Default: accept. */
  onMessage: (type: number, bytes: Uint8Array, framer: Framer) => boolean = () => true;
  framer!: Framer;

  passSpan(buf: Uint8Array, start: number, end: number): void {
    expect(end).toBeGreaterThan(start);
    this.events.push({ kind: "pass", bytes: copy(buf, start, end), buf });
  }
  notify(type: number): void {
    this.events.push({ kind: "notify", type });
  }
  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    expect(buf[start]).toBe(type);
    const bytes = copy(buf, start, end);
    this.events.push({ kind: "message", type, bytes });
    return this.onMessage(type, bytes, this.framer);
  }
  malformed(reason: string): void {
    this.events.push({ kind: "malformed", reason });
  }

  of<K extends Event["kind"]>(kind: K): Extract<Event, { kind: K }>[] {
    return this.events.filter((e): e is Extract<Event, { kind: K }> => e.kind === kind);
  }
  /** Everything that went through (spans and whole messages), in order: equals the input for a clean stream. */
  output(): Uint8Array {
    const parts = this.events.flatMap((e) => (e.kind === "pass" || e.kind === "message" ? [e.bytes] : []));
    return Buffer.concat(parts);
  }
  messageTypes(): string[] {
    return this.of("message").map((e) => String.fromCharCode(e.type));
  }
}

function setup(flags: FrameFlags, maxLength?: number, streamAbove?: number): { framer: Framer; sink: Recorder } {
  const sink = new Recorder();
  const framer = new Framer(sink, flags, maxLength, streamAbove);
  sink.framer = framer;
  return { framer, sink };
}

/** A protocol message: type char, Int32 length (body + 4), body (a string or a size filled with a pattern). */
function msg(type: string, body: string | number = ""): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : Buffer.alloc(body, 0).map((_, i) => (i * 31 + 7) & 0xff);
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  Buffer.from(b).copy(out, 5);
  return out;
}

/** A header with a raw length field, for hostile lengths. */
function header(type: string, length: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = type.charCodeAt(0);
  out.writeUInt32BE(length >>> 0, 1);
  return out;
}

const c = (ch: string) => ch.charCodeAt(0);
/** 'Q' and 'P' whole, 'S' notify, everything else pass. */
const MIXED = frameFlags([c("Q"), c("P")], [c("S")]);
const ALL_PASS = frameFlags();

describe("a message split at every byte position", () => {
  const message = msg("D", "some row data, long enough to split in the body too");

  for (const [label, flags] of [
    ["Pass", ALL_PASS],
    ["Whole", ALL_WHOLE],
    ["Notify", frameFlags([], [c("D")])],
  ] as const) {
    test(`${label}: the bytes come out exactly once and in order, at every split`, () => {
      for (let k = 0; k <= message.length; k++) {
        const { framer, sink } = setup(flags);
        framer.feed(message.subarray(0, k));
        framer.feed(message.subarray(k));
        expect(sink.output()).toEqual(new Uint8Array(message));
        expect(sink.of("malformed")).toEqual([]);
        expect(framer.bufferedBytes).toBe(0);
        if (label === "Whole") {
          expect(sink.of("message").length).toBe(1);
          expect(sink.of("pass")).toEqual([]);
        } else {
          expect(sink.of("message")).toEqual([]);
        }
        expect(sink.of("notify").map((e) => e.type)).toEqual(label === "Notify" ? [c("D")] : []);
      }
    });
  }

  test("three mixed messages split into three pieces at every pair of positions", () => {
    const stream = Buffer.concat([msg("Q", "SELECT 1"), msg("D", "row"), msg("S"), msg("P", "\0SELECT $1\0\0\0")]);
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        const { framer, sink } = setup(MIXED);
        framer.feed(stream.subarray(0, i));
        framer.feed(stream.subarray(i, j));
        framer.feed(stream.subarray(j));
        expect(sink.output()).toEqual(new Uint8Array(stream));
        expect(sink.messageTypes()).toEqual(["Q", "P"]);
        expect(sink.of("notify").map((e) => e.type)).toEqual([c("S")]);
        expect(framer.bufferedBytes).toBe(0);
      }
    }
  });

  test("a message fed one byte at a time", () => {
    const stream = Buffer.concat([msg("Q", "SELECT 1"), msg("S"), msg("D", "abc")]);
    const { framer, sink } = setup(MIXED);
    for (let k = 0; k < stream.length; k++) framer.feed(stream.subarray(k, k + 1));
    expect(sink.output()).toEqual(new Uint8Array(stream));
    expect(sink.messageTypes()).toEqual(["Q"]);
    expect(sink.of("notify").length).toBe(1);
  });
});

describe("many messages in one chunk", () => {
  test("each whole message is delivered in order with its exact bytes", () => {
    const messages = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? msg("Q", `SELECT ${i}`) : msg("D", "x".repeat(i))));
    const { framer, sink } = setup(MIXED);
    framer.feed(Buffer.concat(messages));
    const whole = sink.of("message");
    expect(whole.map((e) => e.bytes)).toEqual(messages.filter((_, i) => i % 3 === 0).map((m) => new Uint8Array(m)));
    expect(sink.output()).toEqual(new Uint8Array(Buffer.concat(messages)));
  });

  test("consecutive pass-through messages are coalesced into one span, byte-exact", () => {
    const messages = Array.from({ length: 50 }, (_, i) => msg("D", `row ${i}`));
    const chunk = Buffer.concat(messages);
    const { framer, sink } = setup(MIXED);
    framer.feed(chunk);
    const spans = sink.of("pass");
    expect(spans.length).toBe(1);
    expect(spans.length).toBeLessThan(messages.length);
    expect(spans[0]!.bytes).toEqual(new Uint8Array(chunk));
    // zero-copy: the span is a range of the chunk itself
    expect(spans[0]!.buf).toBe(chunk);
  });

  test("spans between whole messages are coalesced around them", () => {
    const parts = [msg("D", "a"), msg("D", "b"), msg("S"), msg("Q", "SELECT 1"), msg("D", "c"), msg("C", "SELECT 1"), msg("Z", "I")];
    const { framer, sink } = setup(MIXED);
    framer.feed(Buffer.concat(parts));
    expect(sink.events.map((e) => e.kind)).toEqual(["notify", "pass", "message", "pass"]);
    expect(sink.of("pass")[0]!.bytes).toEqual(new Uint8Array(Buffer.concat(parts.slice(0, 3))));
    expect(sink.of("pass")[1]!.bytes).toEqual(new Uint8Array(Buffer.concat(parts.slice(4))));
  });

  test("a zero-body message (length 4) is valid", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    framer.feed(Buffer.concat([msg("S"), msg("H"), msg("S")]));
    expect(sink.messageTypes()).toEqual(["S", "H", "S"]);
    expect(sink.of("malformed")).toEqual([]);
  });
});

describe("large pass-through messages stream", () => {
  test("a 4 MB DataRow goes out chunk by chunk, before it has fully arrived, without buffering", () => {
    const big = msg("D", 4 * 1024 * 1024);
    const tail = msg("Q", "SELECT 1");
    const stream = Buffer.concat([big, tail]);
    const { framer, sink } = setup(MIXED);
    const chunkSize = 64 * 1024;
    let fed = 0;
    let maxBuffered = 0;
    for (let off = 0; off < stream.length; off += chunkSize) {
      const chunk = stream.subarray(off, off + chunkSize);
      const before = sink.of("pass").length;
      framer.feed(chunk);
      fed += chunk.length;
      maxBuffered = Math.max(maxBuffered, framer.bufferedBytes);
      if (fed < big.length) {
        // each read is forwarded as soon as it arrives, as the very buffer that was read
        const spans = sink.of("pass");
        expect(spans.length).toBe(before + 1);
        expect(spans[spans.length - 1]!.buf).toBe(chunk);
        expect(spans[spans.length - 1]!.bytes.length).toBe(chunk.length);
      }
    }
    expect(maxBuffered).toBeLessThan(5 + tail.length);
    expect(sink.output()).toEqual(new Uint8Array(stream));
    expect(sink.messageTypes()).toEqual(["Q"]);
  });

  test("a large whole message below the stream bound is buffered only as its pieces arrive and delivered once", () => {
    const big = msg("Q", 300_000);
    const { framer, sink } = setup(MIXED, undefined, 1 << 20); // (framer-stream.test.ts: above the bound)
    for (let off = 0; off < big.length; off += 10_000) {
      framer.feed(big.subarray(off, off + 10_000));
      if (off + 10_000 < big.length) expect(framer.bufferedBytes).toBe(off + 10_000);
    }
    expect(sink.of("message").length).toBe(1);
    expect(sink.of("message")[0]!.bytes).toEqual(new Uint8Array(big));
    expect(framer.bufferedBytes).toBe(0);
  });
});

describe("hostile lengths", () => {
  const cases: Array<[string, Buffer, number | undefined, RegExp]> = [
    ["length 0", header("Q", 0), undefined, /invalid message length 0/],
    ["length 3", header("Q", 3), undefined, /invalid message length 3/],
    ["0x7fffffff beyond maxLength", header("Q", 0x7fffffff), 1 << 20, /exceeds/],
    ["negative (0xffffffff) read as unsigned", header("D", -1), undefined, /exceeds/],
    ["negative (0x80000000) read as unsigned", header("D", 0x80000000), undefined, /exceeds/],
  ];
  for (const [label, bad, maxLength, reason] of cases) {
    for (const flags of [ALL_WHOLE, ALL_PASS]) {
      test(`${label} (${flags === ALL_WHOLE ? "Whole" : "Pass"}): malformed() is called and processing stops`, () => {
        const { framer, sink } = setup(flags, maxLength);
        const good = msg("S");
        framer.feed(Buffer.concat([good, bad, msg("Q", "SELECT 1")]));
        // what came before the bad header is still delivered, nothing after it
        expect(sink.output()).toEqual(new Uint8Array(good));
        const malformed = sink.of("malformed");
        expect(malformed.length).toBe(1);
        expect(malformed[0]!.reason).toMatch(reason);
        expect(framer.bufferedBytes).toBeLessThan(64);
        const count = sink.events.length;
        framer.feed(Buffer.concat([msg("Q", "SELECT 2"), msg("D", "x")]));
        expect(sink.events.length).toBe(count);
      });
    }
  }

  test("a hostile length in a header split across reads", () => {
    const { framer, sink } = setup(ALL_WHOLE, 1 << 20);
    const bad = header("Q", 0x7fffffff);
    framer.feed(bad.subarray(0, 2));
    expect(sink.events).toEqual([]);
    framer.feed(Buffer.concat([bad.subarray(2), Buffer.alloc(100)]));
    expect(sink.of("malformed").length).toBe(1);
    expect(framer.bufferedBytes).toBeLessThan(64);
  });

  test("a length at maxLength is accepted, one above is not", () => {
    const body = 60;
    const ok = setup(ALL_WHOLE, body + 4);
    ok.framer.feed(msg("Q", body));
    expect(ok.sink.of("message").length).toBe(1);
    const over = setup(ALL_WHOLE, body + 3);
    over.framer.feed(msg("Q", body));
    expect(over.sink.of("malformed").length).toBe(1);
    expect(over.sink.of("message")).toEqual([]);
  });
});

describe("input that is a view into a larger buffer", () => {
  test("a subarray with a non-zero byteOffset is framed from its own start", () => {
    const stream = Buffer.concat([msg("Q", "SELECT 1"), msg("D", "row"), msg("P", "\0x\0\0\0")]);
    const backing = new Uint8Array(1000).fill(0xee); // garbage around the view
    backing.set(stream, 7);
    const view = backing.subarray(7, 7 + stream.length);
    expect(view.byteOffset).toBe(7);
    const { framer, sink } = setup(MIXED);
    framer.feed(view);
    expect(sink.output()).toEqual(new Uint8Array(stream));
    expect(sink.messageTypes()).toEqual(["Q", "P"]);
    expect(sink.of("malformed")).toEqual([]);
  });

  test("views split mid-header and mid-body at odd offsets", () => {
    const stream = Buffer.concat([msg("Q", "SELECT 1"), msg("D", "row"), msg("Q", "SELECT 2")]);
    for (let k = 1; k < stream.length; k++) {
      const backing = new Uint8Array(stream.length + 32).fill(0xff);
      backing.set(stream, 13);
      const { framer, sink } = setup(MIXED);
      framer.feed(backing.subarray(13, 13 + k));
      framer.feed(backing.subarray(13 + k, 13 + stream.length));
      expect(sink.output()).toEqual(new Uint8Array(stream));
      expect(sink.messageTypes()).toEqual(["Q", "Q"]);
    }
  });

  test("what the framer keeps is copied: the caller may reuse its read buffer", () => {
    const stream = Buffer.concat([msg("Q", "SELECT 1"), msg("Q", "SELECT 2")]);
    const { framer, sink } = setup(MIXED);
    const readBuf = Buffer.from(stream);
    framer.feed(readBuf.subarray(0, 3)); // partial header kept
    readBuf.fill(0, 0, 3);
    const second = Buffer.from(stream.subarray(3, 12)); // partial body kept
    framer.feed(second);
    second.fill(0);
    framer.feed(stream.subarray(12));
    expect(sink.of("message").map((e) => e.bytes)).toEqual([new Uint8Array(msg("Q", "SELECT 1")), new Uint8Array(msg("Q", "SELECT 2"))]);
  });
});

describe("hold and resume", () => {
  const stream = Buffer.concat([msg("Q", "one"), msg("Q", "two"), msg("D", "pass"), msg("Q", "three")]);

  test("message() returning false holds the rest; resume() replays it in order, then later reads", () => {
    const { framer, sink } = setup(MIXED);
    sink.onMessage = (_t, bytes) => !Buffer.from(bytes).includes("two");
    framer.feed(stream);
    expect(framer.holding).toBe(true);
    expect(sink.output()).toEqual(new Uint8Array(Buffer.concat([msg("Q", "one"), msg("Q", "two")])));
    const later = Buffer.concat([msg("Q", "four")]);
    framer.feed(later);
    expect(sink.of("message").length).toBe(2); // nothing processed while held
    expect(framer.bufferedBytes).toBe(stream.length - msg("Q", "one").length - msg("Q", "two").length + later.length);
    sink.onMessage = () => true;
    framer.resume();
    expect(framer.holding).toBe(false);
    expect(sink.messageTypes()).toEqual(["Q", "Q", "Q", "Q"]);
    expect(sink.output()).toEqual(new Uint8Array(Buffer.concat([stream, later])));
    expect(framer.bufferedBytes).toBe(0);
  });

  test("holdCurrent holds the message itself: resume() delivers it again", () => {
    const { framer, sink } = setup(MIXED);
    let parked = true;
    sink.onMessage = (_t, bytes, f) => {
      if (parked && Buffer.from(bytes).includes("two")) {
        f.holdCurrent = true;
        return false;
      }
      return true;
    };
    framer.feed(stream);
    expect(sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5))).toEqual(["one", "two"]);
    parked = false;
    framer.resume();
    const texts = sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5));
    expect(texts).toEqual(["one", "two", "two", "three"]);
    expect(framer.holdCurrent).toBe(false);
    // without the repeated delivery, the output is the stream exactly
    const spans = Buffer.concat(sink.of("pass").map((e) => e.bytes));
    expect(new Uint8Array(spans)).toEqual(new Uint8Array(msg("D", "pass")));
  });

  /** The second message of `stream` arrives in two reads and is held (with passCurrent when `pass`), then resumed. */
  function heldInPieces(pass: boolean): Recorder {
    const { framer, sink } = setup(MIXED);
    let parked = true;
    sink.onMessage = (_t, bytes, f) => {
      if (parked && Buffer.from(bytes).includes("two")) {
        f.holdCurrent = true;
        f.passCurrent = pass;
        return false;
      }
      return true;
    };
    const split = msg("Q", "one").length + 4; // inside the second message
    framer.feed(stream.subarray(0, split));
    framer.feed(stream.subarray(split));
    expect(framer.holding).toBe(true);
    parked = false;
    framer.resume();
    return sink;
  }
  const textsOf = (sink: Recorder) => sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5));
  const spansOf = (sink: Recorder) => new Uint8Array(Buffer.concat(sink.of("pass").map((e) => e.bytes)));

  test("holdCurrent on a message that arrived in pieces", () => {
    const sink = heldInPieces(false);
    expect(textsOf(sink)).toEqual(["one", "two", "two", "three"]);
    expect(spansOf(sink)).toEqual(new Uint8Array(msg("D", "pass")));
  });

  test("passCurrent: the held message is not delivered again; it leaves with what follows it as one span", () => {
    // a client waiting for a server: Parse's hooks ran, then the read waits; once linked everything passes
    const { framer, sink } = setup(ALL_WHOLE);
    const read = Buffer.concat([msg("P", "select 1"), msg("B", "bind"), msg("E", "ex"), msg("S")]);
    let waiting = true;
    sink.onMessage = (_t, _bytes, f) => {
      if (!waiting) return true;
      f.flags = ALL_PASS; // as linking a server does
      f.holdCurrent = true;
      f.passCurrent = true;
      return false;
    };
    framer.feed(read);
    expect(sink.messageTypes()).toEqual(["P"]);
    expect(framer.holding).toBe(true);
    expect(framer.bufferedBytes).toBe(read.length);
    waiting = false;
    framer.resume();
    expect(sink.messageTypes()).toEqual(["P"]);
    const spans = sink.of("pass");
    expect(spans.length).toBe(1);
    expect(new Uint8Array(spans[0]!.bytes)).toEqual(new Uint8Array(read));
    expect(framer.passCurrent).toBe(false);
    expect(framer.reusable).toBe(true);
  });

  test("passCurrent on a message that arrived in pieces: passed once, then the messages after it are read", () => {
    const sink = heldInPieces(true);
    expect(textsOf(sink)).toEqual(["one", "two", "three"]);
    // the second message came back as a span, so spans + messages are the stream with it once more
    expect(spansOf(sink)).toEqual(new Uint8Array(Buffer.concat([msg("Q", "two"), msg("D", "pass")])));
  });

  test("held again during resume: the remaining input keeps its order", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    const all = ["a", "b", "c", "d", "e"].map((t) => msg("Q", t));
    let stopAt = "b";
    sink.onMessage = (_t, bytes) => Buffer.from(bytes).toString("latin1").slice(5) !== stopAt;
    framer.feed(Buffer.concat(all.slice(0, 3)));
    framer.feed(all[3]!);
    framer.feed(all[4]!);
    stopAt = "c";
    framer.resume();
    expect(framer.holding).toBe(true);
    stopAt = "";
    framer.resume();
    expect(sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5))).toEqual(["a", "b", "c", "d", "e"]);
    expect(framer.holding).toBe(false);
  });

  test("hold after hold, as a waiting client does at each transaction: each round's input, and only it, comes back", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    const seen = () => sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5));
    let expected: string[] = [];
    for (let round = 0; round < 4; round++) {
      const names = [`r${round}a`, `r${round}b`, `r${round}c`];
      sink.onMessage = () => false; // the first message finds no server: the rest of the read is held
      framer.feed(Buffer.concat([msg("Q", names[0]!), msg("Q", names[1]!)]));
      const later = msg("Q", names[2]!);
      framer.feed(later);
      later.fill(0); // copied when held
      expect(framer.holding).toBe(true);
      sink.onMessage = () => true;
      framer.resume();
      expect(framer.holding).toBe(false);
      expected = [...expected, ...names]; // the first was seen once, its rest after it
      expect(seen()).toEqual(expected);
      expect(framer.bufferedBytes).toBe(0);
    }
  });

  test("held input is copied: the caller may reuse its buffer", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    sink.onMessage = () => false;
    const chunk = Buffer.concat([msg("Q", "one"), msg("Q", "two")]);
    framer.feed(chunk);
    const more = msg("Q", "three");
    framer.feed(more);
    chunk.fill(0);
    more.fill(0);
    sink.onMessage = () => true;
    framer.resume();
    expect(sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5))).toEqual(["one", "two", "three"]);
  });

  test("an owned read held from its start (a waiting client's) is kept itself and passed on as it is, without a copy", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    sink.onMessage = (_t, _b, f) => {
      // as ClientConnection.firstToServer: the message's hooks ran, it waits only for a server
      f.holdCurrent = true;
      f.passCurrent = true;
      return false;
    };
    const chunk = Buffer.concat([msg("Q", "one"), msg("Q", "two")]);
    framer.feed(chunk, true);
    expect(framer.holding).toBe(true);
    sink.onMessage = () => true;
    framer.resume();
    const passes = sink.of("pass");
    expect(passes[0]!.buf).toBe(chunk); // the read itself
    expect(Buffer.from(passes[0]!.bytes).toString("latin1").slice(5, 8)).toBe("one");
    expect(sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5))).toEqual(["one", "two"]);
    expect(framer.bufferedBytes).toBe(0);
  });

  test("an owned read held after its first message keeps a copy of its rest; one fed while holding is kept itself", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    let seen = 0;
    sink.onMessage = () => ++seen !== 2; // "one" goes on, "two" asks to hold what follows it
    const chunk = Buffer.concat([msg("Q", "one"), msg("Q", "two"), msg("Q", "three")]);
    framer.feed(chunk, true);
    const more = msg("Q", "four");
    framer.feed(more, true);
    expect(framer.holding).toBe(true);
    // probes, not what a caller of an owned feed may do: the rest was copied, the later read kept as it is
    chunk.fill(0);
    more[5] = "F".charCodeAt(0);
    sink.onMessage = () => true;
    framer.resume();
    expect(sink.of("message").map((e) => Buffer.from(e.bytes).toString("latin1").slice(5))).toEqual(["one", "two", "three", "Four"]);
  });

  test("close() inside message() stops everything and holds nothing", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    sink.onMessage = (_t, _b, f) => {
      f.close();
      return false;
    };
    framer.feed(stream);
    expect(sink.of("message").length).toBe(1);
    expect(framer.holding).toBe(false);
    framer.resume();
    framer.feed(stream);
    expect(sink.of("message").length).toBe(1);
  });
});

describe("flags switched inside message()", () => {
  test("switching to all-whole makes the rest of the chunk whole messages", () => {
    const { framer, sink } = setup(MIXED);
    sink.onMessage = (_t, _b, f) => {
      f.flags = ALL_WHOLE;
      return true;
    };
    const rest = [msg("D", "r1"), msg("C", "SELECT 1"), msg("Z", "I")];
    framer.feed(Buffer.concat([msg("D", "before"), msg("Q", "SELECT 1"), ...rest]));
    expect(sink.events.map((e) => e.kind)).toEqual(["pass", "message", "message", "message", "message"]);
    expect(sink.messageTypes()).toEqual(["Q", "D", "C", "Z"]);
  });

  test("switching to all-pass makes the rest of the chunk one span", () => {
    const { framer, sink } = setup(ALL_WHOLE);
    sink.onMessage = (_t, _b, f) => {
      f.flags = ALL_PASS;
      return true;
    };
    const rest = Buffer.concat([msg("Q", "SELECT 2"), msg("P", "x"), msg("S")]);
    framer.feed(Buffer.concat([msg("Q", "SELECT 1"), rest]));
    expect(sink.messageTypes()).toEqual(["Q"]);
    expect(sink.of("pass").length).toBe(1);
    expect(sink.of("pass")[0]!.bytes).toEqual(new Uint8Array(rest));
  });

  test("the switch also applies to a message completed from pieces", () => {
    const { framer, sink } = setup(MIXED);
    sink.onMessage = (_t, _b, f) => {
      f.flags = ALL_WHOLE;
      return true;
    };
    const q = msg("Q", "SELECT 1");
    framer.feed(q.subarray(0, 7));
    framer.feed(Buffer.concat([q.subarray(7), msg("D", "x"), msg("Z", "I")]));
    expect(sink.messageTypes()).toEqual(["Q", "D", "Z"]);
  });

  test("Frame constants are the values flags hold", () => {
    const f = frameFlags([1], [2]);
    expect([f[0], f[1], f[2]]).toEqual([Frame.Pass, Frame.Whole, Frame.Notify]);
    // whole wins when a type is in both lists
    expect(frameFlags([3], [3])[3]).toBe(Frame.Whole);
  });
});
