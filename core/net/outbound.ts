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
const NONE = new Uint8Array(0);

/** Pieces up to this long are copied by a loop: set() of a subarray makes a view object per piece. */
const LOOP_COPY_MAX = 256;

/**
 * Batches of several pieces up to this long are joined in one buffer shared by every queue, not a new one: the write
 * that follows takes what it can at once (Bun's socket and DirectTlsSocket copy) and the rest is queued as a copy.
 */
const JOINED_MAX = 16 * 1024;
const joined = new Uint8Array(JOINED_MAX);
/**
 * The shared buffer holds a batch being written: a flush reached from inside that write (a socket handler Bun runs
 * meanwhile) joins into a new buffer instead. Left set if a write throws: later batches then allocate, no more.
 */
let joinedBusy = false;

/** Copies src[start, end) into out at `at`; returns where the copy ends. */
function copyInto(out: Uint8Array, at: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n > LOOP_COPY_MAX) out.set(src.subarray(start, end), at);
  else for (let i = 0; i < n; i++) out[at + i] = src[start + i]!;
  return at + n;
}

export class Outbound {
  /**
   * The batch as (buffer, start, end) pieces: no view object is made per forwarded span. The first piece lives
   * in fields (most batches have one), further ones as flat triples in `more`, made the first time one is needed.
   */
  private buf0: Uint8Array = NONE;
  private start0 = 0;
  private end0 = 0;
  private more: Array<Uint8Array | number> | null = null;
  private count = 0;
  private piecesLen = 0;
  /** What the socket did not take yet, oldest first; made on the first partial write. */
  private queue: Buffer[] | null = null;
  private queuedBytes = 0;
  private pausedSource: Pausable | null = null;
  closed = false;
  /** Total bytes handed to the kernel, for stats. */
  bytesSent = 0;

  constructor(public socket: Socket<any> | null) {}

  attach(socket: Socket<any>): void {
    this.socket = socket;
  }

  /** Nothing batched or queued, no source paused, not closed: the queue may serve another socket. */
  get reusable(): boolean {
    return !this.closed && this.piecesLen === 0 && this.queuedBytes === 0 && this.pausedSource === null;
  }

  /** Starts over for another socket (only when reusable); the byte count restarts at 0. */
  reuse(socket: Socket<any> | null): void {
    this.socket = socket;
    this.bytesSent = 0;
  }

  /** Bytes not yet accepted by the socket. */
  get backlog(): number {
    return this.queuedBytes + this.piecesLen;
  }

  /**
   * Adds bytes to the current batch; they must stay valid until flush() (same event-loop turn). A piece that
   * continues the previous one in the same buffer extends it, so a read forwarded in several spans around
   * inspected messages still goes out as one write of one slice, without copying.
   */
  push(buf: Uint8Array, start = 0, end = buf.length): void {
    if (end <= start || this.closed) return;
    const n = this.count;
    this.piecesLen += end - start;
    if (n === 0) {
      this.buf0 = buf;
      this.start0 = start;
      this.end0 = end;
      this.count = 1;
      return;
    }
    if (n === 1) {
      if (this.buf0 === buf && this.end0 === start) {
        this.end0 = end;
        return;
      }
    } else {
      const more = this.more!;
      const last = (n - 2) * 3;
      if (more[last] === buf && more[last + 2] === start) {
        more[last + 2] = end;
        return;
      }
    }
    const more = (this.more ??= []);
    const at = (n - 1) * 3;
    more[at] = buf;
    more[at + 1] = start;
    more[at + 2] = end;
    this.count = n + 1;
  }

  /** True when the batch has pieces not yet flushed. */
  get pending(): boolean {
    return this.piecesLen > 0;
  }

  /**
   * Joins the batch into `out` and empties it. A batch of several pieces is a plugin's replacement or injection beside
   * forwarded spans: a rewritten Bind at each transaction of a prepared-statement client.
   */
  private joinBatch(out: Uint8Array): Uint8Array {
    let at = copyInto(out, 0, this.buf0, this.start0, this.end0);
    const more = this.more!;
    for (let i = 0; i < (this.count - 1) * 3; i += 3) at = copyInto(out, at, more[i] as Uint8Array, more[i + 1] as number, more[i + 2] as number);
    this.clearBatch();
    return out;
  }

  private clearBatch(): void {
    this.buf0 = NONE; // do not keep read buffers alive
    const more = this.more;
    if (more !== null) for (let i = 0; i < (this.count - 1) * 3; i += 3) more[i] = NONE;
    this.count = 0;
    this.piecesLen = 0;
  }

  /** Writes the batch in one write; `source` is paused if the socket cannot take it all. */
  flush(source: Pausable | null): void {
    const len = this.piecesLen;
    if (len === 0) return;
    if (this.count === 1) {
      const data = this.buf0;
      const off = this.start0;
      this.clearBatch();
      return this.write(data, off, len, source);
    }
    if (len > JOINED_MAX || joinedBusy) return this.write(this.joinBatch(Buffer.allocUnsafe(len)), 0, len, source);
    joinedBusy = true;
    this.write(this.joinBatch(joined), 0, len, source);
    joinedBusy = false;
  }

  /** Writes data[off, off + len) or queues a copy of what the socket does not take. */
  private write(data: Uint8Array, off: number, len: number, source: Pausable | null): void {
    if (this.closed || !this.socket) return;
    if (this.queuedBytes > 0) {
      this.enqueue(data, off, len);
      this.pauseSource(source);
      return;
    }
    const n = this.socket.write(data, off, len);
    if (n < 0) {
      this.closed = true;
      return;
    }
    this.bytesSent += n;
    if (n < len) {
      this.enqueue(data, off + n, len - n);
      this.pauseSource(source);
    }
  }

  private enqueue(data: Uint8Array, off: number, len: number): void {
    (this.queue ??= []).push(Buffer.from(data.subarray(off, off + len)));
    this.queuedBytes += len;
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
    const queue = this.queue;
    while (queue !== null && queue.length > 0) {
      const head = queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) {
        this.closed = true;
        return;
      }
      this.bytesSent += n;
      this.queuedBytes -= n;
      if (n < head.length) {
        queue[0] = head.subarray(n);
        return;
      }
      queue.shift();
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
    this.clearBatch();
    this.queue = null;
    this.queuedBytes = 0;
    const src = this.pausedSource;
    this.pausedSource = null;
    src?.resumeReading();
  }
}
