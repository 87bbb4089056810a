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

/** Bits per kind in the packed run; kinds are never 0, so the run's length is where its highest bit is. */
const RUN_BITS = 4;
const RUN_MASK = (1 << RUN_BITS) - 1;
/** A run below this holds at most six kinds: room for a seventh (28 bits: it stays a small integer). */
const RUN_ROOM = 1 << (6 * RUN_BITS);

/** How many kinds a packed run holds. */
function runLength(run: number): number {
  return ((32 - Math.clz32(run) + RUN_BITS - 1) / RUN_BITS) | 0;
}

/**
 * A FIFO of pending requests, reused per client. Its front is a packed run of up to seven plain client requests
 * (Parse..Query with nothing else: kind numbers of 4 bits in one integer, the oldest lowest), the rest a list of
 * entries; a request is packed only while the list is empty, so the run is always older than the list. A client
 * of unnamed statements (pgbench -M extended, unprepared queries of pg and postgres.js: Parse, Bind, Describe,
 * Execute, Sync) then never touches the list: a push and a shift are a few bit operations. Anything of pgbun's
 * (Int*, Syn*, a named Parse) goes to the list in order, so `rich()` tells the response taps whether there is
 * anything but plain requests in flight. (Three fields, the list made at first use: no bigger than the list alone.)
 */
export class RequestQueue {
  /** The packed run (0: empty); its oldest kind in the lowest bits. */
  private run = 0;
  private items: Pending[] | null = null;
  private head = 0;

  get length(): number {
    return runLength(this.run) + this.rich();
  }

  /** Entries in the list: what is queued beyond the packed run (0: only plain client requests are in flight). */
  rich(): number {
    return this.items === null ? 0 : this.items.length - this.head;
  }

  /** The kind at the head, 0 when empty (the response taps' one test). */
  headKind(): number {
    if (this.run !== 0) return this.run & RUN_MASK;
    const p = this.items === null ? undefined : this.items[this.head];
    return p === undefined ? 0 : p.kind;
  }

  push(kind: ReqKind, key?: string, name?: string, stmt?: ServerStatement): void {
    if (key === undefined && name === undefined && stmt === undefined) this.pushPlain(kind);
    else (this.items ??= []).push({ kind, key, name, stmt });
  }

  /** push() of a kind with nothing else: packed when it is a client's request and there is room. */
  pushPlain(kind: ReqKind): void {
    const run = this.run;
    if (kind <= Req.Query && run < RUN_ROOM && this.rich() === 0) {
      this.run = run | (kind << (RUN_BITS * runLength(run)));
    } else (this.items ??= []).push(PLAIN[kind]!);
  }

  peek(): Pending | undefined {
    if (this.run !== 0) return PLAIN[this.run & RUN_MASK];
    return this.items === null ? undefined : this.items[this.head];
  }

  shift(): Pending | undefined {
    const run = this.run;
    if (run !== 0) {
      this.run = run >>> RUN_BITS;
      return PLAIN[run & RUN_MASK];
    }
    const items = this.items;
    if (items === null) return undefined;
    const p = items[this.head];
    if (p === undefined) return undefined;
    this.head++;
    if (this.head === items.length) {
      // drained: start over without reallocating
      items.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return p;
  }

  /** Takes the head when it is a plain request of this kind (the packed run's fast path); false otherwise. */
  shiftPlain(kind: ReqKind): boolean {
    const run = this.run;
    if ((run & RUN_MASK) !== kind) return false;
    this.run = run >>> RUN_BITS;
    return true;
  }

  clear(): void {
    this.run = 0;
    if (this.items !== null && this.items.length !== 0) this.items.length = 0;
    this.head = 0;
  }

  /** The entries, oldest first, without taking them (tests and diagnostics). */
  entries(): Pending[] {
    const out: Pending[] = [];
    for (let run = this.run; run !== 0; run >>>= RUN_BITS) out.push(PLAIN[run & RUN_MASK]!);
    if (this.items !== null) for (let i = this.head; i < this.items.length; i++) out.push(this.items[i]!);
    return out;
  }
}

/** Shared, frozen entries for the kinds that carry nothing else (the common case: no allocation per request). */
const PLAIN: Pending[] = [];
for (const kind of Object.values(Req)) PLAIN[kind] = Object.freeze({ kind });
