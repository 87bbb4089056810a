// The queue of requests a client has in flight on its server, so pgbun can place the responses it makes up itself.
import type { ServerStatement } from "./state.ts";

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
  /** A Close pgbun sent (LRU eviction, replaced or forgotten statement): its CloseComplete is swallowed. */
  IntClose: 10,
  /** A ParseComplete owed to the client for a Parse that was not sent (already prepared on the server). */
  SynParse: 11,
  /** A CloseComplete owed to the client for a Close of its statement (kept on the server). */
  SynClose: 12,
  /** A Parse of a name the client already has: a failing Parse stands in, its error is reported as 42P05. */
  IntDuplicate: 13,
  /** A Describe pgbun sent after its own Parse to learn the statement's shape: its answer is swallowed. */
  IntDescribe: 14,
  /**
   * A Bind/Describe of a client statement whose result type changed since the client's Parse, sent to a name that
   * does not exist: the server fails it and skips to the Sync as PostgreSQL does for the client's own statement, and
   * its error is reported as PostgreSQL's "cached plan must not change result type".
   */
  IntChanged: 15,
  /**
   * A Bind/Describe of the unnamed statement by a client that has not parsed one on this server (the server's may be
   * another client's), sent to a name that does not exist: its error is reported as PostgreSQL's for a missing
   * unnamed statement.
   */
  IntUnnamedGone: 16,
  /** IntChanged for a Describe 'S': PostgreSQL sends the statement's ParameterDescription before that error. */
  IntChangedDescribe: 17,
  /**
   * A Bind/Describe of a streamed statement (its Parse was too long to keep its text) on a server that does not have
   * it, sent to a name that does not exist: its error is reported as PostgreSQL's for a missing statement.
   */
  IntStreamedGone: 18,
} as const;
export type ReqKind = (typeof Req)[keyof typeof Req];

export interface Pending {
  kind: ReqKind;
  /** For Parse/IntParse/IntClose of named statements: the statement's key on the server. */
  key?: string;
  /** For a client's named Parse (Parse, SynParse, IntDuplicate): the client's statement name. */
  name?: string;
  /** For Parse/IntParse/IntDescribe of a statement pgbun prepared: that statement. */
  stmt?: ServerStatement;
}

/** A FIFO of pending requests, reused per client; entries without key or name share one object per kind. */
export class RequestQueue {
  private items: Pending[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(kind: ReqKind, key?: string, name?: string, stmt?: ServerStatement): void {
    this.items.push(key === undefined && name === undefined && stmt === undefined ? PLAIN[kind]! : { kind, key, name, stmt });
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
