// The queue of requests a client has in flight on its server, so pgbun can place the responses it makes up itself.

/** What each queued request is waiting for; SYN_* are answers pgbun owes the client, INT_* are its own requests. */
export const Req = {
  Parse: 1,
  Bind: 2,
  DescribeStatement: 3,
  DescribePortal: 4,
  Execute: 5,
  Close: 6,
  Sync: 7,
  Query: 8,
  /** A Parse pgbun sent to prepare a client's statement on this server: its ParseComplete is swallowed. */
  IntParse: 9,
  /** A Close pgbun sent (LRU eviction, stale plan): its CloseComplete is swallowed. */
  IntClose: 10,
  /** A ParseComplete owed to the client for a Parse that was not sent (already prepared on the server). */
  SynParse: 11,
  /** A CloseComplete owed to the client for a Close of its statement (kept on the server). */
  SynClose: 12,
  /** A Parse of a name the client already has: a failing Parse stands in, its error is reported as 42P05. */
  IntDuplicate: 13,
} as const;
export type ReqKind = (typeof Req)[keyof typeof Req];

export interface Pending {
  kind: ReqKind;
  /** For Parse/IntParse/IntClose of named statements: the statement's key on the server. */
  key?: string;
  /** For a client's named Parse (Parse, SynParse, IntDuplicate): the client's statement name. */
  name?: string;
}

/** A FIFO of pending requests, reused per client; entries without key or name share one object per kind. */
export class RequestQueue {
  private items: Pending[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(kind: ReqKind, key?: string, name?: string): void {
    this.items.push(key === undefined && name === undefined ? PLAIN[kind]! : { kind, key, name });
  }

  peek(): Pending | undefined {
    return this.items[this.head];
  }

  shift(): Pending | undefined {
    const p = this.items[this.head];
    if (p === undefined) return undefined;
    this.head++;
    if (this.head === this.items.length) {
      // drained: start over without reallocating
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return p;
  }

  clear(): void {
    this.items.length = 0;
    this.head = 0;
  }
}

/** Shared, frozen entries for the kinds that carry nothing else (the common case: no allocation per request). */
const PLAIN: Pending[] = [];
for (const kind of Object.values(Req)) PLAIN[kind] = Object.freeze({ kind });
