// Runs one message through the hook chain of its type as the core would, and reports what it did.
import type { MessageContext, MessageResult } from "../context.ts";
import { Action } from "../context.ts";
import type { ReleaseReason } from "../hooks.ts";
import { Backend, Frontend } from "../protocol/codes.ts";
import { decodeError } from "../protocol/errors.ts";
import type { TestApi } from "./api.ts";
import type { FakeClient, FakeServer } from "./fakes.ts";


/** What one message did, as the core would carry it out. */
export interface MessageRun {
  /** The hook chain's result (replacement bytes copied). */
  result: MessageResult;
  /** What goes on in the message's direction: the message, its replacement or nothing, then what was appended. */
  forwarded: Buffer;
  /** ctx.sendToClient / ctx.sendToServer / ctx.appendAfter calls, in order. */
  sentToClient: Buffer[];
  sentToServer: Buffer[];
  appended: Buffer[];
  /** A tap called ctx.releaseServer() (the core then releases the server, as this run did). */
  released: boolean;
}

/** Bytes on each side of the message in the buffer a hook sees: a tap that reads buf[0] for buf[start] fails. */
const PAD = 3;

/** The whole messages in a run of bytes, each a view. */
export function splitMessages(bytes: Uint8Array): Buffer[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    if (i + 5 > b.length) throw new Error(`a partial message header at byte ${i}`);
    const end = i + 1 + b.readInt32BE(i + 1);
    if (end > b.length || end < i + 5) throw new Error(`message at byte ${i} claims ${end - i} bytes of ${b.length - i}`);
    out.push(b.subarray(i, end));
    i = end;
  }
  return out;
}

/** Keeps the core's counts of what a client has in flight, for each frontend message that reaches the server. */
function countFrontend(client: FakeClient, bytes: Uint8Array): void {
  for (const m of splitMessages(bytes)) {
    switch (m[0]) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        client.rfqPending++;
        client.syncPending = false;
        break;
      case Frontend.Sync:
        if (!client.copyIn) client.rfqPending++;
        client.syncPending = false;
        break;
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Close:
      case Frontend.Execute:
      case Frontend.Flush:
        client.syncPending = true;
        break;
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        client.copyIn = false;
        break;
    }
  }
}

/** What the core does with a server message before its hooks run (they see the updated client and server). */
function beforeServerHooks(client: FakeClient, server: FakeServer | null, m: Buffer): void {
  switch (m[0]) {
    case Backend.ReadyForQuery: {
      const status = m[5]!;
      if (server !== null) server.txStatus = status;
      if (client.rfqPending > 0) client.rfqPending--;
      if (client.rfqPending === 0) client.queryStart = 0;
      client.copyIn = false;
      client.txStatus = status;
      break;
    }
    case Backend.CopyInResponse:
      client.copyIn = true;
      break;
    case Backend.ParameterStatus: {
      const nameEnd = m.indexOf(0, 5);
      const name = m.toString("utf8", 5, nameEnd);
      const value = m.toString("utf8", nameEnd + 1, m.indexOf(0, nameEnd + 1));
      server?.params.set(name, value);
      client.setParam(name, value);
      break;
    }
    case Backend.ErrorResponse: {
      const severity = decodeError(m, 0, m.length).severity;
      if (server !== null && (severity === "FATAL" || severity === "PANIC")) server.fatalSeen = true;
      break;
    }
  }
}

function run(t: TestApi, client: FakeClient, bytes: Uint8Array, direction: "frontend" | "backend", resumed: boolean): MessageRun {
  const messages = splitMessages(bytes);
  if (messages.length !== 1) throw new Error(`expected one message, got ${messages.length} (use runClientMessages / runServerMessages)`);
  const message = messages[0]!;
  // the message sits inside a larger buffer, as in a read buffer, and is overwritten after the call as a read buffer
  // is reused: a tap that keeps a view instead of a copy sees garbage
  const buf = Buffer.alloc(message.length + 2 * PAD, 0xee);
  message.copy(buf, PAD);
  const out: MessageRun = { result: undefined, forwarded: Buffer.alloc(0), sentToClient: [], sentToServer: [], appended: [], released: false };
  const ctx: MessageContext = {
    type: message[0]!,
    buf,
    start: PAD,
    end: PAD + message.length,
    direction,
    resumed,
    client,
    get server() {
      return client.server;
    },
    length: message.length,
    partial: false,
    bytes: () => buf.subarray(PAD, PAD + message.length),
    body: () => buf.subarray(PAD + 5, PAD + message.length),
    sendToClient: (b) => {
      out.sentToClient.push(Buffer.from(b));
      client.deliver(b);
    },
    appendAfter: (b) => void out.appended.push(Buffer.from(b)),
    sendToServer: (b) => {
      out.sentToServer.push(Buffer.from(b));
      countFrontend(client, b);
      client.server?.write(b);
    },
    releaseServer: () => void (out.released = true),
  };
  const server = client.server;
  if (direction === "backend") beforeServerHooks(client, server, message);
  const hook = direction === "frontend" ? t.hooks.clientMessage.get(ctx.type) : t.hooks.serverMessage.get(ctx.type);
  const r = hook?.call(ctx);
  out.result = r instanceof Uint8Array ? Buffer.from(r) : r;
  buf.fill(0xee);
  // a client message parked or held goes nowhere yet (the core refuses appendAfter with either); any other result
  // forwards the message, its replacement or nothing (Drop), and then what was appended
  const parked = direction === "frontend" && (r === Action.WaitForServer || r === Action.Hold);
  if (parked && out.appended.length > 0) throw new Error("appendAfter cannot be combined with WaitForServer or Hold");
  if (!parked) out.forwarded = Buffer.concat([...(r === undefined ? [message] : r instanceof Uint8Array ? [out.result as Buffer] : []), ...out.appended]);
  if (out.forwarded.length > 0) {
    if (direction === "frontend") {
      countFrontend(client, out.forwarded);
      client.server?.write(out.forwarded);
    } else client.deliver(out.forwarded);
  }
  // the core releases after the batch: a server message's release is a transaction's (or statement's) end
  const linked = client.server;
  if (out.released && linked !== null) {
    const reason: ReleaseReason = direction === "frontend" ? "plugin" : client.poolMode === "statement" ? "statement" : "transaction";
    t.api.releaseServer(client, linked, reason);
  }
  return out;
}

/**
 * Runs one client-to-server message (bytes from the SDK's writers, or raw) through the clientMessage hook of its
 * type, as the core would: what is forwarded is written to the client's server (and counted: Query and Sync owe a
 * ReadyForQuery), a release a tap asked for happens. Parking and redelivery (WaitForServer, Hold) are left to the
 * test: it sees the result, and runs the message again with `{ resumed: true }`.
 */
export function runClientMessage(t: TestApi, client: FakeClient, bytes: Uint8Array, options: { resumed?: boolean } = {}): MessageRun {
  return run(t, client, bytes, "frontend", options.resumed ?? false);
}

/**
 * Runs one server-to-client message through the serverMessage hook of its type, after the core's own bookkeeping
 * (a ReadyForQuery sets the client's and server's txStatus and answers one owed ReadyForQuery; ParameterStatus,
 * CopyInResponse and FATAL errors as in the core); what goes on is delivered to the client (client.sent).
 */
export function runServerMessage(t: TestApi, client: FakeClient, bytes: Uint8Array): MessageRun {
  return run(t, client, bytes, "backend", false);
}

/** Runs each message of a pipeline in turn (a client's Parse/Bind/Execute/Sync, a server's answers). */
export function runClientMessages(t: TestApi, client: FakeClient, bytes: Uint8Array): MessageRun[] {
  return splitMessages(bytes).map((m) => runClientMessage(t, client, m));
}

export function runServerMessages(t: TestApi, client: FakeClient, bytes: Uint8Array): MessageRun[] {
  return splitMessages(bytes).map((m) => runServerMessage(t, client, m));
}
