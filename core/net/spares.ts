// Spare framers and outbound queues: a client holds them only while it has something in flight.
import type { Socket } from "bun";
import { ALL_WHOLE, Framer, type FrameFlags, type FrameSink } from "../protocol/framer.ts";
import { Outbound } from "./outbound.ts";

/**
 * An idle client needs neither a framer (nothing half-read) nor an outbound queue (nothing unsent): like
 * PgBouncer's sbuf, which holds an I/O buffer only while data is in flight, a client gives them back when it
 * goes idle (once its login is answered, and when it has sent nothing for a while after its server went back:
 * core/janitor.ts IO_IDLE_MS) and takes them again on its next read or write. 10,000 idle clients then hold
 * ~230 bytes less each, and a pooler reuses a few hundred of each instead of allocating them per client.
 */
export const MAX_SPARES = 512;
const spareFramers: Framer[] = [];
const spareOutbounds: Outbound[] = [];

/**
 * Clients without a server that kept their framer and outbound queue for their next transaction (see
 * ClientConnection.releasedIO): at most MAX_SPARES, so a burst of ten thousand clients that each ran one query
 * does not leave ten thousand sets behind for the collector, as many as the spares would have held.
 */
let keptIdle = 0;

/** Counts one more client keeping its set while idle; false when MAX_SPARES already do (it gives its set back). */
export function keepIdle(): boolean {
  if (keptIdle >= MAX_SPARES) return false;
  keptIdle++;
  return true;
}

/** A counted client took a server again, gave its set back or closed. */
export function unkeepIdle(): void {
  keptIdle--;
}

/** How many idle clients keep their set now (for tests). */
export function keptIdleCount(): number {
  return keptIdle;
}

/** The sink of a spare framer: holds no connection alive, and is never fed. */
const DETACHED: FrameSink = { passSpan() {}, notify() {}, message: () => true, malformed() {} };

export function takeFramer(sink: FrameSink, flags: FrameFlags, maxLength: number): Framer {
  const f = spareFramers.pop();
  if (f === undefined) return new Framer(sink, flags, maxLength);
  f.reuse(sink, flags, maxLength);
  return f;
}

export function takeOutbound(socket: Socket<any>): Outbound {
  const o = spareOutbounds.pop();
  if (o === undefined) return new Outbound(socket);
  o.reuse(socket);
  return o;
}

/** Keeps a framer for reuse; its owner must drop its reference. */
export function giveFramer(f: Framer): void {
  f.reuse(DETACHED, ALL_WHOLE, 0);
  if (spareFramers.length < MAX_SPARES) spareFramers.push(f);
}

/** Keeps an outbound queue for reuse; its owner must drop its reference. */
export function giveOutbound(o: Outbound): void {
  o.reuse(null);
  if (spareOutbounds.length < MAX_SPARES) spareOutbounds.push(o);
}
