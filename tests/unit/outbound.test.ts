// Unit tests of the outbound queue: one write per batch, partial writes queued, source paused until drain, order kept.
import { describe, expect, test } from "bun:test";
import { Outbound } from "../../core/net/outbound.ts";
import { asSocket, FakeSocket, FakeSource } from "../harness/fake-socket.ts";

function outbound(): { out: Outbound; socket: FakeSocket } {
  const socket = new FakeSocket();
  return { out: new Outbound(asSocket(socket)), socket };
}

const bytes = (s: string) => Buffer.from(s);
const text = (a: number[] | Uint8Array) => Buffer.from(a).toString();

describe("a batch", () => {
  test("pieces pushed in one turn go out in one write, in order, byte-exact", () => {
    const { out, socket } = outbound();
    const read = bytes("xxHELLOyy");
    out.push(bytes("1:"));
    out.push(read, 2, 7); // a span of a read buffer
    out.push(bytes(":2"));
    expect(out.pending).toBe(true);
    expect(out.backlog).toBe(9);
    out.flush(null);
    expect(socket.writes.length).toBe(1);
    expect(text(socket.accepted)).toBe("1:HELLO:2");
    expect(out.backlog).toBe(0);
    expect(out.bytesSent).toBe(9);
  });

  test("adjacent spans of one buffer merge into one piece, first or later; batches after a multi-piece one start clean", () => {
    const { out, socket } = outbound();
    const read = bytes("ABCDEFGHIJ");
    out.push(read, 0, 2);
    out.push(read, 2, 4); // continues the first piece
    out.push(bytes("-"));
    out.push(read, 6, 8);
    out.push(read, 8, 10); // continues a later piece
    out.push(bytes("+"), 0, 1);
    out.flush(null);
    expect(socket.writes.length).toBe(1);
    expect(text(socket.accepted)).toBe("ABCD-GHIJ+");
    // one piece, sent without joining: the write gets the read buffer itself at an offset
    out.push(read, 4, 6);
    out.flush(null);
    expect(socket.writes.length).toBe(2);
    expect(text(socket.accepted)).toBe("ABCD-GHIJ+EF");
    out.push(bytes("x"));
    out.push(bytes("y"));
    out.flush(null);
    expect(text(socket.accepted)).toBe("ABCD-GHIJ+EFxy");
    expect(out.bytesSent).toBe(14);
  });

  test("pieces short and long (copied by a loop or by set) join byte-exact, at their offsets in their buffers", () => {
    const { out, socket } = outbound();
    const long = Buffer.alloc(3000);
    for (let i = 0; i < long.length; i++) long[i] = (i * 7) & 0xff;
    const short = bytes("..abc..");
    out.push(long, 10, 2010); // 2000 bytes from an offset: set() of a view
    out.push(short, 2, 5); // 3 bytes: the loop
    out.push(long, 2500, 2757); // just above the loop's bound
    out.push(short, 0, 7);
    out.flush(null);
    expect(socket.writes.length).toBe(1);
    const expected = Buffer.concat([long.subarray(10, 2010), short.subarray(2, 5), long.subarray(2500, 2757), short]);
    expect(Buffer.from(socket.accepted).equals(expected)).toBe(true);
  });

  test("an empty batch writes nothing; empty spans are ignored", () => {
    const { out, socket } = outbound();
    out.flush(null);
    out.push(bytes("abc"), 1, 1);
    out.flush(null);
    expect(socket.writes).toEqual([]);
  });

  test("send() writes at once", () => {
    const { out, socket } = outbound();
    out.send(bytes("now"));
    expect(text(socket.accepted)).toBe("now");
  });
});

describe("a socket that takes only part of a write", () => {
  test("the rest is queued and the source paused; drain() writes the rest and resumes the source", () => {
    const { out, socket } = outbound();
    const source = new FakeSource();
    socket.budget = 4;
    out.push(bytes("0123456789"));
    out.flush(source);
    expect(text(socket.accepted)).toBe("0123");
    expect(out.backlog).toBe(6);
    expect(source.calls).toEqual(["pause"]);

    socket.budget = Infinity;
    out.drain();
    expect(text(socket.accepted)).toBe("0123456789");
    expect(out.backlog).toBe(0);
    expect(source.calls).toEqual(["pause", "resume"]);
    expect(out.bytesSent).toBe(10);
  });

  test("a drain that still cannot write everything keeps the source paused", () => {
    const { out, socket } = outbound();
    const source = new FakeSource();
    socket.budget = 2;
    out.send(bytes("abcdefgh"), source);
    out.drain();
    expect(text(socket.accepted)).toBe("abcd");
    expect(source.calls).toEqual(["pause"]);
    out.drain();
    out.drain();
    expect(text(socket.accepted)).toBe("abcdefgh");
    expect(source.calls).toEqual(["pause", "resume"]);
    expect(out.backlog).toBe(0);
  });

  test("batches flushed while a backlog exists queue behind it: order is preserved", () => {
    const { out, socket } = outbound();
    const source = new FakeSource();
    socket.budget = 3;
    out.send(bytes("first|"), source);
    const writesBefore = socket.writes.length;
    out.send(bytes("second|"), source);
    out.send(bytes("third"), source);
    // nothing may overtake the queued rest of "first|"
    expect(socket.writes.length).toBe(writesBefore);
    expect(out.backlog).toBe(3 + 7 + 5);
    expect(source.calls).toEqual(["pause"]); // paused once, not once per batch
    socket.budget = 5;
    while (out.backlog > 0) out.drain();
    expect(text(socket.accepted)).toBe("first|second|third");
    expect(source.calls).toEqual(["pause", "resume"]);
  });

  test("a joined batch's unwritten rest is a copy: the next joined batch, of another queue, does not change it", () => {
    const a = outbound();
    const b = outbound();
    a.socket.budget = 4;
    a.out.push(bytes("AAAA"));
    a.out.push(bytes("aaaa")); // two pieces: joined before the write
    a.out.flush(null);
    expect(text(a.socket.accepted)).toBe("AAAA");
    b.out.push(bytes("BBBB"));
    b.out.push(bytes("bbbb")); // joined where a's batch was
    b.out.flush(null);
    expect(text(b.socket.accepted)).toBe("BBBBbbbb");
    a.socket.budget = Infinity;
    a.out.drain();
    expect(text(a.socket.accepted)).toBe("AAAAaaaa");
  });

  test("a flush from inside a joined batch's write (a handler run meanwhile) joins its own batch apart", () => {
    const a = outbound();
    const b = outbound();
    b.out.push(bytes("BB"));
    b.out.push(bytes("bb"));
    const write = a.socket.write.bind(a.socket);
    let nested = false;
    a.socket.write = (data: Uint8Array, off?: number, len?: number) => {
      if (!nested) {
        nested = true;
        b.out.flush(null); // before a's bytes are taken
      }
      return write(data, off, len);
    };
    a.out.push(bytes("AA"));
    a.out.push(bytes("aa"));
    a.out.flush(null);
    expect(text(b.socket.accepted)).toBe("BBbb");
    expect(text(a.socket.accepted)).toBe("AAaa");
  });

  test("the queued rest is a copy: the read buffer it came from may be reused", () => {
    const { out, socket } = outbound();
    socket.budget = 2;
    const readBuffer = bytes("abcdef");
    out.push(readBuffer, 0, 6);
    out.flush(null);
    readBuffer.fill(0x7a); // the socket's next read overwrites it
    const later = bytes("ghi");
    out.send(later);
    later.fill(0x7a);
    socket.budget = Infinity;
    out.drain();
    expect(text(socket.accepted)).toBe("abcdefghi");
  });

  test("forgetSource() resumes a paused source that went away", () => {
    const { out, socket } = outbound();
    const source = new FakeSource();
    socket.budget = 1;
    out.send(bytes("ab"), source);
    out.forgetSource(source);
    expect(source.calls).toEqual(["pause", "resume"]);
    socket.budget = Infinity;
    out.drain();
    expect(source.calls).toEqual(["pause", "resume"]); // not resumed twice
    expect(text(socket.accepted)).toBe("ab");
  });

  test("close() drops the queue and resumes the paused source", () => {
    const { out, socket } = outbound();
    const source = new FakeSource();
    socket.budget = 1;
    out.send(bytes("abc"), source);
    out.close();
    expect(source.calls).toEqual(["pause", "resume"]);
    expect(out.backlog).toBe(0);
    out.send(bytes("more"));
    out.drain();
    expect(text(socket.accepted)).toBe("a");
  });

  test("a write error (-1) closes the queue", () => {
    const { out, socket } = outbound();
    socket.broken = true;
    out.send(bytes("abc"));
    expect(out.closed).toBe(true);
    socket.broken = false;
    out.send(bytes("def"));
    expect(socket.accepted).toEqual([]);
  });
});
