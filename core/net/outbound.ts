// Per-socket outbound queue: one write per batch, keeps what Bun's write() did not take, pauses the source meanwhile.
import type { Socket } from "bun";

/** Something whose reading can be paused while our destination is backed up. */
export interface Pausable {
  pauseReading(): void;
  resumeReading(): void;
}

/**
 * Collects the pieces of one batch (spans of the read buffer and injected messages) and writes them at once.
 * When the socket takes less than offered, the rest is copied and queued, and the source is paused until drain.
 */
export class Outbound {
  private pieces: Uint8Array[] = [];
  private piecesLen = 0;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private pausedSource: Pausable | null = null;
  closed = false;
  /** Total bytes handed to the kernel, for stats. */
  bytesSent = 0;

  constructor(private socket: Socket<any> | null) {}

  attach(socket: Socket<any>): void {
    this.socket = socket;
  }

  /** Bytes not yet accepted by the socket. */
  get backlog(): number {
    return this.queuedBytes + this.piecesLen;
  }

  /**
   * Adds bytes to the current batch; they must stay valid until flush() (same event-loop turn).
   * A piece that continues the previous one in the same buffer extends it, so a read forwarded in several
   * spans around inspected messages still goes out as one slice, without copying.
   */
  push(buf: Uint8Array, start = 0, end = buf.length): void {
    if (end <= start || this.closed) return;
    const n = this.pieces.length;
    if (n > 0) {
      const last = this.pieces[n - 1]!;
      if (last.buffer === buf.buffer && last.byteOffset + last.length === buf.byteOffset + start) {
        this.pieces[n - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + end - start);
        this.piecesLen += end - start;
        return;
      }
    }
    this.pieces.push(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
    this.piecesLen += end - start;
  }

  /** True when the batch has pieces not yet flushed. */
  get pending(): boolean {
    return this.piecesLen > 0;
  }

  /** Copies the unflushed batch so it survives the current read buffer (used when parking). */
  detachBatch(): Buffer | null {
    if (this.piecesLen === 0) return null;
    const b = Buffer.concat(this.pieces, this.piecesLen);
    this.pieces.length = 0;
    this.piecesLen = 0;
    return b;
  }

  /** Writes the batch in one write; `source` is paused if the socket cannot take it all. */
  flush(source: Pausable | null): void {
    if (this.piecesLen === 0) return;
    const data = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.piecesLen);
    this.pieces.length = 0;
    this.piecesLen = 0;
    if (this.closed || !this.socket) return;
    if (this.queuedBytes > 0) {
      this.queue.push(Buffer.from(data));
      this.queuedBytes += data.length;
      this.pauseSource(source);
      return;
    }
    const n = this.socket.write(data);
    if (n < 0) {
      this.closed = true;
      return;
    }
    this.bytesSent += n;
    if (n < data.length) {
      const rest = Buffer.from(data.subarray(n));
      this.queue.push(rest);
      this.queuedBytes += rest.length;
      this.pauseSource(source);
    }
  }

  /** Writes bytes now (outside a batch), queueing what the socket does not take. */
  send(buf: Uint8Array, source: Pausable | null = null): void {
    this.push(buf);
    this.flush(source);
  }

  private pauseSource(source: Pausable | null): void {
    if (source && this.pausedSource !== source) {
      this.pausedSource?.resumeReading();
      this.pausedSource = source;
      source.pauseReading();
    }
  }

  /** Called from the socket's drain handler. */
  drain(): void {
    if (!this.socket || this.closed) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) {
        this.closed = true;
        return;
      }
      this.bytesSent += n;
      this.queuedBytes -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
    const src = this.pausedSource;
    this.pausedSource = null;
    src?.resumeReading();
  }

  /** Forgets a source that went away (e.g. a server released to the pool), resuming it. */
  forgetSource(source: Pausable): void {
    if (this.pausedSource === source) {
      this.pausedSource = null;
      source.resumeReading();
    }
  }

  close(): void {
    this.closed = true;
    this.pieces.length = 0;
    this.piecesLen = 0;
    this.queue.length = 0;
    this.queuedBytes = 0;
    const src = this.pausedSource;
    this.pausedSource = null;
    src?.resumeReading();
  }
}
