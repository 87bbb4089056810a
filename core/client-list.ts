// The core's clients, each in a numbered slot: a Set's iteration for a few bytes a client; slots name cancel keys.
import type { ClientConnection } from "./client.ts";

/**
 * Holds every client connection of this process. A client keeps its slot number from accept to close; freed
 * slots are reused. An idle client costs 8 bytes here, where a JSC Set entry costs ~50 and a Map entry keyed by
 * cancel pid another ~70. CancelRegistry indexes the (random) cancel pids by slot, so this table then finds a
 * CancelRequest's client. Iteration skips free slots and tolerates clients added or removed meanwhile.
 */
export class ClientList implements Iterable<ClientConnection> {
  private readonly slots: (ClientConnection | null)[] = [];
  private readonly free: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Puts the client in a free slot and records the slot number on it. */
  add(client: ClientConnection): void {
    const slot = this.free.length > 0 ? this.free.pop()! : this.slots.length;
    this.slots[slot] = client;
    client.slot = slot;
    this.count++;
  }

  /** Frees the client's slot (no-op when it holds another client or none). */
  delete(client: ClientConnection): boolean {
    const slot = client.slot;
    if (slot < 0 || this.slots[slot] !== client) return false;
    this.slots[slot] = null;
    this.free.push(slot);
    client.slot = -1;
    this.count--;
    if (this.count === 0) this.shrink();
    return true;
  }

  /** The client in `slot`, or undefined. */
  at(slot: number): ClientConnection | undefined {
    return this.slots[slot] ?? undefined;
  }

  /** Drops the tables once empty, so a burst of connections does not hold them forever. */
  private shrink(): void {
    this.slots.length = 0;
    this.free.length = 0;
  }

  *[Symbol.iterator](): IterableIterator<ClientConnection> {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const c = slots[i];
      if (c) yield c;
    }
  }
}
