// Unit tests of a pool's waiter queue: first in, first out across its compactions, removal from anywhere, iteration.
import { describe, expect, test } from "bun:test";
import type { Client } from "../../plugin-sdk/index.ts";
import { WaiterQueue } from "../../plugins/pool/waiters.ts";

const client = (id: number) => ({ id }) as unknown as Client;
const ids = (q: WaiterQueue) => [...q].map((c) => (c as unknown as { id: number }).id);

describe("WaiterQueue", () => {
  test("a steady queue of 180 (one joins as one is served, 5,000 times) serves in arrival order", () => {
    const q = new WaiterQueue();
    let next = 0;
    let served = 0;
    for (; next < 180; next++) q.push(client(next));
    for (let round = 0; round < 5_000; round++) {
      expect((q.shift() as unknown as { id: number }).id).toBe(served++);
      q.push(client(next++));
      expect(q.length).toBe(180);
    }
    expect(ids(q)).toEqual(Array.from({ length: 180 }, (_, i) => served + i));
    expect((q.first() as unknown as { id: number }).id).toBe(served);
  });

  test("emptied, it starts over; empty, it gives undefined", () => {
    const q = new WaiterQueue();
    expect(q.shift()).toBeUndefined();
    expect(q.first()).toBeUndefined();
    q.push(client(1));
    q.push(client(2));
    q.shift();
    q.shift();
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
    q.push(client(3));
    expect(ids(q)).toEqual([3]);
  });

  test("remove() takes a waiter out from anywhere, once; the order of the rest is kept", () => {
    const q = new WaiterQueue();
    const c = [0, 1, 2, 3, 4].map(client);
    for (const x of c) q.push(x);
    q.shift(); // 0 is served
    expect(q.remove(c[0]!)).toBe(false); // no longer queued
    expect(q.remove(c[2]!)).toBe(true);
    expect(q.remove(c[2]!)).toBe(false);
    expect(ids(q)).toEqual([1, 3, 4]);
    expect(q.length).toBe(3);
    expect([q.shift(), q.shift(), q.shift()].map((x) => (x as unknown as { id: number }).id)).toEqual([1, 3, 4]);
  });
});
