// Stand-ins for a Bun socket's write() and a paused source, for unit tests of the outbound queue (no network).
import type { Socket } from "bun";
import type { Pausable } from "../../core/net/outbound.ts";

/** A socket whose write() takes at most `budget` bytes per call (Infinity: all); -1 after `broken`. */
export class FakeSocket {
  budget = Infinity;
  broken = false;
  writes: Uint8Array[] = [];
  /** Bytes the "kernel" accepted, in order. */
  accepted: number[] = [];

  /** Like Bun's socket.write(data, byteOffset, byteLength). */
  write(data: Uint8Array, off = 0, len = data.length - off): number {
    if (this.broken) return -1;
    const copy = new Uint8Array(data.subarray(off, off + len)); // what write() was offered at that moment
    this.writes.push(copy);
    const n = Math.min(copy.length, this.budget);
    for (let i = 0; i < n; i++) this.accepted.push(copy[i]!);
    return n;
  }

  /** The accepted bytes as text. */
  text(): string {
    return Buffer.from(this.accepted).toString();
  }
}

/** Records pause and resume calls in order. */
export class FakeSource implements Pausable {
  calls: string[] = [];
  pauseReading(): void {
    this.calls.push("pause");
  }
  resumeReading(): void {
    this.calls.push("resume");
  }
}

export const asSocket = (s: FakeSocket) => s as unknown as Socket<any>;
