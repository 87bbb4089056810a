// What a per-message hook receives (the message in place, its connections, what it may do) and what it returns.
import type { Client, Server } from "./connections.ts";

/** Hook results: `undefined` forwards the message unchanged. */
export const Action = {
  /** Swallow the message: it is not forwarded. */
  Drop: 0,
  /** (client messages) Park this message until the client has a server, then run the hook again. */
  WaitForServer: 1,
  /**
   * (client messages) Hold this message and everything the client sends after it until `client.resumeInput()`;
   * the hooks then run again for it. For a plugin that must see a server's answer before the message may go on
   * (what was sent ahead of it is still forwarded: flush it with the batch).
   */
  Hold: 2,
} as const;

/** What a per-message hook returns: undefined (forward), an Action, or replacement bytes (whole messages). */
export type MessageResult = undefined | (typeof Action)[keyof typeof Action] | Uint8Array;

/**
 * One reusable context per client connection. The message bytes are only valid during the hook call:
 * copy what you keep. `buf[start]` is the type byte; the body runs from start + 5 to end.
 */
export interface MessageContext {
  /** The message's type byte (Frontend / Backend). */
  readonly type: number;
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
  /** "frontend" for client-to-server messages, "backend" for server-to-client. */
  readonly direction: "frontend" | "backend";
  /**
   * The message is delivered again after a hook held it (Action.WaitForServer, Action.Hold): every tap runs
   * again, so a tap that counts or records should do so only when this is false.
   */
  readonly resumed: boolean;
  readonly client: Client;
  /** The client's linked server, or null. */
  readonly server: Server | null;
  /** Length of the whole message including its 5-byte header (more than end - start when `partial`). */
  readonly length: number;
  /**
   * buf[start, end) is only the message's first bytes (its header and the start of its body): the message is too
   * long to hold (client messages over 64 KB, a Parse over 1 MB, server messages over 1 MB, when not all in one
   * read; the prefix is that long), and its rest streams on after it as it arrives, unseen. Read what you need from
   * the prefix (a statement's first keyword, a Parse's name); whatever the prefix cannot show must be treated as
   * unknown (decodeQuery/decodeParse give what the prefix holds). Dropping the message skips its rest too, and so
   * does a replacement of whole messages; a replacement whose last length field counts the rest as well
   * (`length - (end - start)` more bytes) replaces the prefix only, and the rest follows it. appendAfter() bytes go
   * after the rest.
   */
  readonly partial: boolean;
  /** A view of the whole message (no copy; valid during the call only). */
  bytes(): Uint8Array;
  /** A view of the message body (after the 5-byte header). */
  body(): Uint8Array;
  /** Queues bytes to the client, in order with what this batch forwards. */
  sendToClient(bytes: Uint8Array): void;
  /**
   * Sends bytes right after the current message, in its direction, whether it is forwarded, replaced or dropped.
   * Unlike returning replacement bytes, this does not stop later taps of the same hook.
   */
  appendAfter(bytes: Uint8Array): void;
  /** Queues bytes to the server, in order with what this batch forwards; counts the Query/Sync it carries. */
  sendToServer(bytes: Uint8Array): void;
  /** Releases the server after the current batch (a transaction boundary decided by a plugin). */
  releaseServer(): void;
}
