// The core's per-client MessageContext: one reused object, refilled for each message a hook sees.
import type { MessageContext } from "../plugin-sdk/context.ts";
import type { ClientConnection } from "./client.ts";
import type { ServerConnection } from "./server.ts";

/**
 * One reusable context per client connection. The message bytes are only valid during the hook call:
 * copy what you keep. `buf[start]` is the type byte; the body runs from start + 5 to end.
 */
export class HookContext implements MessageContext {
  type = 0;
  buf: Uint8Array = new Uint8Array(0);
  start = 0;
  end = 0;
  /** "frontend" for client-to-server messages, "backend" for server-to-client. */
  direction: "frontend" | "backend" = "frontend";
  /**
   * The message is delivered again after a hook held it (Action.WaitForServer, Action.Hold): every tap runs
   * again, so a tap that counts or records should do so only when this is false.
   */
  resumed = false;

  constructor(readonly client: ClientConnection) {}

  get server(): ServerConnection | null {
    return this.client.server;
  }

  /** Length of the whole message including its 5-byte header (more than end - start when partial). */
  get length(): number {
    const p = this.partialTotal();
    return p !== 0 ? p : this.end - this.start;
  }

  /** buf holds only the message's prefix; its rest streams after it (see MessageContext.partial). */
  get partial(): boolean {
    return this.partialTotal() !== 0;
  }

  /**
   * The whole length of the message being delivered when it is streamed, else 0: read from the framer delivering
   * it (no field here: every client with a context would carry it).
   */
  private partialTotal(): number {
    const f = this.direction === "frontend" ? this.client.inputFramer : (this.client.server?.framer ?? null);
    return f === null ? 0 : f.partialTotal;
  }

  /** A view of the whole message (no copy; valid during the call only). */
  bytes(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /** A view of the message body (after the 5-byte header). */
  body(): Uint8Array {
    return this.buf.subarray(this.start + 5, this.end);
  }

  /** Queues bytes to the client, in order with what this batch forwards. */
  sendToClient(bytes: Uint8Array): void {
    this.client.out.push(bytes);
  }

  /** Bytes to send after the current message (or in its place if it is dropped); set by appendAfter(). */
  after: Uint8Array[] | null = null;

  /**
   * Sends bytes right after the current message, in its direction, whether it is forwarded, replaced or dropped.
   * Unlike returning replacement bytes, this does not stop later taps of the same hook.
   */
  appendAfter(bytes: Uint8Array): void {
    (this.after ??= []).push(bytes);
  }

  /** Queues bytes to the server, in order with what this batch forwards; counts Query/Sync it carries. */
  sendToServer(bytes: Uint8Array): void {
    this.client.forwardToServer(bytes, 0, bytes.length, true);
  }

  /** Releases the server after the current batch (transaction boundary decided by a plugin). */
  releaseServer(): void {
    this.client.server?.requestRelease();
  }
}
