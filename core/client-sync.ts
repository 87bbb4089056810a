// What the linked server still owes a client: ReadyForQuery answers outstanding and COPY FROM STDIN windows (inSync).
import { Frontend } from "../plugin-sdk/protocol/codes.ts";
import { ClientFlags, COPY_WINDOW_EXTENDED, COPY_WINDOW_OPEN } from "./client-flags.ts";
import type { Pgbun } from "./pgbun.ts";

/** The base of ClientConnection between its flags and its relay: counts each frontend message as it goes out. */
export abstract class ClientSync extends ClientFlags {
  abstract readonly core: Pgbun;

  /** Protocol state towards the linked server. */
  rfqPending = 0;
  /**
   * A Sync sent after a COPY FROM STDIN command but before the server's CopyInResponse reached us is ignored by
   * the server. Syncs since the latest Query/Execute (until CopyDone/CopyFail) are counted here, and discounted
   * when CopyInResponse shows that command started a copy; copy ends not yet matched by a CopyInResponse make
   * that ambiguous, and then nothing is discounted (the server is closed rather than reused).
   */
  private copyWindowSyncs = 0;
  /** Last time a query was forwarded and not yet answered (for query_timeout), 0 when none. */
  queryStart = 0;

  /** True when everything sent to the server has been answered: the server may go to someone else. */
  get inSync(): boolean {
    return this.rfqPending === 0 && !this.syncPending && !this.copyIn;
  }

  /** Keeps the count of ReadyForQuery answers the server still owes us. */
  protected countFrontend(type: number): void {
    switch (type) {
      case Frontend.Query:
        this.openCopyWindow(false);
        this.rfqPending++;
        this.syncPending = false;
        if (this.queryStart === 0) this.queryStart = this.core.now;
        break;
      case Frontend.FunctionCall:
        this.rfqPending++;
        this.syncPending = false;
        if (this.queryStart === 0) this.queryStart = this.core.now;
        break;
      case Frontend.Sync:
        // a Sync sent during copy-in is ignored by the server and gets no ReadyForQuery
        if (!this.copyIn) {
          this.rfqPending++;
          if ((this.copyWindow & COPY_WINDOW_OPEN) !== 0) this.copyWindowSyncs++;
        }
        this.syncPending = false;
        if (this.queryStart === 0) this.queryStart = this.core.now;
        break;
      case Frontend.Execute:
        this.openCopyWindow(true);
        this.syncPending = true;
        break;
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Close:
      case Frontend.Flush:
        this.syncPending = true;
        break;
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        this.copyIn = false;
        // a COPY run by Execute still needs its Sync before the server is idle again
        if ((this.copyWindow & COPY_WINDOW_EXTENDED) !== 0) this.syncPending = true;
        this.copyWindow &= ~COPY_WINDOW_OPEN;
        this.copyEndsUnmatched++;
        break;
    }
  }

  /** Counts each message of bytes that may hold several (a plugin's replacement or injection). */
  protected countAll(buf: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i + 5 <= end) {
      this.countFrontend(buf[i]!);
      const len = ((buf[i + 1]! << 24) | (buf[i + 2]! << 16) | (buf[i + 3]! << 8) | buf[i + 4]!) >>> 0;
      i += 1 + Math.max(len, 4);
    }
  }

  /** The server is unlinked: it owes this client nothing more. */
  protected forgetOwed(): void {
    this.rfqPending = 0;
    this.syncPending = false;
    this.copyIn = false;
    this.queryStart = 0;
    this.copyWindow &= ~COPY_WINDOW_OPEN;
    this.copyWindowSyncs = 0;
    this.copyEndsBeforeWindow = 0;
    this.copyEndsUnmatched = 0;
  }

  private openCopyWindow(extended: boolean): void {
    this.copyWindow = COPY_WINDOW_OPEN | (extended ? COPY_WINDOW_EXTENDED : 0);
    this.copyWindowSyncs = 0;
    this.copyEndsBeforeWindow = this.copyEndsUnmatched;
  }

  /** Called by the server relay on CopyInResponse. */
  copyInResponse(): void {
    this.copyIn = true;
    if (this.copyEndsBeforeWindow === 0 && this.copyWindowSyncs > 0) {
      // the Syncs pipelined behind the COPY command were ignored by the server: it owes no ReadyForQuery for them
      this.rfqPending = Math.max(0, this.rfqPending - this.copyWindowSyncs);
    }
    this.copyWindowSyncs = 0;
    if (this.copyEndsUnmatched > 0) this.copyEndsUnmatched--;
    if (this.copyEndsBeforeWindow > 0) this.copyEndsBeforeWindow--;
  }

  /** Called by the server relay on each ReadyForQuery. */
  readyForQuery(status: number): void {
    if (this.rfqPending > 0) this.rfqPending--;
    if (this.rfqPending === 0) this.queryStart = 0;
    this.copyIn = false;
    this.txStatus = status;
  }
}
