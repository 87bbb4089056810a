// Counts the ErrorResponses servers send to clients, by database and SQLSTATE class: one tap, run only for errors.
import { Backend, Stage, type PluginApi } from "../../plugin-sdk/index.ts";

const FIELD_CODE = 0x43; // 'C': the SQLSTATE field of an ErrorResponse

export interface ErrorCounts {
  /** By database, by class ("42", "57", ...): counts since start. */
  snapshot(): Record<string, Record<string, number>>;
}

/** The SQLSTATE class (its two first bytes) as one number, or -1 when the message has no well-formed code. */
export function sqlstateClass(buf: Uint8Array, start: number, end: number): number {
  let i = start + 5;
  while (i < end) {
    const field = buf[i]!;
    if (field === 0) return -1;
    i++;
    if (field === FIELD_CODE) return i + 1 < end && buf[i] !== 0 && buf[i + 1] !== 0 ? (buf[i]! << 8) | buf[i + 1]! : -1;
    while (i < end && buf[i] !== 0) i++;
    i++;
  }
  return -1;
}

const isClassChar = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a);

/**
 * The tap reads two bytes of the message and bumps a number in a map it already has: no allocation per error once a
 * database has seen its first error of a class. Codes that are not two digits or capitals are counted as "??".
 */
export function tapErrors(api: PluginApi): ErrorCounts {
  const byDatabase = new Map<string, Map<number, number>>();
  api.onServerMessage(
    Backend.ErrorResponse,
    (ctx) => {
      if (ctx.resumed) return undefined;
      const key = sqlstateClass(ctx.buf, ctx.start, ctx.end);
      const database = ctx.client.poolDatabase;
      let classes = byDatabase.get(database);
      if (!classes) byDatabase.set(database, (classes = new Map()));
      classes.set(key, (classes.get(key) ?? 0) + 1);
      return undefined;
    },
    { stage: Stage.Observe },
  );
  return {
    snapshot() {
      const out = Object.create(null) as Record<string, Record<string, number>>;
      for (const [database, classes] of byDatabase) {
        const row = Object.create(null) as Record<string, number>;
        for (const [key, n] of classes) {
          const hi = key >> 8;
          const lo = key & 0xff;
          const name = key >= 0 && isClassChar(hi) && isClassChar(lo) ? String.fromCharCode(hi, lo) : "??";
          row[name] = (row[name] ?? 0) + n;
        }
        out[database] = row;
      }
      return out;
    },
  };
}
