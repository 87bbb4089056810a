// Unit tests of what idle clients hold: ClientList slots, ParamList sharing, cancel-key index, spare framers/outbounds.
import { describe, expect, test } from "bun:test";
import { ClientList } from "../../core/client-list.ts";
import type { ClientConnection } from "../../core/client.ts";
import { CancelRegistry, workerBits } from "../../core/cancel.ts";
import type { ServerConnection } from "../../core/server.ts";
import type { Pgbun } from "../../core/pgbun.ts";
import { ParamList } from "../../core/params.ts";
import { ALL_WHOLE, Framer, frameFlags, type FrameSink } from "../../core/protocol/framer.ts";
import { Outbound } from "../../core/net/outbound.ts";
import { asSocket, FakeSocket, FakeSource } from "../harness/fake-socket.ts";
import { giveFramer, giveOutbound, keepIdle, MAX_SPARES, takeFramer, takeOutbound, unkeepIdle } from "../../core/net/spares.ts";

// ---------------------------------------------------------------------------------------------------------------
// ClientList

/** The only field ClientList reads or writes on a client is `slot`; `name` is for failure messages. */
interface FakeClient {
  slot: number;
  name: string;
}

function fake(name: string): ClientConnection {
  return { slot: -1, name } as FakeClient as unknown as ClientConnection;
}

const nameOf = (c: ClientConnection) => (c as unknown as FakeClient).name;
const names = (list: ClientList) => [...list].map(nameOf);

/** A list holding clients c0 … c<n-1> in slots 0 … n-1. */
function filledList(n: number): { list: ClientList; cs: ClientConnection[] } {
  const list = new ClientList();
  const cs = Array.from({ length: n }, (_, i) => fake(`c${i}`));
  for (const c of cs) list.add(c);
  return { list, cs };
}

describe("ClientList", () => {
  test("add gives slots 0, 1, 2...; at(slot) finds the client; size counts", () => {
    const list = new ClientList();
    const [a, b, c] = [fake("a"), fake("b"), fake("c")];
    expect(list.size).toBe(0);
    list.add(a);
    list.add(b);
    list.add(c);
    expect([a.slot, b.slot, c.slot]).toEqual([0, 1, 2]);
    expect(list.at(0)).toBe(a);
    expect(list.at(1)).toBe(b);
    expect(list.at(2)).toBe(c);
    expect(list.size).toBe(3);
    // slots outside the table (a CancelRequest's pid may name any) find nobody
    expect(list.at(3)).toBeUndefined();
    expect(list.at(-1)).toBeUndefined();
    expect(list.at(1 << 26)).toBeUndefined();
  });

  test("a deleted client's slot is freed (at() finds nobody) and reused by the next add", () => {
    const list = new ClientList();
    const [a, b, c] = [fake("a"), fake("b"), fake("c")];
    list.add(a);
    list.add(b);
    list.add(c);
    expect(list.delete(b)).toBe(true);
    expect(b.slot).toBe(-1);
    expect(list.size).toBe(2);
    expect(list.at(1)).toBeUndefined();
    expect(names(list)).toEqual(["a", "c"]);

    const d = fake("d");
    list.add(d);
    expect(d.slot).toBe(1);
    expect(list.at(1)).toBe(d);
    expect(list.size).toBe(3);
    expect(names(list)).toEqual(["a", "d", "c"]);
    // the table did not grow: a fresh slot is still 3
    const e = fake("e");
    list.add(e);
    expect(e.slot).toBe(3);
  });

  test("the most recently freed slot is reused first, and each freed slot exactly once", () => {
    const { list, cs } = filledList(6);
    list.delete(cs[1]!);
    list.delete(cs[4]!);
    const x = fake("x");
    const y = fake("y");
    const z = fake("z");
    list.add(x);
    list.add(y);
    list.add(z);
    expect([x.slot, y.slot, z.slot]).toEqual([4, 1, 6]);
    expect(list.size).toBe(7);
    expect(new Set([...list].map((c) => c.slot)).size).toBe(7);
  });

  test("delete of a client not in the list returns false and changes nothing", () => {
    const list = new ClientList();
    const a = fake("a");
    const b = fake("b");
    list.add(a);
    list.add(b);
    const never = fake("never");
    expect(list.delete(never)).toBe(false);
    // a stranger claiming an occupied slot number does not evict its holder
    const impostor = { slot: 0, name: "impostor" } as FakeClient as unknown as ClientConnection;
    expect(list.delete(impostor)).toBe(false);
    expect(list.at(0)).toBe(a);
    // deleting twice: the second time is a no-op
    expect(list.delete(b)).toBe(true);
    expect(list.delete(b)).toBe(false);
    expect(list.size).toBe(1);
    expect(names(list)).toEqual(["a"]);
    // b's old slot, now held by another client, is not freed by a late delete of b
    const c = fake("c");
    list.add(c);
    expect(c.slot).toBe(1);
    b.slot = 1; // as if b still believed it held slot 1
    expect(list.delete(b)).toBe(false);
    expect(list.at(1)).toBe(c);
    expect(list.size).toBe(2);
  });

  test("iteration yields clients in slot order and skips freed slots", () => {
    const { list, cs } = filledList(5);
    list.delete(cs[0]!);
    list.delete(cs[3]!);
    expect(names(list)).toEqual(["c1", "c2", "c4"]);
  });

  test("deleting the current client while iterating: every other client is still visited once", () => {
    const { list, cs } = filledList(6);
    const seen: string[] = [];
    for (const c of list) {
      seen.push(nameOf(c));
      if (seen.length % 2 === 1) expect(list.delete(c)).toBe(true); // drop every other one as we pass
    }
    expect(seen).toEqual(["c0", "c1", "c2", "c3", "c4", "c5"]);
    expect(names(list)).toEqual(["c1", "c3", "c5"]);
    expect(list.size).toBe(3);
  });

  test("deleting other clients while iterating: those not yet reached are not visited", () => {
    const { list, cs } = filledList(6);
    const seen: string[] = [];
    for (const c of list) {
      seen.push(nameOf(c));
      if (nameOf(c) === "c1") {
        list.delete(cs[0]!); // already visited
        list.delete(cs[3]!); // not yet reached
        list.delete(cs[4]!);
      }
    }
    expect(seen).toEqual(["c0", "c1", "c2", "c5"]);
    expect(names(list)).toEqual(["c1", "c2", "c5"]);
  });

  test("deleting every client from inside the loop ends the iteration cleanly", () => {
    const { list, cs } = filledList(4);
    const seen: string[] = [];
    for (const c of list) {
      seen.push(nameOf(c));
      for (const d of cs) list.delete(d); // the list empties (and drops its tables) under the iterator
    }
    expect(seen).toEqual(["c0"]);
    expect(list.size).toBe(0);
    expect([...list]).toEqual([]);
  });

  test("a client added during iteration does not disturb it (nobody visited twice or skipped)", () => {
    const { list, cs } = filledList(3);
    list.delete(cs[1]!);
    const seen: string[] = [];
    let added = false;
    for (const c of list) {
      seen.push(nameOf(c));
      if (!added) {
        added = true;
        list.add(fake("late")); // takes freed slot 1, ahead of the iterator
      }
    }
    expect(seen.filter((n) => n !== "late")).toEqual(["c0", "c2"]);
    expect(new Set(seen).size).toBe(seen.length);
    expect(names(list)).toEqual(["c0", "late", "c2"]);
  });

  test("once the last client leaves the tables are dropped: the next client gets slot 0, then 1", () => {
    const { list, cs } = filledList(5);
    // freed in ascending order: without the shrink the free stack would hand out slot 4 next
    for (const c of cs) expect(list.delete(c)).toBe(true);
    expect(list.size).toBe(0);
    expect([...list]).toEqual([]);
    for (let s = 0; s < 5; s++) expect(list.at(s)).toBeUndefined();
    const a = fake("a");
    const b = fake("b");
    list.add(a);
    list.add(b);
    expect(a.slot).toBe(0);
    expect(b.slot).toBe(1);
    expect(list.size).toBe(2);
    expect(names(list)).toEqual(["a", "b"]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// ParamList.share()

/** The list's backing array (private): the same array for lists that share. */
const kvOf = (l: ParamList) => (l as unknown as { kv: string[] | null }).kv;

/** Names unique to this file, so lists shared by other tests in this process cannot collide. */
let seq = 0;
const uniq = (s: string) => `idle_state_${s}_${process.pid}_${++seq}`;

function list(entries: Array<[string, string]>): ParamList {
  const l = new ParamList();
  for (const [k, v] of entries) l.set(k, v);
  return l;
}

describe("ParamList.share()", () => {
  test("two lists of equal content end up on one frozen array", () => {
    const app = uniq("app");
    const a = list([["application_name", app], ["DateStyle", "ISO, MDY"]]);
    const b = list([["application_name", app], ["DateStyle", "ISO, MDY"]]);
    expect(kvOf(a)).not.toBe(kvOf(b));
    a.share();
    b.share();
    expect(kvOf(a)).toBe(kvOf(b));
    expect(Object.isFrozen(kvOf(a))).toBe(true);
    // sharing twice is harmless
    a.share();
    expect(kvOf(a)).toBe(kvOf(b));
  });

  test("copy on write: set() on one shared list does not change the other", () => {
    const app = uniq("app");
    const a = list([["application_name", app], ["TimeZone", "UTC"]]);
    const b = list([["application_name", app], ["TimeZone", "UTC"]]);
    a.share();
    b.share();
    a.set("TimeZone", "Europe/Paris");
    expect(a.get("TimeZone")).toBe("Europe/Paris");
    expect(b.get("TimeZone")).toBe("UTC");
    a.set("search_path", "s1");
    expect(a.get("search_path")).toBe("s1");
    expect(b.has("search_path")).toBe(false);
    expect(b.size).toBe(2);
    expect([...b]).toEqual([["application_name", app], ["TimeZone", "UTC"]]);
    // the shared array itself is untouched, and a third list of that content still finds it
    const c = list([["application_name", app], ["TimeZone", "UTC"]]);
    c.share();
    expect(kvOf(c)).toBe(kvOf(b));
    expect([...c]).toEqual([["application_name", app], ["TimeZone", "UTC"]]);
  });

  test("copy on write: delete() on one shared list does not change the other", () => {
    const app = uniq("app");
    const a = list([["application_name", app], ["IntervalStyle", "postgres"], ["x", "1"]]);
    const b = list([["application_name", app], ["IntervalStyle", "postgres"], ["x", "1"]]);
    a.share();
    b.share();
    const shared = kvOf(a);
    expect(b.delete("IntervalStyle")).toBe(true);
    expect(b.has("IntervalStyle")).toBe(false);
    expect(b.size).toBe(2);
    expect(a.get("IntervalStyle")).toBe("postgres");
    expect(a.size).toBe(3);
    expect([...a.keys()]).toEqual(["application_name", "IntervalStyle", "x"]);
    // delete of a missing name copies nothing and reports false
    expect(a.delete("nope")).toBe(false);
    expect(kvOf(a)).toBe(shared);
    expect(Object.isFrozen(shared)).toBe(true);
    expect(kvOf(b)).not.toBe(shared);
  });

  test("set() with the value a shared list already has keeps it shared and breaks nothing", () => {
    const app = uniq("app");
    const a = list([["application_name", app], ["client_encoding", "UTF8"]]);
    const b = list([["application_name", app], ["client_encoding", "UTF8"]]);
    a.share();
    b.share();
    const shared = kvOf(a);
    expect(() => a.set("client_encoding", "UTF8")).not.toThrow();
    expect(kvOf(a)).toBe(shared); // no copy made for a no-op
    expect(a.get("client_encoding")).toBe("UTF8");
    expect(a.size).toBe(2);
    // and a real change afterwards still copies
    a.set("client_encoding", "LATIN1");
    expect(kvOf(a)).not.toBe(shared);
    expect(a.get("client_encoding")).toBe("LATIN1");
    expect(b.get("client_encoding")).toBe("UTF8");
    expect(kvOf(b)).toBe(shared);
  });

  test("get, has, size, keys and entries work on a shared list; entries is a snapshot while it changes", () => {
    const app = uniq("app");
    const a = list([["application_name", app], ["a", "1"], ["b", "2"]]);
    const b = list([["application_name", app], ["a", "1"], ["b", "2"]]);
    a.share();
    b.share();
    expect(a.size).toBe(3);
    expect(a.get("a")).toBe("1");
    expect(a.get("b")).toBe("2");
    expect(a.get("c")).toBeUndefined();
    expect(a.has("application_name")).toBe(true);
    expect(a.has("c")).toBe(false);
    expect([...a.keys()]).toEqual(["application_name", "a", "b"]);
    expect([...a.entries()]).toEqual([["application_name", app], ["a", "1"], ["b", "2"]]);
    // changing the list while iterating its entries: the loop sees the old content, the list the new
    const seen: string[] = [];
    for (const [k] of a) {
      seen.push(k);
      a.delete(k);
      a.set(`${k}_new`, "n");
    }
    expect(seen).toEqual(["application_name", "a", "b"]);
    expect([...a.keys()]).toEqual(["application_name_new", "a_new", "b_new"]);
    expect([...b]).toEqual([["application_name", app], ["a", "1"], ["b", "2"]]);
  });

  test("a list of different content (or order) is not shared with, nor changed by, the others", () => {
    const app = uniq("app");
    const a = list([["application_name", app], ["TimeZone", "UTC"]]);
    const b = list([["application_name", app], ["TimeZone", "UTC"]]);
    const other = list([["application_name", app], ["TimeZone", "Asia/Tokyo"]]);
    const reordered = list([["TimeZone", "UTC"], ["application_name", app]]);
    for (const l of [a, b, other, reordered]) l.share();
    expect(kvOf(a)).toBe(kvOf(b));
    expect(kvOf(other)).not.toBe(kvOf(a));
    expect(kvOf(reordered)).not.toBe(kvOf(a));
    a.set("TimeZone", "America/Lima");
    b.delete("TimeZone");
    expect([...other]).toEqual([["application_name", app], ["TimeZone", "Asia/Tokyo"]]);
    expect([...reordered]).toEqual([["TimeZone", "UTC"], ["application_name", app]]);
  });

  test("a name/value boundary is part of the content: ab=c and a=bc are not shared", () => {
    const p = uniq("p");
    const x = list([[`${p}ab`, "c"]]);
    const y = list([[`${p}a`, "bc"]]);
    x.share();
    y.share();
    expect(kvOf(x)).not.toBe(kvOf(y));
    expect(x.get(`${p}ab`)).toBe("c");
    expect(y.get(`${p}a`)).toBe("bc");
  });

  test("an empty list stays empty and usable after share(); a very long list is not shared but works", () => {
    const empty = new ParamList();
    empty.share();
    expect(empty.size).toBe(0);
    expect([...empty]).toEqual([]);
    empty.set("k", "v");
    expect(empty.get("k")).toBe("v");

    const long = uniq("long") + "x".repeat(1_000);
    const a = list([["application_name", long]]);
    const b = list([["application_name", long]]);
    a.share();
    b.share();
    expect(kvOf(a)).not.toBe(kvOf(b)); // over the key bound: each keeps its own
    a.set("application_name", "short");
    expect(b.get("application_name")).toBe(long);
    expect(a.get("application_name")).toBe("short");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Cancel keys: random pids found through the registry's index

describe("workerBits", () => {
  test("no bits for one process, then just enough for the worker index (at most 4, for 16 workers)", () => {
    expect([1, 2, 3, 4, 5, 8, 9, 16].map(workerBits)).toEqual([0, 1, 2, 2, 3, 3, 4, 4]);
  });
});

describe("CancelRegistry.handleRequest finds the client by its random pid", () => {
  /** The fields of a client the registry reads; its pid is the registry's, as the real one's is. */
  class KeyedClient {
    slot = -1;
    cancelSecret = 0;
    inSync = false;
    reg: CancelRegistry | null = null;
    constructor(readonly server: { name: string }) {}
    get cancelPid(): number {
      return this.reg!.pidOf(this as unknown as ClientConnection);
    }
  }

  /** Enough of a core for the registry: a real ClientList, worker `id` of `count`. */
  function registry(id = 0, count = 1) {
    const clients = new ClientList();
    const core = { clients, worker: { id, count, supervisorPid: 0 } } as unknown as Pgbun;
    const reg = new CancelRegistry(core);
    const canceled: string[] = [];
    const forwarded: number[] = [];
    (reg as unknown as { cancelServer(s: ServerConnection): void }).cancelServer = (s) => canceled.push((s as unknown as { name: string }).name);
    (reg as unknown as { forwardToWorker(w: number): void }).forwardToWorker = (w) => forwarded.push(w);
    /** A client with a server named `name`, not yet keyed. */
    const arrived = (name: string): ClientConnection => {
      const c = new KeyedClient({ name });
      c.reg = reg;
      clients.add(c as unknown as ClientConnection);
      return c as unknown as ClientConnection;
    };
    /** A client running a query on a server named `name`, with a fresh key. */
    const running = (name: string): ClientConnection => {
      const c = arrived(name);
      reg.register(c);
      return c;
    };
    /** What the core does when a client closes. */
    const leave = (c: ClientConnection) => {
      reg.forget(c);
      clients.delete(c);
    };
    return { clients, reg, canceled, forwarded, arrived, running, leave };
  }

  function packet(pid: number, secret: number): Buffer {
    const b = Buffer.alloc(16);
    b.writeInt32BE(16, 0);
    b.writeInt32BE(80877102, 4);
    b.writeInt32BE(pid | 0, 8);
    b.writeInt32BE(secret | 0, 12);
    return b;
  }

  test("the right pid and secret cancel; a wrong secret, pid 0 or an unknown pid do not", () => {
    const { reg, canceled, running } = registry();
    const a = running("sa");
    const b = running("sb");
    expect(a.cancelSecret).not.toBe(0);
    expect(a.cancelPid).not.toBe(0);
    reg.handleRequest(packet(b.cancelPid, b.cancelSecret ^ 1));
    reg.handleRequest(packet(b.cancelPid, b.cancelSecret ^ (1 << 31)));
    reg.handleRequest(packet(0, a.cancelSecret));
    reg.handleRequest(packet(a.cancelPid ^ 1, a.cancelSecret));
    reg.handleRequest(packet(b.cancelPid, a.cancelSecret));
    expect(canceled).toEqual([]);
    reg.handleRequest(packet(b.cancelPid, b.cancelSecret));
    reg.handleRequest(packet(a.cancelPid, a.cancelSecret));
    expect(canceled).toEqual(["sb", "sa"]);
  });

  test("a client not yet given a key has pid 0 and cannot be canceled, not even with secret 0", () => {
    const { reg, canceled, arrived } = registry();
    const c = arrived("su");
    expect(c.cancelPid).toBe(0);
    reg.handleRequest(packet(0, 0));
    expect(canceled).toEqual([]);
  });

  test("after a client leaves, the new client in its slot gets another pid; the old key cancels nothing", () => {
    const { reg, canceled, running, leave } = registry();
    running("s0");
    const old = running("s1");
    const { slot } = old;
    const oldPid = old.cancelPid;
    const oldSecret = old.cancelSecret;
    leave(old);
    expect(old.cancelPid).toBe(0);
    reg.handleRequest(packet(oldPid, oldSecret));
    const next = running("s2");
    expect(next.slot).toBe(slot);
    expect(next.cancelPid).not.toBe(oldPid);
    reg.handleRequest(packet(oldPid, oldSecret));
    expect(canceled).toEqual([]);
    reg.handleRequest(packet(next.cancelPid, next.cancelSecret));
    expect(canceled).toEqual(["s2"]);
  });

  test("with 3 workers the low 2 bits name the issuer: siblings' pids are forwarded, this worker's are looked up", () => {
    const { reg, canceled, forwarded, running } = registry(1, 3);
    const a = running("sa");
    expect(a.cancelPid & 3).toBe(1);
    reg.handleRequest(packet((a.cancelPid & ~3) | 0, a.cancelSecret));
    reg.handleRequest(packet((a.cancelPid & ~3) | 2, a.cancelSecret));
    reg.handleRequest(packet((a.cancelPid & ~3) | 3, a.cancelSecret)); // no worker 3: looked up here, unknown
    expect(forwarded).toEqual([0, 2]);
    expect(canceled).toEqual([]);
    reg.handleRequest(packet(a.cancelPid, a.cancelSecret));
    expect(canceled).toEqual(["sa"]);
  });

  test("5,000 clients arriving and leaving at random: every live key finds its client, no departed key does", () => {
    const { reg, canceled, running, leave } = registry();
    const live: ClientConnection[] = [];
    const gone: Array<[number, number]> = [];
    let seed = 12345;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let i = 0; i < 5_000; i++) {
      if (live.length > 0 && rnd(3) === 0) {
        const [c] = live.splice(rnd(live.length), 1);
        gone.push([c!.cancelPid, c!.cancelSecret]);
        leave(c!);
      } else live.push(running(`s${i}`));
    }
    expect(new Set(live.map((c) => c.cancelPid)).size).toBe(live.length);
    for (const c of live) expect(reg.find(c.cancelPid)).toBe(c);
    for (const [pid, secret] of gone) reg.handleRequest(packet(pid, secret));
    expect(canceled).toEqual([]);
    for (const c of live) reg.handleRequest(packet(c.cancelPid, c.cancelSecret));
    expect(canceled.length).toBe(live.length);
    // once everyone left, the tables are dropped
    for (const c of live) leave(c);
    expect((reg as unknown as { index: Int32Array }).index.length).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Framer and Outbound reuse, and the spares that hold them

/** A protocol message: type char, Int32 length (body + 4), body. */
function wireMsg(type: string, body: string): Buffer {
  const b = Buffer.from(body);
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

/** A sink recording whole messages (as text), spans and malformed reports; `accept` decides message()'s answer. */
class Sink implements FrameSink {
  messages: string[] = [];
  spans: string[] = [];
  malformations: string[] = [];
  accept = true;
  passSpan(buf: Uint8Array, start: number, end: number): void {
    this.spans.push(Buffer.from(buf.subarray(start, end)).toString("latin1"));
  }
  notify(): void {}
  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    if (!this.accept) return false;
    this.messages.push(String.fromCharCode(type) + Buffer.from(buf.subarray(start + 5, end)).toString());
    return true;
  }
  malformed(reason: string): void {
    this.malformations.push(reason);
  }
}

describe("Framer.reusable and reuse()", () => {
  const q = wireMsg("Q", "SELECT 1\0");

  test("a fresh framer is reusable; one holding a half-read body is not; once the message is whole it is again", () => {
    const sink = new Sink();
    const f = new Framer(sink, ALL_WHOLE);
    expect(f.reusable).toBe(true);
    f.feed(q.subarray(0, 8));
    expect(f.reusable).toBe(false);
    expect(f.midMessage).toBe(true);
    f.feed(q.subarray(8));
    expect(sink.messages).toEqual(["QSELECT 1\0"]);
    expect(f.reusable).toBe(true);
  });

  test("a half-read header (under 5 bytes) makes it not reusable, at every split", () => {
    for (let k = 1; k < q.length; k++) {
      const sink = new Sink();
      const f = new Framer(sink, ALL_WHOLE);
      f.feed(q.subarray(0, k));
      expect({ k, reusable: f.reusable }).toEqual({ k, reusable: false });
      f.feed(q.subarray(k));
      expect({ k, reusable: f.reusable }).toEqual({ k, reusable: true });
      expect(sink.messages.length).toBe(1);
    }
  });

  test("a pass-through message streaming through (rest still to come) makes it not reusable", () => {
    const sink = new Sink();
    const f = new Framer(sink, frameFlags()); // every type passes
    const d = wireMsg("d", "x".repeat(100));
    f.feed(d.subarray(0, 40));
    expect(f.reusable).toBe(false);
    f.feed(d.subarray(40));
    expect(f.reusable).toBe(true);
    expect(sink.spans.join("")).toBe(d.toString("latin1"));
  });

  test("held input (the sink said wait) makes it not reusable until resumed and taken", () => {
    const sink = new Sink();
    const f = new Framer(sink, ALL_WHOLE);
    sink.accept = false;
    f.feed(Buffer.concat([q, q]));
    expect(f.holding).toBe(true);
    expect(f.reusable).toBe(false);
    sink.accept = true;
    f.resume();
    expect(f.holding).toBe(false);
    expect(f.reusable).toBe(true);
    expect(sink.messages.length).toBe(1); // the first was refused, the second taken on resume
  });

  test("a closed or broken framer is never reusable", () => {
    const closed = new Framer(new Sink(), ALL_WHOLE);
    closed.close();
    expect(closed.reusable).toBe(false);
    const sink = new Sink();
    const broken = new Framer(sink, ALL_WHOLE, 16);
    broken.feed(wireMsg("Q", "x".repeat(64)));
    expect(sink.malformations.length).toBe(1);
    expect(broken.reusable).toBe(false);
  });

  test("reuse() hands later messages to the new sink, with the new flags and length limit", () => {
    const first = new Sink();
    const f = new Framer(first, ALL_WHOLE);
    f.feed(q);
    const second = new Sink();
    f.reuse(second, frameFlags([], []), 1_000); // everything passes now
    f.feed(q);
    expect(first.messages).toEqual(["QSELECT 1\0"]);
    expect(second.messages).toEqual([]);
    expect(second.spans.join("")).toBe(q.toString("latin1"));
    f.reuse(second, ALL_WHOLE, 8);
    f.feed(wireMsg("Q", "longer than eight"));
    expect(second.malformations.length).toBe(1);
    expect(first.malformations).toEqual([]);
  });
});


describe("Outbound.reusable and reuse()", () => {
  test("a fresh queue is reusable; a batch not yet flushed is not; flushed in full it is again", () => {
    const sock = new FakeSocket();
    const o = new Outbound(asSocket(sock));
    expect(o.reusable).toBe(true);
    o.push(Buffer.from("hello"));
    expect(o.reusable).toBe(false);
    o.flush(null);
    expect(sock.text()).toBe("hello");
    expect(o.reusable).toBe(true);
  });

  test("a partial write leaves the rest queued: not reusable until drained", () => {
    const sock = new FakeSocket();
    sock.budget = 3;
    const o = new Outbound(asSocket(sock));
    o.send(Buffer.from("abcdefgh"));
    expect(sock.text()).toBe("abc");
    expect(o.backlog).toBe(5);
    expect(o.reusable).toBe(false);
    o.drain(); // still only 3 bytes a write
    expect(o.reusable).toBe(false);
    sock.budget = Infinity;
    o.drain();
    expect(sock.text()).toBe("abcdefgh");
    expect(o.reusable).toBe(true);
  });

  test("a paused source keeps it not reusable until the drain resumes the source", () => {
    const sock = new FakeSocket();
    sock.budget = 2;
    const o = new Outbound(asSocket(sock));
    const src = new FakeSource();
    o.push(Buffer.from("xyz"));
    o.flush(src);
    expect(src.calls).toEqual(["pause"]);
    expect(o.reusable).toBe(false);
    sock.budget = Infinity;
    o.drain();
    expect(src.calls).toEqual(["pause", "resume"]);
    expect(o.reusable).toBe(true);
  });

  test("a closed queue is not reusable", () => {
    const o = new Outbound(asSocket(new FakeSocket()));
    o.close();
    expect(o.reusable).toBe(false);
  });

  test("reuse() writes to the new socket only and restarts the byte count", () => {
    const s1 = new FakeSocket();
    const s2 = new FakeSocket();
    const o = new Outbound(asSocket(s1));
    o.send(Buffer.from("first"));
    expect(o.bytesSent).toBe(5);
    o.reuse(asSocket(s2));
    expect(o.bytesSent).toBe(0);
    o.send(Buffer.from("second"));
    expect(s1.text()).toBe("first");
    expect(s2.text()).toBe("second");
    expect(o.bytesSent).toBe(6);
    // reused with no socket (a spare): writes go nowhere and count nothing
    o.reuse(null);
    o.send(Buffer.from("lost"));
    expect(o.bytesSent).toBe(0);
    expect(s2.text()).toBe("second");
  });
});

describe("spares: take and give", () => {
  test("a given framer is taken again, detached from its old owner and set up for the new one", () => {
    const oldOwner = new Sink();
    const f = takeFramer(oldOwner, ALL_WHOLE, 1_000);
    f.feed(wireMsg("Q", "old\0"));
    expect(oldOwner.messages).toEqual(["Qold\0"]);
    giveFramer(f);
    const newOwner = new Sink();
    const again = takeFramer(newOwner, ALL_WHOLE, 1_000);
    expect(again).toBe(f); // the spare, not a new one
    again.feed(wireMsg("Q", "new\0"));
    expect(newOwner.messages).toEqual(["Qnew\0"]);
    expect(oldOwner.messages).toEqual(["Qold\0"]); // the old owner hears nothing more
    expect(newOwner.malformations).toEqual([]); // the spare's limit of 0 was replaced by the taker's
  });

  test("a given framer lets go of its old owner (a spare must not keep a closed connection alive)", () => {
    const owner = new Sink();
    const f = takeFramer(owner, frameFlags(), 1_000);
    f.feed(wireMsg("Q", "x\0"));
    giveFramer(f);
    expect((f as unknown as { sink: FrameSink }).sink).not.toBe(owner);
    expect(f.flags).toBe(ALL_WHOLE);
    expect(takeFramer(new Sink(), ALL_WHOLE, 1_000)).toBe(f);
  });

  test("a taken spare framer gets the taker's flags and limit", () => {
    const f = takeFramer(new Sink(), ALL_WHOLE, 1_000);
    giveFramer(f);
    const passing = new Sink();
    const g = takeFramer(passing, frameFlags(), 10);
    expect(g).toBe(f);
    const small = wireMsg("d", "abc");
    g.feed(small);
    expect(passing.messages).toEqual([]);
    expect(passing.spans.join("")).toBe(small.toString("latin1"));
    g.feed(wireMsg("d", "x".repeat(20)));
    expect(passing.malformations.length).toBe(1);
  });

  test("a given outbound queue is taken again for another socket, its count restarted", () => {
    const s1 = new FakeSocket();
    const o = takeOutbound(asSocket(s1));
    o.send(Buffer.from("to-one"));
    giveOutbound(o);
    expect(o.socket).toBeNull(); // a spare writes nowhere
    const s2 = new FakeSocket();
    const again = takeOutbound(asSocket(s2));
    expect(again).toBe(o);
    expect(again.bytesSent).toBe(0);
    expect(again.reusable).toBe(true);
    again.send(Buffer.from("to-two"));
    expect(s1.text()).toBe("to-one");
    expect(s2.text()).toBe("to-two");
  });

  test("spares are handed out last given first, each to one taker", () => {
    const f1 = takeFramer(new Sink(), ALL_WHOLE, 100);
    const f2 = takeFramer(new Sink(), ALL_WHOLE, 100);
    expect(f1).not.toBe(f2);
    giveFramer(f1);
    giveFramer(f2);
    const a = takeFramer(new Sink(), ALL_WHOLE, 100);
    const b = takeFramer(new Sink(), ALL_WHOLE, 100);
    expect(a).toBe(f2);
    expect(b).toBe(f1);
    const o1 = takeOutbound(asSocket(new FakeSocket()));
    const o2 = takeOutbound(asSocket(new FakeSocket()));
    giveOutbound(o1);
    giveOutbound(o2);
    expect(takeOutbound(asSocket(new FakeSocket()))).toBe(o2);
    expect(takeOutbound(asSocket(new FakeSocket()))).toBe(o1);
  });

  test("at most MAX_SPARES idle clients keep their set: the next one is refused until one is counted out", () => {
    let kept = 0;
    while (keepIdle()) kept++;
    try {
      // this process's tests start from none kept: all MAX_SPARES are granted, and then no more
      expect(kept).toBe(MAX_SPARES);
      expect(keepIdle()).toBe(false);
      unkeepIdle();
      expect(keepIdle()).toBe(true);
      expect(keepIdle()).toBe(false);
    } finally {
      for (let i = 0; i < kept; i++) unkeepIdle();
    }
    expect(keepIdle()).toBe(true);
    unkeepIdle();
  });
});
